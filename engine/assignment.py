"""Who a user task goes to, and the work-item row it becomes.

The runtime asks an `Assigner` hook (the domain's, or `default_assigner`) for each READY user
task; the hook sees a `TaskContext` (the task's properties and data), never the workflow.

A READY task can be handed to someone else (`reassign`, e.g. a mediator on leave): the new
assignment is kept on the task itself (`internal_data['assignment']`, so a migration or any
later projection of the task keeps it), its work-item row is updated in the same step, and the
audit trail records who moved it, from whom, to whom and why.
"""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from SpiffWorkflow.util.task import TaskState
from sqlalchemy import update
from sqlalchemy.orm import Session

from . import sandbox
from .errors import Conflict, InvalidData, NotFound
from .models import WorkItem
from .step import Step, jsonable
from .timers import sla_times

OVERRIDE_KEY = "assignment"  # in a task's internal_data: the assignment a reassignment set


@dataclass
class Assignment:
    unit_id: str | None = None
    role: str | None = None
    user_id: str | None = None


@dataclass
class TaskContext:
    """What an assignment hook sees: the task's properties and data, never the workflow."""

    process_id: str
    task_spec: str
    name: str | None
    props: dict
    data: dict
    instance_id: int | None
    session: Any = None  # the step's session, for hooks that must look something up


Assigner = Callable[[TaskContext], Assignment]


def default_assigner(ctx: TaskContext) -> Assignment:
    """`role` is a literal (or `roleExpression` an expression); `unit` and `user` are sandboxed
    expressions over task data."""
    def ev(key: str) -> str | None:
        expr = ctx.props.get(key)
        if not expr:
            return None
        value = sandbox.evaluate(expr, ctx.data)
        return None if value is None else str(value)

    role = ev("roleExpression") if ctx.props.get("roleExpression") else (ctx.props.get("role") or None)
    return Assignment(unit_id=ev("unit"), role=role, user_id=ev("user"))


def work_item_row(assigner: Assigner, s: Session, step: Step, task, now: datetime) -> dict:
    """The work-item row for a READY user task: the assignment hook's answer plus its SLA times."""
    ts = task.task_spec
    props = (ts.extensions or {}).get("properties", {}) or {}
    ctx = TaskContext(process_id=step.process_id, task_spec=ts.bpmn_id, name=ts.bpmn_name, props=props,
                      data=task.data, instance_id=step.instance_id, session=s)
    a = assigner(ctx)
    override = (getattr(task, "internal_data", None) or {}).get(OVERRIDE_KEY)
    if override:  # reassigned: the person (or unit/role) it was handed to, not the expression's answer
        a = Assignment(unit_id=override.get("unit_id", a.unit_id), role=override.get("role", a.role),
                       user_id=override.get("user_id"))
    warn, due = sla_times(task)
    return {"instance_id": step.instance_id, "task_guid": str(task.id), "task_spec": ts.bpmn_id,
            "process_id": step.process_id, "name": ts.bpmn_name or ts.bpmn_id, "form": props.get("form"),
            "unit_id": a.unit_id, "role": a.role, "user_id": a.user_id, "state": "open", "created_at": now,
            "warn_at": warn, "due_at": due, "closed_at": None, "closed_by": None,
            "props": {k: v for k, v in props.items() if k != "form"}}


def reassign_act(task_guid: str, to: Assignment, reason: str, expect: dict | None = None):
    """The step action that hands a READY user task to `to` (None fields keep the current unit and
    role). With `expect` (the assignment the caller checked: user_id, unit_id, role), a task that
    moved meanwhile is a Conflict. The step records `reassigned` (an audit event and a domain
    event) with from, to and the reason."""
    from uuid import UUID

    def act(wf, step: Step, s: Session) -> None:
        try:
            task = wf.get_task_from_id(UUID(task_guid))
        except ValueError as e:
            raise NotFound("no such task") from e
        if task is None:
            raise NotFound("no such task")
        if task.state != TaskState.READY or not task.task_spec.manual:
            raise Conflict("this task is no longer open")
        row = s.execute(WorkItem.__table__.select().where(WorkItem.task_guid == task_guid)).first()
        if row is None or row.state != "open":
            raise Conflict("this task is no longer open")
        current = {"user_id": row.user_id, "unit_id": row.unit_id, "role": row.role}
        new = {"user_id": to.user_id, "unit_id": to.unit_id or row.unit_id, "role": to.role or row.role}
        if new == current:
            raise InvalidData("the task is already assigned so", [{"path": "to", "validator": "same",
                                                                  "message": "already assigned to this person"}])
        if expect is not None and any(expect.get(k) != current[k] for k in expect):
            raise Conflict("this task was reassigned meanwhile; reload and try again")
        task.internal_data[OVERRIDE_KEY] = new
        s.execute(update(WorkItem).where(WorkItem.task_guid == task_guid).values(**new))
        step.current_task = task.task_spec.bpmn_id
        step.emit("reassigned", {"guid": task_guid, "name": task.task_spec.bpmn_name,
                                 "from_user": current["user_id"], "from_unit": current["unit_id"],
                                 "from_role": current["role"], "to_user": new["user_id"], "to_unit": new["unit_id"],
                                 "to_role": new["role"], "reason": jsonable(reason)})

    return act
