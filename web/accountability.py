"""The accountability register (问责台账) and the supervision register (督办台账), with XLSX exports.

Thin: rows come from grid.cases.accountability_register (jurisdiction checked there); an entry's
page shows its open task's form (from the deployed JSON Schema) and completes it through
`grid.cases.service.complete_task`, like the task page, so the supervisor reviews and decides
and the late unit explains where the facts are.
"""
from __future__ import annotations

from datetime import date, datetime, time, timedelta

from flask import Blueprint, Flask, Response, abort, flash, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_login import current_user

from engine import clock, form_validation
from engine.errors import Conflict, InvalidData
from grid.cases import accountability_register as reg
from grid.cases import dashboard as dash
from grid.cases import lists
from grid.cases import service as cases
from grid.cases.accountability_models import ENTRY_STATES, OUTCOMES, SUPERVISION_STATES

from .ui import due_text, form_labels, forms, page_arg, services
from .ui.labels import LEVELS, lang, word

bp = Blueprint("accountability", __name__)
PER_PAGE = 30
XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"

STATE_WORDS = {"review": _l("Awaiting review"), "explain": _l("Awaiting the unit's explanation"),
               "decide": _l("Awaiting the decision"), "closed": _l("Decided"),
               "unstarted": _l("Process not deployed"), "open": _l("Not yet decided")}
OUTCOME_WORDS = {"exempt": _l("Exempt (免责)"), "notice": _l("Notice (通报)"), "interview": _l("Interview (约谈)"),
                 "accountable": _l("Accountable (问责)")}
SUPERVISION_WORDS = {"open": _l("Open"), "urged": _l("Urged"), "ended": _l("Ended without an urge"),
                     "closed": _l("Closed")}


def _day(value: str | None) -> date | None:
    try:
        return date.fromisoformat(value) if value else None
    except ValueError:
        return None


def _filters(states: tuple[str, ...]) -> dict:
    a = request.args
    d_from, d_to = _day(a.get("from")), _day(a.get("to"))
    return {"unit": a.get("unit") or None,
            "date_from": datetime.combine(d_from, time(0), tzinfo=clock.SHANGHAI) if d_from else None,
            "date_to": datetime.combine(d_to + timedelta(days=1), time(0), tzinfo=clock.SHANGHAI) if d_to else None,
            "state": a.get("state") if a.get("state") in states else None}


def _params(*names: str) -> dict:
    return {k: v for k in names if (v := request.args.get(k))}


def _words() -> dict:
    return {"state_words": STATE_WORDS, "outcome_words": OUTCOME_WORDS, "supervision_words": SUPERVISION_WORDS,
            "labels": form_labels(), "lang": lang(), "due_text": due_text,
            "level_word": lambda c: word(LEVELS, c)}


# ---- 问责台账 ------------------------------------------------------------------------------------
@bp.get("/accountability")
def index():
    svc = services()
    f = _filters(ENTRY_STATES + ("open",))
    outcome = request.args.get("outcome") if request.args.get("outcome") in OUTCOMES else None
    result = reg.entries(svc, current_user.id, outcome=outcome, page=page_arg(last=1000), per_page=PER_PAGE, **f)
    picker = lists.unit_picker(svc, current_user.id, f["unit"])
    params = _params("unit", "from", "to", "state", "outcome")
    keep = {k: v for k, v in params.items() if k != "unit"}
    return render_template("accountability/index.html", result=result, picker=picker, f=f, outcome=outcome,
                           params=params, keep=keep, states=ENTRY_STATES + ("open",), outcomes=OUTCOMES,
                           endpoint="accountability.index", which="accountability", **_words())


@bp.get("/accountability/<int:entry_id>")
def show(entry_id: int):
    return _render(reg.entry(services(), current_user.id, entry_id))


def _render(page: reg.EntryPage, state: forms.FormState | None = None, status: int = 200,
            notice: str | None = None):
    svc = services()
    task = next((t for t in page.tasks if t.can_act), None)
    schema = svc.runtime.form_schema(page.version_id, task.form) if task and page.version_id else None
    fields = forms.build(schema, lang(), {}) if schema else []
    return render_template("accountability/show.html", p=page, e=page.row, task=task, schema=schema, fields=fields,
                           state=state or forms.FormState(), notice=notice, which="accountability",
                           title=form_labels().form(task.form, lang(), task.name) if task else None,
                           **_words()), status


