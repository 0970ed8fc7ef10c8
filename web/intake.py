"""Hotline / service-window intake (GET/POST /intake): an operator (role `operator`, county or
city) creates a case on a resident's behalf. Thin: `grid.cases.intake.take_call` validates,
routes (chosen grid, point in polygon, or the community the address names), checks the
jurisdiction and seals the caller's phone; the page afterwards shows the phone masked only."""
from __future__ import annotations

from flask import Blueprint, Flask, render_template, request
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_login import current_user

from engine.errors import InvalidData
from grid import masking
from grid.cases import intake

from .ui import form_labels, services
from .ui.labels import lang

bp = Blueprint("intake", __name__)
FIELDS = ("source", "caller_name", "caller_phone", "category", "description", "location_text", "lat", "lng", "grid")
MESSAGES = {
    "source": _l("Choose hotline or service window."),
    "caller_name": _l("Enter the caller's name (at most 50 characters)."),
    "caller_phone": _l("Enter the caller's phone number (7 to 20 digits)."),
    "category": _l("Choose a category."),
    "description": _l("Describe the dispute."),
    "lat": _l("Give both latitude and longitude as numbers, or neither."),
    "lng": _l("Give both latitude and longitude as numbers, or neither."),
    "grid": _l("No such grid in your jurisdiction."),
    "location": _l("This place lies in no grid of your jurisdiction: move the pin, name the community in the "
                   "address, or enter the grid code."),
}


def _page(units, values: dict, errors: dict, status: int = 200, made=None):
    labels = form_labels()
    cats = [(v, labels.category(v, lang())) for v, _t in labels.categories]
    return render_template("intake/new.html", units=units, v=values, errors=errors, categories=cats, made=made), status


@bp.get("/intake")
def new():
    units = intake.operator_units(services(), current_user.id)  # Forbidden for anyone else
    return _page(units, {"source": "hotline"}, {})


@bp.post("/intake")
def create():
    svc = services()
    units = intake.operator_units(svc, current_user.id)
    values = {k: (request.form.get(k) or "")[:2000] for k in FIELDS}
    try:
        case, how = intake.take_call(svc, current_user.id, values)
    except InvalidData as e:
        errors: dict[str, str] = {}
        for p in e.errors or []:
            key = str(p.get("path") or "").strip("/").split("/")[0] or "description"
            key = "location" if key.startswith("location") and key != "location_text" else key
            errors.setdefault(key, str(MESSAGES.get(key, _("Check this field."))))
        return _page(units, values, errors, 422)
    made = {"case_no": case.case_no, "id": case.id, "how": how, "caller": values["caller_name"].strip(),
            "phone": masking.mask_phone(values["caller_phone"].replace(" ", "").replace("-", ""))}
    return _page(units, {"source": values["source"]}, {}, 201, made)


def register(app: Flask) -> None:
    app.register_blueprint(bp)
