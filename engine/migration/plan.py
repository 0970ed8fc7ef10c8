"""Planning one instance's move: the verdict, and if it can move, the move done in memory.

The move runs SpiffWorkflow's `migrate_workflow` over the top process and every sub-process,
then puts back what it resets: the data and internal data (armed timer values, i.e. SLA due
times) of every READY or WAITING task that survives. Nothing is saved here: the dry run keeps
the verdict, `execute` saves the moved state.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from types import SimpleNamespace
from typing import TYPE_CHECKING

from SpiffWorkflow.bpmn.util.diff import migrate_workflow
from SpiffWorkflow.util.task import TaskState
from sqlalchemy.orm import Session

from ..errors import EngineError
from ..models import Instance, ProcessVersion, WorkItem
from ..serializer import dump_state, load_state
from ..timers import next_timer_at
from .diff import PairDiff
from .labels import Msg, failure, label, msg, state_name
from .rule import RESET, check, is_timer
from .snapshot import row_dict

if TYPE_CHECKING:
    from .migrator import Migrator


class MigrationRefused(EngineError):
    """The instance cannot be moved (the reasons say why)."""

    def __init__(self, reasons: list[Msg]):
        self.reasons = reasons
        super().__init__("; ".join(reasons))


@dataclass
class Plan:
    """What migrating one instance means; `state_json` etc. are set when it can move."""

    instance_id: int
    business_key: str | None
    from_version_id: int
    to_version_id: int
    lock_version: int
    event_seq: int
    process_id: str
    ok: bool = False
    reasons: list[Msg] = field(default_factory=list)  # labels.Msg: English text, code and arguments
    notes: list[Msg] = field(default_factory=list)
    at: list[str] = field(default_factory=list)  # where the instance stands (open tasks)
    state_before: str | None = None
    next_timer_before: datetime | None = None
    state_json: str | None = None
    next_timer: datetime | None = None
    ready: dict = field(default_factory=dict)  # guid -> task (after migration)
    work_items_before: list[dict] = field(default_factory=list)
    error: str | None = None

    def verdict(self) -> dict:
        return {"instance_id": self.instance_id, "business_key": self.business_key, "ok": self.ok,
                "reasons": self.reasons, "notes": self.notes, "at": self.at,
                "from_version_id": self.from_version_id, "to_version_id": self.to_version_id}


def apply(wf, pair: PairDiff, to_label: str) -> list:
    """Move a loaded workflow onto the new specs, keeping task data and armed timers; returns the
    READY user tasks."""
    parts = [(wf, pair.top, pair.spec2)]
    for sp in wf.subprocesses.values():
        parts.append((sp, pair.deps[sp.spec.name], pair.deps2[sp.spec.name]))
    snap = {t.id: (t.state, t.data, t.internal_data, t.last_state_change)
            for part, _sd, _ns in parts for t in part.tasks.values() if t.state & RESET}
    removed = []
    for part, sd, new_spec in parts:
        alignment = {}
        for t in part.tasks.values():
            new = pair.aligned(sd, t.task_spec, new_spec)
            if new is not None:
                alignment[t] = new
        removed += migrate_workflow(SimpleNamespace(alignment=alignment), part, new_spec)
    wf.subprocess_specs = pair.deps2
    for t in removed:
        if not t.has_state(TaskState.PREDICTED_MASK | TaskState.FUTURE):
            raise MigrationRefused([msg("would_discard", element=label(t.task_spec), state=state_name(t))])
    for tid, (state, data, idata, changed_at) in snap.items():
        t = wf.get_task_from_id(tid)
        if t is None:
            raise MigrationRefused([msg("would_drop", state=TaskState.get_name(state))])
        t.data, t.internal_data = data, idata
        if t.state != state:
            if state == TaskState.WAITING and t.state == TaskState.READY and is_timer(t.task_spec):
                # re-armed, a timer that is due but not fired yet turns READY: keep it waiting, with
                # its original due time, so the next sweep fires it exactly as it would have
                t._set_state(TaskState.WAITING)
                wf.event_manager.add_task(t)
            else:
                raise MigrationRefused([msg("would_turn", element=label(t.task_spec), state=state_name(t),
                                            before=TaskState.get_name(state))])
        t.last_state_change = changed_at
    ready = []
    for part, _sd, _ns in parts:
        specs = part.spec.task_specs
        for t in part.tasks.values():
            if specs.get(t.task_spec.name) is not t.task_spec:
                raise MigrationRefused([msg("no_counterpart", element=label(t.task_spec), version=to_label)])
            if t.state == TaskState.READY:
                if not t.task_spec.manual:
                    raise MigrationRefused([msg("left_alone", element=label(t.task_spec))])
                ready.append(t)
    return ready


def plan(m: Migrator, s: Session, inst: Instance, to: ProcessVersion, rows: list[WorkItem],
         roundtrip: bool | None = None) -> Plan:
    """Decide for one instance, and if it can move, migrate it in memory (nothing is saved)."""
    p = Plan(instance_id=inst.id, business_key=inst.business_key, from_version_id=inst.version_id,
             to_version_id=to.id, lock_version=inst.lock_version, event_seq=inst.event_seq,
             process_id=inst.process_id)
    p.at = sorted({w.task_spec for w in rows})
    p.work_items_before = [row_dict(w) for w in rows]
    to_label = f"v{to.number}"
    if inst.process_id != to.process_id:
        p.reasons.append(msg("other_process", process=inst.process_id, target=to.process_id))
        return p
    if inst.version_id == to.id:
        p.reasons.append(msg("already_on", version=to_label))
        return p
    if inst.status != "running":
        p.reasons.append(msg("failed_step") if inst.status == "failed" else msg("status", status=inst.status))
        return p
    try:
        pair = m.pair(s, inst.version_id, to.id)
        spec1, deps1, _f, _pid = m.rt.specs(s, inst.version_id)
        wf = load_state(inst.state_json, spec1, deps1, m.rt.script_engine)
        p.reasons, p.notes = check(wf, pair, to_label)
        if p.reasons:
            return p
        p.state_before = inst.state_json
        p.next_timer_before = inst.next_timer_at
        ready = apply(wf, pair, to_label)
        p.state_json = dump_state(wf)
        if m.verify_roundtrip if roundtrip is None else roundtrip:
            wf = load_state(p.state_json, pair.spec2, pair.deps2, m.rt.script_engine)
            ready = wf.get_tasks(state=TaskState.READY, manual=True)
        p.next_timer = next_timer_at(wf)
        p.ready = {str(t.id): t for t in ready}
        p.ok = True
    except MigrationRefused as e:
        p.reasons = list(e.reasons)
    except Exception as e:  # noqa: BLE001 - a verdict, not a crash
        p.reasons = [failure(e)]
        p.error = p.reasons[0]
    return p
