"""Reporting a dispute (grid workers, usually on a phone): the report form of the version a new
case in the worker's grid would use, photos, location from the browser or typed."""
from __future__ import annotations

import uuid

from flask import Blueprint, flash, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_login import current_user

from engine import form_validation
from engine.errors import InvalidData
from grid.cases import attachments, pages, report_location
from grid.cases import service as cases

from . import forms, services
from .labels import lang

bp = Blueprint("report", __name__)


def _render(rf: pages.ReportForm, grid: str, state: forms.FormState, status: int = 200, token: str | None = None):
    fields = forms.build(rf.schema, lang())
    token = token if token and len(token) == 32 else uuid.uuid4().hex  # one per rendered form: kept on a retry
    return render_template("report/new.html", rf=rf, grid=grid, fields=fields, state=state, submit_token=token), status


def _outside(where: report_location.Outside) -> str:
    if where.other:
        return _("This point lies in your grid %(other)s, not in %(grid)s: choose that grid, or move the pin.",
                 other=where.other[1], grid=where.grid_name)
    return _("This point lies about %(m)s m outside %(grid)s. Move the pin to where it happened, or have the "
             "case reported from the grid it is in.", m=where.distance_m, grid=where.grid_name)


@bp.get("/report")
def new():
    rf = pages.report_form(services(), current_user.id, request.args.get("grid"))
    return _render(rf, request.args.get("grid") or rf.grids[0][0], forms.FormState())


@bp.post("/report")
def create():
    svc = services()
    grid = request.form.get("grid") or None
    rf = pages.report_form(svc, current_user.id, grid)
    grid = grid if grid in dict(rf.grids) else rf.grids[0][0]
    fields = forms.build(rf.schema, lang())
    sub = forms.read(svc, current_user.id, fields, request.form, request.files)
    errors = forms.merge(sub.errors, forms.error_map(form_validation.validate(rf.schema, sub.data)))
    state = forms.FormState(sub.raw, sub.files, errors, submitted=True)
    token = request.form.get("submit_token") or None
    if errors:
        return _render(rf, grid, state, 422, token)
    where = report_location.check(svc, current_user.id, grid, sub.data)
    if where is not None:  # the pin is outside the chosen grid (beyond the tolerance): nothing is stored
        state.errors = {"location": [_outside(where)]}
        return _render(rf, grid, state, 422, token)
    forms.save_uploads(svc, current_user.id, sub)  # only now, the form being valid: pending until linked
    try:
        c = cases.report(svc, current_user.id, sub.data, grid_code=grid, submit_token=token)
    except InvalidData as e:
        attachments.discard(svc, current_user.id, sub.new_uploads)
        state.errors = forms.merge(errors, forms.error_map(form_validation.errors_from(e)))
        return _render(rf, grid, state, 422, token)
    if getattr(c, "replayed", False):  # the same form sent again: the first case, nothing new
        attachments.discard(svc, current_user.id, sub.new_uploads)
        flash(_("This report was already submitted as case %(no)s.", no=c.case_no), "info")
        return redirect(url_for("cases.show", case_id=c.id))
    attachments.link(svc, current_user.id, sub.upload_ids, c.id)
    flash(_("Reported as case %(no)s.", no=c.case_no), "success")
    return redirect(url_for("cases.show", case_id=c.id))
