"""The process diagram data of a case: its own version's BPMN XML (main process and the processes
it calls) with each element's state, for the bpmn-js viewer on the case page."""
from __future__ import annotations

from flask import Blueprint, jsonify
from flask_login import current_user

from grid.cases import diagrams as case_diagrams

from . import services

bp = Blueprint("diagram", __name__)


@bp.get("/cases/<int:case_id>/diagram.json")
def show(case_id: int):
    resp = jsonify({"diagrams": case_diagrams.diagrams(services(), current_user.id, case_id)})
    resp.headers["Cache-Control"] = "private, no-store"
    return resp
