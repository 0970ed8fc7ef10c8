"""The inbox (my open work items, by due time, with filters and counts) and the supervisors'
list of late work in their jurisdiction, with urging (催办)."""
from __future__ import annotations

from flask import Blueprint, abort, flash, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_login import current_user

from engine.errors import InvalidData, NotFound
from grid.cases import late as late_list
from grid.cases import service as cases
from grid.errors import Forbidden
from grid.registry import visits as registry_visits
from web.registry.words import word as registry_word

from . import due_text, form_labels, page_arg, routed, safe_next, services, tasks
from .labels import lang

bp = Blueprint("inbox", __name__)
PER_PAGE = 30
LATE_PER_PAGE = 40  # work items per page of the late list, most overdue first
LATE_MAX_PAGES = 25
STATES = ("overdue", "warning", "normal")
COUNT_CAP = 99  # the inbox counts stop here ("99+"): they read at most 100 items (grid.cases.inbox_counts)


@bp.get("/")
def index():
    svc = services()
    if current_user.is_admin and all(r.role == "admin" for r in current_user.roles) and routed("/admin/"):
        return redirect("/admin/")  # an administrator has no inbox: land on the administration page
    if (not request.args and routed("/dashboard")
            and any(r.role == "supervisor" and r.level in ("county", "city") for r in current_user.roles)):
        return redirect(url_for("dashboard.home"))  # county and city leaders land on their dashboard
    category = request.args.get("category") or None
    state = request.args.get("state") or None
    if state not in STATES:
        state = None
    page = page_arg()
    labels = form_labels()
    box = cases.inbox(svc, current_user.id, category=category, state=state, limit=PER_PAGE + 1,
                      offset=(page - 1) * PER_PAGE, cap=COUNT_CAP, cards=PER_PAGE)
    more = len(box["items"]) > PER_PAGE
    box["items"] = box["items"][:PER_PAGE]
    tasks.seed_marks(box["items"], box["marks"])
    units = box["unit_names"]
    visits = registry_visits.visit_context(svc, [r.instance_id for r in box["items"] if r.case_id is None])
    # by_state is already limited to the chosen category
    shown_total = sum(box["by_state"].values()) if state is None else box["by_state"].get(state, 0)
    # past the cap the number of pages is unknown: "Page 4" and a next link while there is more
    pages = None if box["capped"] else max(1, (shown_total + PER_PAGE - 1) // PER_PAGE)
    return render_template("inbox/index.html", box=box, category=category, state=state, page=page, pages=pages,
                           more=more, labels=labels, units=units, lang=lang(), due_text=due_text, states=STATES,
                           visits=visits, visit_word=registry_word)



@bp.get("/late")
def late():
    svc = services()
    if not current_user.is_supervisor:
        abort(403)
    page = page_arg(last=LATE_MAX_PAGES)
    unit = request.args.get("unit") or None
    data = late_list.late_page(svc, current_user.id, unit=unit, limit=LATE_PER_PAGE,
                               offset=(page - 1) * LATE_PER_PAGE)
    pages = max(1, min(LATE_MAX_PAGES, (data.total + LATE_PER_PAGE - 1) // LATE_PER_PAGE))
    return render_template("inbox/late.html", data=data, groups=data.cases, labels=form_labels(),
                           units=data.unit_names, unit=unit, lang=lang(), due_text=due_text, page=page,
                           pages=pages, more=data.more and page < LATE_MAX_PAGES)


@bp.post("/late/urge")
def late_urge():
    """Batch urge: one comment on every checked case (each urge is recorded on its case)."""
    svc = services()
    if not current_user.is_supervisor:
        abort(403)
    back = safe_next(request.form.get("next"), "inbox.late")
    comment = (request.form.get("comment") or "").strip()
    ids = [int(x) for x in request.form.getlist("case_id") if x.isdigit()][:LATE_PER_PAGE]
    if not ids:
        flash(_("Choose the cases to urge."), "error")
        return redirect(back)
    if not comment:
        flash(_("Write a comment to urge."), "error")
        return redirect(back)
    done = 0
    for case_id in dict.fromkeys(ids):
        try:
            cases.urge(svc, current_user.id, case_id, comment)
        except (NotFound, Forbidden, InvalidData):
            continue
        done += 1
    flash(_("Urged %(n)s cases; the comment is recorded on each.", n=done), "success" if done else "error")
    return redirect(back)
