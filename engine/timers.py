"""Time as an instance sees it: when it next wakes up, when a work item warns and falls due,
and the `workdays(n)` helper that scripts use to set such times in working days."""
from __future__ import annotations

from datetime import datetime

from SpiffWorkflow.bpmn.specs.control import BoundaryEventSplit
from SpiffWorkflow.bpmn.specs.event_definitions.timer import TimerEventDefinition
from SpiffWorkflow.bpmn.workflow import BpmnWorkflow
from SpiffWorkflow.util.task import TaskState

from . import clock, sandbox
from .calendar import WorkCalendar

TIMER_TYPES = {"DurationTimerEventDefinition", "TimeDateEventDefinition", "CycleTimerEventDefinition"}
ACTIVE = TaskState.READY | TaskState.STARTED | TaskState.WAITING


def _workdays(n: int) -> str:
    """`n` working days (工作日) from now, per the calendar of the runtime running this step."""
    step = sandbox.current_step.get()
    cal = step.calendar if step is not None and step.calendar is not None else WorkCalendar()
    return cal.add_workdays(clock.now(), int(n)).isoformat()


sandbox.register_helper("workdays", _workdays)


def next_timer_at(wf: BpmnWorkflow) -> datetime | None:
    """The earliest waiting timer, including timers inside call activities and subprocesses."""
    vals = []
    for e in wf.waiting_events():
        if e.event_type in TIMER_TYPES and e.value:
            v = e.value.get("next") if isinstance(e.value, dict) else e.value
            vals.append(datetime.fromisoformat(v))
    return min(vals).astimezone(clock.UTC) if vals else None


def sla_times(task) -> tuple[datetime | None, datetime | None]:
    """Warning and due times from boundary timers on the task or on any activity enclosing it."""
    warn: list[datetime] = []
    due: list[datetime] = []
    t = task
    while t is not None:
        a = t
        while a is not None:
            p = a.parent
            if p is not None and isinstance(p.task_spec, BoundaryEventSplit) and a.state & ACTIVE:
                for b in p.children:
                    if b is a or b.state & TaskState.CANCELLED:
                        continue
                    bs = b.task_spec
                    if not isinstance(getattr(bs, "event_definition", None), TimerEventDefinition):
                        continue
                    value = b.internal_data.get("event_value")
                    if isinstance(value, dict):
                        value = value.get("next")
                    if not value:
                        continue
                    when = datetime.fromisoformat(value).astimezone(clock.UTC)
                    kind = ((bs.extensions or {}).get("properties") or {}).get("sla")
                    if kind is None:
                        kind = "due" if getattr(bs, "cancel_activity", True) else "warning"
                    (warn if kind == "warning" else due).append(when)
            a = p
        wf = t.workflow
        parent_id = getattr(wf, "parent_task_id", None)
        t = wf.top_workflow.get_task_from_id(parent_id) if parent_id is not None else None
    return (min(warn) if warn else None, min(due) if due else None)
