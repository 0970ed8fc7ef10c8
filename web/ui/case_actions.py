"""Case actions outside a task's form: 改派 (reassign an open task to another person) and
部门协同 (send the case, or parts of it, to departments of the level, picked from a list).

GET shows the case's open tasks the person may move (the dispatcher of the task's level, 网格长 at
the village level) and, for each, the people who may take it; POST moves one. The checks are the
service's (grid.cases.reassign): outside the jurisdiction 404, not the dispatcher 403, a bad
choice 400 with the form shown again and nothing changed.

The department picker (GET/POST /cases/<id>/departments) is for the person who may complete the
level's open dispatch task: it offers the level's staffed departments (widgets/departments.html)
and completes that task with action `transfer`. Every picked code is checked again by the service
(grid.cases.departments.send): one not offered (another level's, unknown, retired, without a
handler, or named twice) is a 422 with the form shown again and nothing changed.
"""
from __future__ import annotations

from flask import Blueprint, Flask, abort, flash, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_login import current_user

from engine import form_validation
from engine.errors import InvalidData
from grid.cases import departments as departments_service
from grid.cases import media
from grid.cases import reassign as reassign_service
from grid.cases import service as cases

from . import forms, labels, services

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


def _person(who: str | None, unit: str | None, role: str | None, names: dict, units: dict) -> str:
    """A task holder in words: the person, with the unit in brackets (or the role at the unit)."""
    place = units.get(unit, unit) if unit else ""
    if who:
        return names.get(who, who) + (f"（{place}）" if place else "")
    return f"{labels.word(labels.ROLES, role) if role else _('Anyone')}（{place}）" if place else _("Anyone")


def describe_event(kind: str, d: dict, names: dict, units: dict) -> tuple[str, list[tuple[str, str]]] | None:
    """The timeline's words for this round's events that need more than a label: 改派 says which
    task moved, from whom (and which unit) to whom, and why. None for other kinds."""
    if kind != "reassigned":
        return None
    a = _person(d.get("from_user"), d.get("from_unit"), d.get("from_role"), names, units)
    b = _person(d.get("to_user"), d.get("to_unit"), d.get("to_role"), names, units)
    what = _("Task reassigned from %(a)s to %(b)s", a=a, b=b)
    details = [(_("Task"), str(d["name"]))] if d.get("name") else []
    details += [(_("Was with"), a), (_("Reassigned to"), b)]
    if d.get("reason"):
        details.append((_("Reason"), str(d["reason"])))
    return what, details


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


# ---- 部门协同: the department picker ----------------------------------------------------------------
ROW_KEYS = ("unit", "part", "days")


def _picker(form: departments_service.TransferForm) -> tuple[forms.Field, str]:
    """The schema's `departments` field as the picker widget, with the departments allowed, and
    the label of the note to the departments."""
    fields = {f.key: f for f in forms.build(form.schema, labels.lang())}
    rows = fields["departments"]
    rows.widget, rows.options = "departments", list(form.choices)
    note = fields.get("dispatch_note")
    return rows, note.label if note else _("Note")


def _read_rows(form: departments_service.TransferForm, posted) -> tuple[list[dict], list[dict], list[int]]:
    """The ticked rows as data, the posted rows to show again (one per offered department, in
    order) and, per data row, the offered department's index (where its errors are shown). The
    codes are the posted ones, not the offer's: the service decides whether they may be picked."""
    data, raw, where = [], [], []
    for i in range(len(form.choices)):
        r = {k: (posted.get(f"departments.{i}.{k}") or "").strip() for k in ROW_KEYS}
        if not any(r.values()):
            continue
        raw.append(r)
        row = {"part": r["part"]} if r["part"] else {}
        if r["unit"]:
            row["unit"] = r["unit"]
        if r["days"]:
            row["days"] = int(r["days"]) if r["days"].isdigit() else r["days"]
        data.append(row)
        where.append(i)
    return data, raw, where


DEPARTMENT_WORDS = {"department": _l("This department cannot be picked for this level."),
                    "staffed": _l("This department has no handler yet."),
                    "uniqueItems": _l("Each department may be picked only once.")}


