"""The task page: the form rendered from the task's JSON Schema beside the case.

A submission is validated server-side (jsonschema); errors show inline, nothing is saved and
what was typed stays. A submission for a task someone already completed (a stale page, a
double click) changes nothing and says who did it; two writes at the same moment get a clean
conflict that keeps the answers."""
from __future__ import annotations

from flask import Blueprint, abort, flash, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_login import current_user

from engine import form_validation
from engine.errors import Conflict, InvalidData
from grid.cases import attachments, pages
from grid.cases import service as cases
from grid.registry import visits as registry_visits
from web.registry.words import word as registry_word

from . import due_text, form_labels, forms, services
from .cases import case_context
from .labels import lang

bp = Blueprint("tasks", __name__)


def _render(svc, page: pages.TaskPage, state: forms.FormState, status: int = 200, notice: str | None = None,
            lock_version: int | None = None):
    fields = forms.build(page.schema, lang(), page.staff_options) if page.schema and page.can_act else []
    ctx = {"lang": lang(), "due_text": due_text}
    if page.case:
        ctx.update(case_context(svc, pages.case_page(svc, current_user.id, page.case.id)))
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
    page = pages.task_page(svc, current_user.id, task_guid)
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
    try:
        # Conflicts are per task: a form is refused when its own task was already done (or when
        # two writes collide), not because another task of the same case moved on meanwhile.
        cases.complete_task(svc, current_user.id, task_guid, sub.data)
    except InvalidData as e:
        state.errors = forms.merge(errors, forms.error_map(form_validation.errors_from(e)))
        return _render(svc, page, state, 422, lock_version=expected)
    except Conflict:
        fresh = pages.task_page(svc, current_user.id, task_guid)
        if pages.check_stale(svc, task_guid) and fresh.can_act:
            return _render(svc, fresh, state, 409, _("The case changed while you were filling in this form "
                                                     "(see its timeline). Nothing was saved: check your answers "
                                                     "and submit again."))
        return _render(svc, fresh, forms.FormState(), 409, _done_notice(fresh))
    if page.case and sub.upload_ids:
        attachments.link(svc, current_user.id, sub.upload_ids, page.case.id)
    flash(_("Done: %(task)s for case %(no)s.", task=form_labels().form(page.item.form, lang(), page.item.name),
            no=page.case.case_no if page.case else ""), "success")
    return redirect(url_for("inbox.index"))


def _done_notice(page: pages.TaskPage) -> str:
    if page.item.state == "completed":
        return _("This task was already completed by %(who)s, so your submission changed nothing.",
                 who=page.closed_by or _("someone else"))
    return _("This task is no longer active (the case moved on), so your submission changed nothing.")
