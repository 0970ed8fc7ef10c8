"""The inbox (my open work items, by due time, with filters and counts) and the supervisors'
list of late work in their jurisdiction, with urging (催办)."""
from __future__ import annotations

from flask import Blueprint, abort, render_template, request
from flask_login import current_user

from grid.cases import service as cases
from grid.org import accounts
from grid.registry import visits as registry_visits
from web.registry.words import word as registry_word

from . import due_text, form_labels, page_arg, services
from .labels import lang

bp = Blueprint("inbox", __name__)
PER_PAGE = 30
LATE_PER_PAGE = 40  # work items per page of the late list, most overdue first
LATE_MAX_PAGES = 25
STATES = ("overdue", "warning", "normal")


@bp.get("/")
def index():
    svc = services()
    category = request.args.get("category") or None
    state = request.args.get("state") or None
    if state not in STATES:
        state = None
    page = page_arg()
    box = cases.inbox(svc, current_user.id, category=category, state=state, limit=PER_PAGE,
                      offset=(page - 1) * PER_PAGE)
    labels = form_labels()
    units = accounts.unit_names(svc, [r.unit_id for r in box["items"]])
    visits = registry_visits.visit_context(svc, [r.instance_id for r in box["items"] if r.case_id is None])
    # by_state is already limited to the chosen category
    shown_total = sum(box["by_state"].values()) if state is None else box["by_state"].get(state, 0)
    pages = max(1, (shown_total + PER_PAGE - 1) // PER_PAGE)
    return render_template("inbox/index.html", box=box, category=category, state=state, page=page, pages=pages,
                           labels=labels, units=units, lang=lang(), due_text=due_text, states=STATES,
                           visits=visits, visit_word=registry_word)


@bp.get("/late")
def late():
    svc = services()
    if not current_user.is_supervisor:
        abort(403)
    page = page_arg(last=LATE_MAX_PAGES)
    rows = cases.late_in_jurisdiction(svc, current_user.id, limit=LATE_PER_PAGE + 1,
                                      offset=(page - 1) * LATE_PER_PAGE)
    more = len(rows) > page * LATE_PER_PAGE
    rows = rows[(page - 1) * LATE_PER_PAGE:page * LATE_PER_PAGE]
    grouped: dict[int, dict] = {}
    for r in rows:
        g = grouped.setdefault(r.case_id, {"row": r, "tasks": []})
        g["tasks"].append(r)
    labels = form_labels()
    units = accounts.unit_names(svc, [r.unit_id for r in rows])
    return render_template("inbox/late.html", groups=list(grouped.values()), labels=labels, units=units,
                           lang=lang(), due_text=due_text, page=page, more=more and page < LATE_MAX_PAGES)
