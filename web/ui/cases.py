"""The case page (summary, open tasks with handlers and due times, parties, photos, location,
the on-the-spot settlement text, the cases it is linked with (重复件, both ways), the handwritten
signatures of the verify step, the timeline from the audit log, attachments, the process
diagram) and urging (催办)."""
from __future__ import annotations

from dataclasses import dataclass, field

from flask import Blueprint, abort, current_app, flash, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_login import current_user

from engine.errors import InvalidData
from grid import masking
from grid.cases import badges, pages
from grid.cases import labels as case_labels
from grid.cases import service as cases

from . import case_actions, due_text, form_labels, safe_next, services
from .forms import build, describe, image_key
from .labels import EVENTS, LEVELS, RESULTS, lang, word

bp = Blueprint("cases", __name__)


@dataclass
class Signature:
    """A handwritten signature of a task's form: the field's label, the typed name, the PNG."""

    label: str
    name: str
    attachment_id: str
    at: object


@dataclass
class Entry:
    at: object
    who: str
    kind: str
    what: str
    details: list[tuple[str, str]]
    signatures: list[Signature] = field(default_factory=list)


def signatures_of(schema: dict | None, data: dict, lg: str, at) -> list[Signature]:
    """The drawings a completed form names (signature fields with an `x-image`)."""
    if not schema or not isinstance(data, dict):
        return []
    return [Signature(f.label, str(data.get(f.key) or ""), str(data[image_key(f)]), at)
            for f in build(schema, lg) if image_key(f) and isinstance(data.get(image_key(f)), str)]


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
        sigs: list[Signature] = []
        unit = units.get(d.get("unit"), d.get("unit")) if d.get("unit") else None
        if t.kind == "task_completed":
            what = labels.form(t.form, lg, d.get("name"))
            schema = svc.runtime.form_schema(page.version_id, t.form) if t.form and page.version_id else None
            details = describe(schema, d.get("data") or {}, lg, {**units, **names}, mask)
            sigs = signatures_of(schema, d.get("data") or {}, lg, t.at)
        elif t.kind == "level_entered":
            what = _("Now handled at %(level)s level: %(unit)s", level=word(LEVELS, d.get("level")), unit=unit or "")
        elif t.kind == "dispatched":
            what = _("Dispatched to %(names)s", names="、".join(names.get(x, x) for x in d.get("assignees") or []))
        elif t.kind == "escalated":
            what = _("Escalated from %(a)s to %(b)s", a=units.get(d.get("from_unit"), d.get("from_unit") or ""),
                     b=units.get(d.get("to_unit"), d.get("to_unit") or ""))
        elif case_actions.describe_event(t.kind, d, names, units):  # 改派: from whom to whom
            what, details = case_actions.describe_event(t.kind, d, names, units)
        elif t.kind in ("urged", "urge_recorded") and d.get("comment"):
            details = [(_("Comment"), d["comment"])]
        elif t.kind == "archived":
            details = [(_("Result"), word(RESULTS, d.get("result")))]
            if d.get("result") == "settled_on_spot" and page.case.settlement:
                details.append((_("How it was settled on the spot"), page.case.settlement))
        elif t.kind == "verified":
            details = [(_("Residents satisfied"), _("Yes") if d.get("satisfied") else _("No"))]
        elif unit and t.kind in ("resolved", "cannot_resolve", "warning", "accountability", "supervision_opened",
                                 "rework"):
            what = f"{what}（{unit}）"
        out.append(Entry(t.at, who, t.kind, what, details, sigs))
    return out


def case_context(svc, page: pages.CasePage) -> dict:
    labels = form_labels()
    steps = pages.level_progress(page)
    pages.progress_units(svc, steps)
    entries = timeline(svc, page, labels)
    if page.supervised is not None:  # read with the page
        sup = page.supervised
    else:
        sup = badges.supervised(svc, task_guids=[t.task_guid for t in page.tasks])["tasks"] if page.tasks else set()
    ctx = {"page": page, "c": page.case, "labels": labels, "lang": lang(), "entries": entries,
           "due_text": due_text, "photos": {a.id: a for a in page.files}, "steps": steps,
           "signatures": [sg for e in entries for sg in e.signatures], "supervised_tasks": sup}
    # what the page read already answers the template's may_reassign/may_transfer for this case
    for key, known in (("may_reassign", page.may_reassign), ("may_transfer", page.may_transfer)):
        if known is not None:
            ctx[key] = _known(key, page.case.id, known)
    return ctx


def _known(key: str, case_id: int, known: bool):
    def ask(asked_id: int) -> bool:
        return known if asked_id == case_id else current_app.jinja_env.globals[key](asked_id)
    return ask


@bp.get("/cases/<int:case_id>")
def show(case_id: int):
    svc = services()
    page = pages.case_page(svc, current_user.id, case_id, actions=True)
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
