"""Reading instances without changing them: the audit history, the data a task sees, and the
task states a diagram is drawn from. A mixin of `Runtime` (it shares the spec cache)."""
from __future__ import annotations

from collections.abc import Callable
from uuid import UUID

from SpiffWorkflow.bpmn.script_engine import PythonScriptEngine
from SpiffWorkflow.bpmn.workflow import BpmnWorkflow
from SpiffWorkflow.util.task import TaskState
from sqlalchemy import select
from sqlalchemy.orm import Session

from .db import Database
from .errors import NotFound
from .models import Instance, InstanceEvent
from .serializer import load_state
from .step import jsonable


class InstanceReads:
    """Read-only views of one instance (set up by `Runtime.__init__`)."""

    db: Database
    script_engine: PythonScriptEngine
    _version: Callable[[Session, int], tuple]  # SpecCache's

    def history(self, instance_id: int) -> list[InstanceEvent]:
        """The instance's audit events in order."""
        with self.db.read() as s:
            return list(s.scalars(select(InstanceEvent).where(InstanceEvent.instance_id == instance_id)
                                  .order_by(InstanceEvent.seq)))

    def instance(self, instance_id: int) -> Instance:
        """The instance row, or NotFound."""
        with self.db.read() as s:
            inst = s.get(Instance, instance_id)
            if inst is None:
                raise NotFound(f"instance {instance_id} does not exist")
            return inst

    def _load(self, s: Session, instance_id: int) -> BpmnWorkflow:
        inst = s.get(Instance, instance_id)
        if inst is None:
            raise NotFound("no such instance")
        spec, subs, _f, _p = self._version(s, inst.version_id)
        return load_state(inst.state_json, spec, subs, self.script_engine)

    def task_data(self, instance_id: int, task_guid: str) -> dict:
        """The data a READY task sees (for prefilling its form); deserializes one instance."""
        with self.db.read() as s:
            wf = self._load(s, instance_id)
        task = wf.get_task_from_id(UUID(task_guid))
        if task is None:
            raise NotFound("no such task")
        return jsonable(task.data)

    def task_states(self, instance_id: int) -> dict[str, str]:
        """bpmn id -> latest state name, for drawing the diagram (completed path, current task)."""
        with self.db.read() as s:
            wf = self._load(s, instance_id)
        out: dict[str, str] = {}
        rank = {"COMPLETED": 1, "CANCELLED": 0, "WAITING": 2, "STARTED": 2, "READY": 3, "ERROR": 4}
        for t in wf.get_tasks():
            bid = t.task_spec.bpmn_id
            if not bid or t.state & TaskState.PREDICTED_MASK:
                continue
            name = TaskState.get_name(t.state)
            if rank.get(name, -1) >= rank.get(out.get(bid, ""), -1):
                out[bid] = name
        return out