def _errors(e_list, where: list[int]) -> dict[str, list[str]]:
    """Errors of the data rows, under the offered department's inputs (departments.<i>.<key>)."""
    out: dict[str, list[str]] = {}
    for e in e_list:
        path = [str(p) for p in e.path]
        if len(path) >= 2 and path[0] == "departments" and path[1].isdigit() and int(path[1]) < len(where):
            path[1] = str(where[int(path[1])])
            if len(path) == 2:  # a row's own error (a part without a department ticked ...)
                path.append("unit")
        name = ".".join(path)
        msg = str(DEPARTMENT_WORDS[e.validator]) if e.validator in DEPARTMENT_WORDS else forms.message(e)
        if e.validator == "required" and name.endswith(".unit"):
            msg = _("Tick the department, or clear what you typed for it.")
        out.setdefault(name, [])
        if msg not in out[name]:
            out[name].append(msg)
    return out


def _summary(picker: forms.Field, key: str, message: str) -> str:
    """An error in the summary at the top, naming the department and the field it is about."""
    parts = key.split(".")
    if len(parts) == 3 and parts[1].isdigit() and int(parts[1]) < len(picker.options):
        dept = picker.options[int(parts[1])][1]
        label = next((c.label for c in picker.children if c.key == parts[2]), "")
        return f"{dept} · {label}：{message}" if parts[2] != "unit" else f"{dept}：{message}"
    return message


def _departments_page(case_id: int, form, state: forms.FormState, status: int = 200):
    c = cases.get_case(services(), current_user.id, case_id)
    picker, note_label = _picker(form)
    messages = list(dict.fromkeys(_summary(picker, k, m) for k, v in state.errors.items() for m in v))
    return render_template("cases/departments.html", c=c, form=form, picker=picker, note_label=note_label,
                           state=state, messages=messages), status


def _transfer_form(case_id: int):
    form = departments_service.transfer_form(services(), current_user.id, case_id)  # NotFound: 404
    if form is None:
        abort(403)
    return form


@bp.get("/cases/<int:case_id>/departments")
def departments_form(case_id: int):
    return _departments_page(case_id, _transfer_form(case_id), forms.FormState())


@bp.post("/cases/<int:case_id>/departments")
def departments(case_id: int):
    svc = services()
    form = _transfer_form(case_id)
    if (request.form.get("task") or "") != form.task_guid:  # the dispatch task moved on meanwhile
        abort(409)
    rows, raw, where = _read_rows(form, request.form)
    note = (request.form.get("dispatch_note") or "").strip()
    state = forms.FormState({"departments": raw, "dispatch_note": note}, {}, {}, submitted=True)
    if any(forms.has_control(v) for v in request.form.values()):
        state.errors = {"": [_("The format is not valid.")]}
        return _departments_page(case_id, form, state, 422)
    data = {"action": "transfer", "departments": rows, **({"dispatch_note": note} if note else {})}
    errs = form_validation.validate(form.schema, data)
    if not errs:
        try:
            departments_service.send(svc, current_user.id, case_id, form.task_guid, rows, note or None)
        except InvalidData as e:
            errs = form_validation.errors_from(e)
    if errs:
        state.errors = _errors(errs, where)
        if not rows:
            state.errors = {"departments": [_("Pick at least one department.")]}
        return _departments_page(case_id, form, state, 422)
    flash(_("Sent to %(n)s department(s); each has been told.", n=len(rows)), "success")
    return redirect(url_for("cases.show", case_id=case_id))


def register(app: Flask) -> None:
    """The blueprint, and the words for the new event kinds, role and level."""
    for table, extra in ((labels.EVENTS, EVENT_WORDS), (labels.ROLES, ROLE_WORDS), (labels.LEVELS, LEVEL_WORDS)):
        for k, v in extra.items():
            table.setdefault(k, v)
    app.register_blueprint(bp)
    app.jinja_env.globals["may_reassign"] = lambda case_id: reassign_service.may_reassign(
        services(), current_user.id, case_id)
    app.jinja_env.globals["video_poster"] = media.VIDEO_POSTER  # no frame of a video without ffmpeg
    app.jinja_env.globals["may_transfer"] = lambda case_id: departments_service.may_transfer(
        services(), current_user.id, case_id)
