"""The task page: the form rendered from the task's JSON Schema beside the case.

A submission is validated server-side (jsonschema); errors show inline, nothing is saved and
what was typed stays. A submission for a task someone already completed (a stale page, a
double click) changes nothing and says who did it; two writes at the same moment get a clean
conflict that keeps the answers.

A form that names a 重复件 (`duplicate_of`, the dispatch form) shows the earlier cases this one
repeats (same registered party, or nearby and of the same category: `checks.repeats`), and the
case a 重复件 names, with its summary, before it is confirmed: live through the preview fragment
(`/tasks/<guid>/duplicate?case_no=...`), or without JavaScript by a round trip in which the
server shows the summary and waits for the form to come back with `duplicate_confirm`. The open
urges (督办/催办) of the task are shown on it until it is done."""
from __future__ import annotations

from dataclasses import dataclass, field

from flask import Blueprint, abort, flash, g, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_login import current_user

from engine import form_validation
from engine.errors import Conflict, InvalidData
from grid.cases import accountability_register, attachments, checks, notifications, pages
from grid.cases import service as cases
from grid.registry import visits as registry_visits
from web.registry.words import word as registry_word

from . import due_text, form_labels, forms, services
from .cases import case_context
from .labels import lang

bp = Blueprint("tasks", __name__)


@dataclass
class TaskMarks:
    """What task cards show beside the due state: which are supervised (督办), and their open urges."""

    supervised: set[str] = field(default_factory=set)
    urges: dict[str, list[notifications.Urge]] = field(default_factory=dict)


@bp.app_template_global()
def task_marks(rows) -> TaskMarks:
    """The 督办 badges and open urges of a page's task cards (read once per request and rows)."""
    guids = tuple(dict.fromkeys(r.task_guid for r in rows or [] if getattr(r, "task_guid", None)))
    cache = g.setdefault("gridflow_task_marks", {})
    if guids not in cache:
        if not guids or not current_user.is_authenticated:
            cache[guids] = TaskMarks()
        else:
            cache[guids] = TaskMarks(*notifications.task_marks(services(), current_user.id, list(guids)))
    return cache[guids]


def seed_marks(rows, marks: tuple[set[str], dict]) -> None:
    """Hand `task_marks` what a service already read for these rows' cards (the inbox reads them
    with its rows), so the template does not read them again."""
    guids = tuple(dict.fromkeys(r.task_guid for r in rows or [] if getattr(r, "task_guid", None)))
    supervised, urges = marks
    g.setdefault("gridflow_task_marks", {})[guids] = TaskMarks(
        {x for x in supervised if x in guids}, {k: v for k, v in urges.items() if k in guids})


def names_duplicate(page: pages.TaskPage) -> bool:
    """Whether the task's form can name the original of a 重复件 (the dispatch form)."""
    return pages.names_duplicate(page.case, page.schema)


def wants_duplicate(data: dict) -> bool:
    """The submitted data names a 重复件 (the same rule as `checks.check_dispatch`)."""
    return bool(data.get("duplicate_of")) and data.get("action", checks.DUPLICATE) == checks.DUPLICATE


def _render(svc, page: pages.TaskPage, state: forms.FormState, status: int = 200, notice: str | None = None,
            lock_version: int | None = None, preview: dict | None = None):
    fields = forms.build(page.schema, lang(), page.staff_options) if page.schema and page.can_act else []
    ctx = {"lang": lang(), "due_text": due_text, "preview": preview, "repeats": [], "names_duplicate": False,
           "urges": [], "has_signature": any(f.widget == "signature" for f in fields)}
    # a page read with `details` carries the case page, repeats and urges; otherwise they are read here
    if page.can_act and names_duplicate(page):
        ctx["names_duplicate"] = True
        ctx["repeats"] = page.repeats if page.repeats is not None else checks.repeats(svc, current_user.id,
                                                                                      page.case.id)
        ctx["repeat_days"], ctx["repeat_meters"] = checks.repeat_days(), f"{checks.repeat_meters():g}"
    if page.item.state == "open":
        ctx["urges"] = page.urges if page.urges is not None else notifications.open_urges(
            svc, current_user.id, [page.item.task_guid]).get(page.item.task_guid, [])
    if page.case:
        ctx.update(case_context(svc, page.view or pages.case_page(svc, current_user.id, page.case.id)))
    else:
        ctx["visit"] = registry_visits.visit_context(svc, [page.item.instance_id]).get(page.item.instance_id)
        ctx["visit_word"] = registry_word
    return render_template("tasks/task.html", t=page, fields=fields, state=state, notice=notice,
                           lock_version=page.lock_version if lock_version is None else lock_version,
                           title=form_labels().form(page.item.form, lang(), page.item.name),
                           **ctx), status


