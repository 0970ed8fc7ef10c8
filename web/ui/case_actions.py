"""Case actions outside a task's form: 改派 (reassign an open task to another person).

GET shows the case's open tasks the person may move (the dispatcher of the task's level, 网格长 at
the village level) and, for each, the people who may take it; POST moves one. The checks are the
service's (grid.cases.reassign): outside the jurisdiction 404, not the dispatcher 403, a bad
choice 400 with the form shown again and nothing changed.
"""
from __future__ import annotations

from flask import Blueprint, Flask, abort, flash, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_login import current_user

from engine.errors import InvalidData
from grid.cases import reassign as reassign_service
from grid.cases import service as cases

from . import labels, services

bp = Blueprint("case_actions", __name__)

# words for what this round added to the process and the org tree (the timeline, badges, pages)
EVENT_WORDS = {
    "reassigned": _l("Task reassigned"),
    "departments_assigned": _l("Sent to departments"),
    "department_answered": _l("A department answered"),
    "departments_answered": _l("All departments answered"),
}
ROLE_WORDS = {"department_handler": _l("Department handler")}
LEVEL_WORDS = {"department": _l("Department")}


def _render(case_id: int, status: int = 200, errors: dict | None = None, form: dict | None = None):
    svc = services()
    c = cases.get_case(svc, current_user.id, case_id)  # 404 outside the jurisdiction
    options = reassign_service.options(svc, current_user.id, case_id)
    if not options and status == 200:
        abort(403)
    return render_template("cases/reassign.html", c=c, options=options, errors=errors or {}, form=form or {},
                           reason_max=reassign_service.REASON_MAX), status


@bp.get("/cases/<int:case_id>/reassign")
def reassign_form(case_id: int):
    return _render(case_id)


@bp.post("/cases/<int:case_id>/reassign")
def reassign(case_id: int):
    svc = services()
    form = {k: (request.form.get(k) or "").strip() for k in ("task", "to", "reason")}
    cases.get_case(svc, current_user.id, case_id)
    try:
        reassign_service.reassign(svc, current_user.id, case_id, form["task"], form["to"], form["reason"])
    except InvalidData as e:
        errors = {x.get("path"): x.get("message") for x in (e.errors or [])}
        words = {"reason": _("Give a reason (%(a)s to %(b)s characters).", a=reassign_service.REASON_MIN,
                             b=reassign_service.REASON_MAX),
                 "to": _("Choose a person who holds the task's role on its unit."),
                 "task": _("This task is no longer open.")}
        return _render(case_id, 400, {k: words.get(k, v) for k, v in errors.items()}, form)
    flash(_("The task was reassigned; the new person has been told."), "success")
    return redirect(url_for("cases.show", case_id=case_id))


def register(app: Flask) -> None:
    """The blueprint, and the words for the new event kinds, role and level."""
    for table, extra in ((labels.EVENTS, EVENT_WORDS), (labels.ROLES, ROLE_WORDS), (labels.LEVELS, LEVEL_WORDS)):
        for k, v in extra.items():
            table.setdefault(k, v)
    app.register_blueprint(bp)
    app.jinja_env.globals["may_reassign"] = lambda case_id: reassign_service.may_reassign(
        services(), current_user.id, case_id)
