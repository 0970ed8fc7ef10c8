"""The case page (summary, open tasks with handlers and due times, parties, photos, location,
the timeline from the audit log, attachments, the process diagram) and urging (催办)."""
from __future__ import annotations

from dataclasses import dataclass

from flask import Blueprint, abort, flash, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_login import current_user

from engine.errors import InvalidData
from grid import masking
from grid.cases import labels as case_labels
from grid.cases import pages
from grid.cases import service as cases

from . import due_text, form_labels, safe_next, services
from .forms import describe
from .labels import EVENTS, LEVELS, RESULTS, lang, word

bp = Blueprint("cases", __name__)


@dataclass
class Entry:
    at: object
    who: str
    kind: str
    what: str
    details: list[tuple[str, str]]


def timeline(svc, page: pages.CasePage, labels: case_labels.Labels) -> list[Entry]:
    """The audit log in words: who, when, what (and the form answers, phones masked as needed)."""
    lg = lang()
    names, units = page.names, page.units
    mask = None if page.phones_visible else masking.mask_phone
    out = []
    for t in page.timeline:
        d = t.data
        who = _("System") if t.actor in (None, "timer") else names.get(t.actor, t.actor)
        what = word(EVENTS, t.kind)
        details: list[tuple[str, str]] = []
        unit = units.get(d.get("unit"), d.get("unit")) if d.get("unit") else None
        if t.kind == "task_completed":
            what = labels.form(t.form, lg, d.get("name"))
            schema = svc.runtime.form_schema(page.version_id, t.form) if t.form and page.version_id else None
            details = describe(schema, d.get("data") or {}, lg, names, mask)
        elif t.kind == "level_entered":
            what = _("Now handled at %(level)s level: %(unit)s", level=word(LEVELS, d.get("level")), unit=unit or "")
        elif t.kind == "dispatched":
            what = _("Dispatched to %(names)s", names="、".join(names.get(x, x) for x in d.get("assignees") or []))
        elif t.kind == "escalated":
            what = _("Escalated from %(a)s to %(b)s", a=units.get(d.get("from_unit"), d.get("from_unit") or ""),
                     b=units.get(d.get("to_unit"), d.get("to_unit") or ""))
        elif t.kind in ("urged", "urge_recorded") and d.get("comment"):
            details = [(_("Comment"), d["comment"])]
        elif t.kind == "archived":
            details = [(_("Result"), word(RESULTS, d.get("result")))]
        elif t.kind == "verified":
            details = [(_("Residents satisfied"), _("Yes") if d.get("satisfied") else _("No"))]
        elif unit and t.kind in ("resolved", "cannot_resolve", "warning", "accountability", "supervision_opened",
                                 "rework"):
            what = f"{what}（{unit}）"
        out.append(Entry(t.at, who, t.kind, what, details))
    return out


def case_context(svc, page: pages.CasePage) -> dict:
    labels = form_labels()
    steps = pages.level_progress(page)
    pages.progress_units(svc, steps)
    return {"page": page, "c": page.case, "labels": labels, "lang": lang(), "entries": timeline(svc, page, labels),
            "due_text": due_text, "photos": {a.id: a for a in page.files}, "steps": steps}


@bp.get("/cases/<int:case_id>")
def show(case_id: int):
    svc = services()
    page = pages.case_page(svc, current_user.id, case_id)
    return render_template("cases/show.html", **case_context(svc, page))


@bp.post("/cases/<int:case_id>/urge")
def urge(case_id: int):
    svc = services()
    cases.get_case(svc, current_user.id, case_id)  # outside the jurisdiction: 404 before anything else
    if not current_user.is_supervisor:
        abort(403)
    comment = (request.form.get("comment") or "").strip()
    try:
        outcome = cases.urge(svc, current_user.id, case_id, comment)
    except InvalidData:
        flash(_("Write a comment to urge."), "error")
    else:
        flash(_("Urged; the comment is recorded on the case.") if outcome == "recorded"
              else _("Urged; the supervision task is done."), "success")
    return redirect(safe_next(request.form.get("next"), "inbox.late") if request.form.get("next")
                    else url_for("cases.show", case_id=case_id))