@bp.get("/tasks/<task_guid>")
def show(task_guid: str):
    svc = services()
    entry_id = accountability_register.task_entry(svc, task_guid)
    if entry_id is not None:  # an accountability task is done on its register entry's page
        return redirect(url_for("accountability.show", entry_id=entry_id))  # which checks who may see it
    page = pages.task_page(svc, current_user.id, task_guid, details=True)
    return _render(svc, page, forms.FormState())


@bp.post("/tasks/<task_guid>")
def submit(task_guid: str):
    svc = services()
    page = pages.task_page(svc, current_user.id, task_guid)
    if page.item.state != "open":
        return _render(svc, page, forms.FormState(), 409, _done_notice(page))
    if not page.can_act:
        abort(403)
    try:
        expected = int(request.form.get("lock_version", ""))
    except ValueError:
        expected = None
    fields = forms.build(page.schema or {}, lang(), page.staff_options)
    sub = forms.read(svc, current_user.id, fields, request.form, request.files, case_id=page.case.id if page.case else None)
    errors = dict(sub.errors)
    if page.schema:
        errors = forms.merge(errors, forms.error_map(form_validation.validate(page.schema, sub.data)))
    state = forms.FormState(sub.raw, sub.files, errors, submitted=True)
    if errors:
        return _render(svc, page, state, 422, lock_version=expected)
    if page.case and names_duplicate(page) and wants_duplicate(sub.data) and (
            (request.form.get("duplicate_confirm") or "").strip() != str(sub.data["duplicate_of"]).strip()):
        # the named case is shown with its summary first; the form comes back to confirm it
        try:
            shown = checks.duplicate_preview(svc, current_user.id, str(sub.data["duplicate_of"]), page.case.id)
        except InvalidData as e:
            state.errors = forms.merge(errors, forms.error_map(form_validation.errors_from(e)))
            return _render(svc, page, state, 422, lock_version=expected)
        return _render(svc, page, state, 200, lock_version=expected, preview=shown)
    forms.save_uploads(svc, current_user.id, sub)  # only now, the form being valid: pending until linked
    try:
        # Conflicts are per task: a form is refused when its own task was already done (or when
        # two writes collide), not because another task of the same case moved on meanwhile.
        cases.complete_task(svc, current_user.id, task_guid, sub.data)
    except InvalidData as e:
        attachments.discard(svc, current_user.id, sub.new_uploads)
        state.errors = forms.merge(errors, forms.error_map(form_validation.errors_from(e)))
        return _render(svc, page, state, 422, lock_version=expected)
    except Conflict:
        attachments.discard(svc, current_user.id, sub.new_uploads)
        fresh = pages.task_page(svc, current_user.id, task_guid, details=True)
        if pages.check_stale(svc, task_guid) and fresh.can_act:
            return _render(svc, fresh, state, 409, _("The case changed while you were filling in this form "
                                                     "(see its timeline). Nothing was saved: check your answers "
                                                     "and submit again."))
        return _render(svc, fresh, forms.FormState(), 409, _done_notice(fresh))
    if page.case and sub.upload_ids:
        attachments.link(svc, current_user.id, sub.upload_ids, page.case.id)
    elif sub.upload_ids:  # a form without a case (a household visit): the uploads stay the person's
        attachments.keep(svc, current_user.id, sub.upload_ids)
    done = form_labels().form(page.item.form, lang(), page.item.name)
    flash(_("Done: %(task)s for case %(no)s.", task=done, no=page.case.case_no) if page.case
          else _("Done: %(task)s.", task=done), "success")  # a household visit has no case number
    return redirect(url_for("inbox.index"))


@bp.get("/tasks/<task_guid>/duplicate")
def duplicate_preview(task_guid: str):
    """The fragment the dispatch page shows under 重复件: the named case's summary, or the same
    words for a number that does not exist and one outside the jurisdiction (a lookup while
    typing, so 200 either way: the page reads `.dup-found`; the submit itself is refused 422)."""
    svc = services()
    page = pages.task_page(svc, current_user.id, task_guid)  # NotFound outside the jurisdiction
    if not names_duplicate(page) or page.item.state != "open":
        abort(404)
    if not page.can_act:
        abort(403)
    no = (request.args.get("case_no") or "").strip()[:40]
    try:
        shown = checks.duplicate_preview(svc, current_user.id, no, page.case.id) if no else None
    except InvalidData as e:
        return render_template("tasks/_duplicate.html", p=None, error=_duplicate_error(e), labels=form_labels(),
                               lang=lang())
    return render_template("tasks/_duplicate.html", p=shown, error=None, labels=form_labels(), lang=lang())


def _duplicate_error(e: InvalidData) -> str:
    if str(e) == checks.NO_SUCH_CASE:
        return _("There is no case with this number in your jurisdiction.")
    return _("A case cannot be a duplicate of itself.")


def _done_notice(page: pages.TaskPage) -> str:
    if page.item.state == "completed":
        return _("This task was already completed by %(who)s, so your submission changed nothing.",
                 who=page.closed_by or _("someone else"))
    return _("This task is no longer active (the case moved on), so your submission changed nothing.")
