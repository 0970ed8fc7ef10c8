"""How verdicts, notes and reports name elements, tasks and versions."""
from __future__ import annotations

from SpiffWorkflow.util.task import TaskState

from ..models import ProcessVersion


def spec_name(spec) -> str | None:
    """The element's label; a multi-instance task carries it on its inner task spec."""
    name = getattr(spec, "bpmn_name", None)
    child = getattr(spec, "task_spec", None)
    if not name and isinstance(child, str):
        inner = getattr(spec, "_wf_spec", None)
        inner = inner.task_specs.get(child) if inner is not None else None
        name = getattr(inner, "bpmn_name", None)
    return name


def label(spec) -> str:
    """The element as `name (id)`, the way verdicts and notes show it."""
    name = spec_name(spec)
    bid = getattr(spec, "bpmn_id", None) or spec.name
    return f"{name} ({bid})" if name and name != bid else bid


def state_name(task) -> str:
    """The task's state as SpiffWorkflow names it (READY, WAITING, ...)."""
    return TaskState.get_name(task.state)


def vlabel(v: ProcessVersion) -> str:
    """`process v3`, for messages."""
    return f"{v.process_id} v{v.number}"