@bp.post("/accountability/<int:entry_id>/tasks/<task_guid>")
def submit(entry_id: int, task_guid: str):
    svc = services()
    page = reg.entry(svc, current_user.id, entry_id)
    task = next((t for t in page.tasks if t.task_guid == task_guid), None)
    if task is None:
        return _render(page, status=409, notice=_("This task is no longer active, so your submission changed nothing."))
    if not task.can_act:
        abort(403)
    schema = svc.runtime.form_schema(page.version_id, task.form) or {}
    fields = forms.build(schema, lang(), {})
    sub = forms.read(svc, current_user.id, fields, request.form, request.files, case_id=None)
    errors = forms.merge(dict(sub.errors), forms.error_map(form_validation.validate(schema, sub.data)))
    state = forms.FormState(sub.raw, sub.files, errors, submitted=True)
    if errors:
        return _render(page, state, 422)
    try:
        cases.complete_task(svc, current_user.id, task_guid, sub.data)
    except InvalidData as e:
        state.errors = forms.merge(errors, forms.error_map(form_validation.errors_from(e)))
        return _render(page, state, 422)
    except Conflict:
        return _render(reg.entry(svc, current_user.id, entry_id), status=409,
                       notice=_("This task was already completed by someone else, so your submission changed nothing."))
    flash(_("Done: %(task)s for entry %(no)s.", task=form_labels().form(task.form, lang(), task.name),
            no=page.row.entry_no), "success")
    return redirect(url_for("accountability.show", entry_id=entry_id))


@bp.get("/accountability/export.xlsx")
def export():
    """The register as filtered (up to EXPORT_MAX rows), with the unit hierarchy, the period and
    the filters, and the column definitions on a second sheet."""
    svc = services()
    f = _filters(ENTRY_STATES + ("open",))
    outcome = request.args.get("outcome") if request.args.get("outcome") in OUTCOMES else None
    result = reg.entries(svc, current_user.id, outcome=outcome, page=1, per_page=reg.EXPORT_MAX, **f)
    labels, lg = form_labels(), lang()
    title = _("Accountability register")
    cols = [_("Entry no."), _("Case no."), _("Category"), _("County / district"), _("Township / street"),
            _("Village / community"), _("Level"), _("Late unit"), _("Held by"), _("Due"), _("Overdue at"),
            _("Days late"), _("Days held"), _("Reviewed by"), _("Review"), _("Explanation"), _("Measures"),
            _("State"), _("Outcome"), _("Note"), _("Decided by"), _("Decided at")]
    rows = []
    for r in result.rows:
        h = (r.hierarchy + ["", "", ""])[:3]
        rows.append([r.entry_no, r.case_no, labels.category(r.category, lg), *h, word(LEVELS, r.level), r.unit_name,
                     "、".join(r.staff), _t(r.due_at), _t(r.overdue_at), round(r.late_days, 2), round(r.held_days, 2),
                     r.reviewed_by or "", r.review_comment or "",
                     (r.explanation or (_("None given in time") if r.explanation_missed else "")), r.measures or "",
                     str(STATE_WORDS.get(r.state, r.state)), str(OUTCOME_WORDS.get(r.outcome, "")) if r.outcome else "",
                     r.note or "", r.decided_by or "", _t(r.decided_at)])
    defs = [[_("Entry no."), _("The case number and the entry's number within the case (W1, W2 ...).")],
            [_("Late unit"), _("The unit whose level ran past its time limit; the entry counts there.")],
            [_("Held by"), _("Who held the interrupted task at that moment: the person, or everyone who could take it.")],
            [_("Days late"), _("Working days past the due time when the entry was made.")],
            [_("Days held"), _("Working days from the level's start to the entry.")],
            [_("Review"), _("The comment of the supervisor of the level above.")],
            [_("Explanation"), _("The late unit's written explanation (情况说明).")],
            [_("Outcome"), _("Exempt (免责), notice (通报), interview (约谈) or accountable (问责).")],
            [_("Unit hierarchy"), _("The county, township and village of the late unit.")]]
    body = dash.workbook([dash.Sheet(title, _heading(title, svc, f, params=_params("unit", "from", "to", "state", "outcome"),
                                                     more=result.has_next), cols, rows),
                          dash.Sheet(_("Definitions"), [[_("Column definitions")]], [_("Column"), _("Meaning")], defs)])
    return _xlsx(body, f"accountability-{clock.local(clock.now()):%Y%m%d-%H%M}.xlsx")


