"""Who a user task goes to, and the work-item row it becomes.

The runtime asks an `Assigner` hook (the domain's, or `default_assigner`) for each READY user
task; the hook sees a `TaskContext` (the task's properties and data), never the workflow.
"""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy.orm import Session

from . import sandbox
from .step import Step
from .timers import sla_times


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
    warn, due = sla_times(task)
    return {"instance_id": step.instance_id, "task_guid": str(task.id), "task_spec": ts.bpmn_id,
            "process_id": step.process_id, "name": ts.bpmn_name or ts.bpmn_id, "form": props.get("form"),
            "unit_id": a.unit_id, "role": a.role, "user_id": a.user_id, "state": "open", "created_at": now,
            "warn_at": warn, "due_at": due, "closed_at": None, "closed_by": None,
            "props": {k: v for k, v in props.items() if k != "form"}}