def _t(v: datetime | None) -> str:
    return clock.local(v).strftime("%Y-%m-%d %H:%M") if v else ""


def _heading(title: str, svc, f: dict, params: dict, more: bool) -> list[list]:
    hierarchy = " / ".join(n for _c, n in lists.unit_picker(svc, current_user.id, f["unit"]).crumbs) if f["unit"] \
        else _("My whole jurisdiction")
    period = f"{request.args.get('from') or '…'} – {request.args.get('to') or '…'}"
    out = [[title], [_("Unit hierarchy"), hierarchy], [_("Period"), period],
           [_("Filters"), "; ".join(f"{k}={v}" for k, v in params.items()) or _("none")],
           [_("Exported at"), _t(clock.now())]]
    if more:
        out.append([_("Only the first %(n)s rows are exported.", n=reg.EXPORT_MAX)])
    return out


def _xlsx(body: bytes, filename: str) -> Response:
    resp = Response(body, mimetype=XLSX)
    resp.headers["Content-Disposition"] = f'attachment; filename="{filename}"'
    return resp


# ---- 督办台账 ------------------------------------------------------------------------------------
@bp.get("/supervision")
def supervision():
    svc = services()
    f = _filters(SUPERVISION_STATES + ("closed",))
    result = reg.supervisions(svc, current_user.id, page=page_arg(last=1000), per_page=PER_PAGE, **f)
    picker = lists.unit_picker(svc, current_user.id, f["unit"])
    params = _params("unit", "from", "to", "state")
    keep = {k: v for k, v in params.items() if k != "unit"}
    return render_template("accountability/supervision.html", result=result, picker=picker, f=f, params=params,
                           keep=keep, states=SUPERVISION_STATES + ("closed",), endpoint="accountability.supervision",
                           which="supervision", **_words())


@bp.get("/supervision/export.xlsx")
def supervision_export():
    svc = services()
    f = _filters(SUPERVISION_STATES + ("closed",))
    result = reg.supervisions(svc, current_user.id, page=1, per_page=reg.EXPORT_MAX, **f)
    labels, lg = form_labels(), lang()
    title = _("Supervision register")
    cols = [_("Case no."), _("Category"), _("County / district"), _("Township / street"), _("Village / community"),
            _("Level"), _("Supervised unit"), _("Opened"), _("Level due"), _("State"), _("Urged by"), _("Urged at"),
            _("Days to response"), _("Comment"), _("Closed")]
    rows = [[r.case_no, labels.category(r.category, lg), *(r.hierarchy + ["", "", ""])[:3], word(LEVELS, r.level),
             r.unit_name, _t(r.opened_at), _t(r.due_at), str(SUPERVISION_WORDS.get(r.state, r.state)),
             r.responded_by or "", _t(r.responded_at),
             round(r.response_days, 2) if r.response_days is not None else None, r.comment or "", _t(r.closed_at)]
            for r in result.rows]
    defs = [[_("Opened"), _("When the level reached its warning time and a supervision (督办) task opened.")],
            [_("State"), _("Open: waiting for the supervisor. Urged: the supervisor urged (催办). Ended: the level "
                           "finished before anyone urged.")],
            [_("Days to response"), _("Working days from the opening to the supervisor's urge.")],
            [_("Unit hierarchy"), _("The county, township and village of the supervised unit.")]]
    body = dash.workbook([dash.Sheet(title, _heading(title, svc, f, _params("unit", "from", "to", "state"),
                                                     result.has_next), cols, rows),
                          dash.Sheet(_("Definitions"), [[_("Column definitions")]], [_("Column"), _("Meaning")], defs)])
    return _xlsx(body, f"supervision-{clock.local(clock.now()):%Y%m%d-%H%M}.xlsx")


def register(app: Flask) -> None:
    app.register_blueprint(bp)
