"""Comparing process versions and moving running instances from one version to another.

The verdict rule (stricter where it matters, looser where spiff-arena is needlessly strict):

* Only the parts of an instance that can still run count. A sub-process or call activity that
  has finished is history: its tasks never run again, so a change to them is harmless (but a
  task whose spec the new version removed cannot be kept, so that blocks).
* In a live part, a task the new version changes or removes blocks the move when:
  - it is in progress (STARTED: a running multi-instance, sub-process or call activity) and the
    change is more than a label; it already follows the old version's wiring (for example it
    would skip a step the new version adds after it);
  - it already ran (COMPLETED) and the change is in what it computed for later steps (a script,
    pre/post-script, or a decision whose output variables differ), or in its outgoing route
    while the instance still stands on that route;
  - it is removed and the instance stands on it, has done it, or is about to reach it.
* Everything else moves, and the dry run says what it means: an open task adopts the new
  form and assignment; a waiting timer keeps its armed due time; a decision that already ran
  keeps the values it computed for the current step (new rules apply next time).

Executing moves each instance through SpiffWorkflow's `migrate_workflow`, then puts back what
it resets: the data and internal data (armed timer values, i.e. SLA due times) of every READY
or WAITING task that survives. The save is the runtime's: one conditional
`UPDATE ... WHERE lock_version = old`, the work items kept (same id and guid) or opened, and a
`version_changed` audit event, in a savepoint per instance. A conflict skips the instance; an
error rolls its savepoint back, leaving it exactly as it was.
"""
from __future__ import annotations

import base64
import zlib
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import datetime
from types import SimpleNamespace
from typing import Any

from SpiffWorkflow.bpmn.specs.event_definitions.timer import TimerEventDefinition
from SpiffWorkflow.bpmn.util.diff import SpecDiff, migrate_workflow
from SpiffWorkflow.util.task import TaskState
from sqlalchemy import bindparam, insert, select, update
from sqlalchemy.orm import Session

from . import clock, xmlsafe
from .db import Database
from .errors import Conflict, EngineError, NotFound
from .models import Instance, InstanceEvent, ProcessVersion, WorkItem
from .runtime import Runtime, Step, next_timer_at, sla_times
from .serializer import SERIALIZER, dump_state, load_state
from .version_models import MigrationRecord, MigrationRun, VersionEvent

COSMETIC = {"bpmn_name", "documentation", "lane", "description"}
DATA_EFFECT = {"script", "prescript", "postscript"}
ROUTING = {"outputs", "cond_task_specs", "default_task_spec", "typename"}
ASSIGNMENT_KEYS = ("unit", "user", "role", "roleExpression")
RESET = TaskState.READY | TaskState.WAITING
OPEN_STATUSES = ("running", "failed")
BPMN_NS = "http://www.omg.org/spec/BPMN/20100524/MODEL"


class MigrationRefused(EngineError):
    """The instance cannot be moved (the reasons say why)."""

    def __init__(self, reasons: list[str]):
        self.reasons = reasons
        super().__init__("; ".join(reasons))


# ---- labels ---------------------------------------------------------------------------------
def _name(spec) -> str | None:
    """The element's label; a multi-instance task carries it on its inner task spec."""
    name = getattr(spec, "bpmn_name", None)
    child = getattr(spec, "task_spec", None)
    if not name and isinstance(child, str):
        inner = getattr(spec, "_wf_spec", None)
        inner = inner.task_specs.get(child) if inner is not None else None
        name = getattr(inner, "bpmn_name", None)
    return name


def _label(spec) -> str:
    name = _name(spec)
    bid = getattr(spec, "bpmn_id", None) or spec.name
    return f"{name} ({bid})" if name and name != bid else bid


def _state(task) -> str:
    return TaskState.get_name(task.state)


def _vlabel(v: ProcessVersion) -> str:
    return f"{v.process_id} v{v.number}"


# ---- spec diffs -----------------------------------------------------------------------------
class PairDiff:
    """SpecDiffs between two versions: the top process and every sub-process spec, computed once."""

    def __init__(self, spec1, deps1, spec2, deps2):
        self.registry = SERIALIZER.registry
        self.spec1, self.deps1, self.spec2, self.deps2 = spec1, deps1, spec2, deps2
        self.top = SpecDiff(self.registry, spec1, spec2)
        self.deps: dict[str, SpecDiff | None] = {
            name: (SpecDiff(self.registry, s, deps2[name]) if name in deps2 else None) for name, s in deps1.items()}
        self.new_deps = [n for n in deps2 if n not in deps1]
        self._conv: dict[int, dict] = {}

    def for_spec(self, name: str) -> SpecDiff | None:
        return self.top if name == self.spec1.name else self.deps.get(name)

    def new_spec(self, name: str):
        return self.spec2 if name == self.spec2.name else self.deps2.get(name)

    def conv(self, spec) -> dict:
        key = id(spec)
        if key not in self._conv:
            self._conv[key] = self.registry.convert(spec)
        return self._conv[key]

    def aligned(self, sd: SpecDiff, spec, new_process):
        if spec in sd.alignment:
            return sd.alignment[spec]
        return new_process.task_specs.get(spec.name) if new_process is not None else None

    def changes(self, sd: SpecDiff, spec) -> list[str]:
        return [a for a in sd.comparisons.get(spec) or [] if a not in COSMETIC]


def _decision_outputs(conv: dict) -> list[str]:
    return sorted(o.get("name") or o.get("id") for o in (conv.get("decision_table") or {}).get("outputs") or [])


def _is_timer(spec) -> bool:
    return isinstance(getattr(spec, "event_definition", None), TimerEventDefinition)


# ---- per-instance planning ------------------------------------------------------------------
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
    reasons: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
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


@dataclass
class Selection:
    """Which instances of a process to move.

    `from_versions` are version numbers (default: every version but the target); `instance_ids`
    and `where` (a SQLAlchemy condition on Instance, e.g. the domain's "instances of this unit") narrow
    it, as do `business_keys`; `at_tasks` keeps instances with an open work item on one of these task ids.
    """

    process_id: str
    from_versions: list[int] | None = None
    instance_ids: list[int] | None = None
    business_keys: list[str] | None = None
    at_tasks: list[str] | None = None
    where: Any = None
    label: str | None = None

    def describe(self) -> dict:
        def short(xs):
            return xs if xs is None or len(xs) <= 1000 else f"{len(xs)} given"
        return {"process_id": self.process_id, "from_versions": self.from_versions,
                "instance_ids": short(self.instance_ids), "business_keys": short(self.business_keys),
                "at_tasks": self.at_tasks, "scope": self.label}


_I, _E, _R = Instance.__table__, InstanceEvent.__table__, MigrationRecord.__table__
# prebuilt Core statements for the hot path of a large migration (one per moved instance)
_UPD_INSTANCE = _I.update().where(
    _I.c.id == bindparam("p_id"), _I.c.lock_version == bindparam("p_lock"), _I.c.status == "running",
    _I.c.version_id == bindparam("p_from")).values(
    state_json=bindparam("p_state"), version_id=bindparam("p_to"), next_timer_at=bindparam("p_next"),
    lock_version=bindparam("p_new_lock"), event_seq=bindparam("p_seq"), updated_at=bindparam("p_now"))
_INS_EVENT = _E.insert()
_SETTLE_RECORD = _R.update().where(_R.c.id == bindparam("p_id"), _R.c.outcome == "pending").values(
    outcome=bindparam("p_outcome"), reasons=bindparam("p_reasons"), notes=bindparam("p_notes"),
    from_version_id=bindparam("p_from"), at=bindparam("p_now"))
_MIGRATED_RECORD = _R.update().where(_R.c.id == bindparam("p_id"), _R.c.outcome == "pending").values(
    outcome="migrated", reasons=[], notes=bindparam("p_notes"), from_version_id=bindparam("p_from"),
    to_version_id=bindparam("p_to"), lock_before=bindparam("p_lock"), lock_after=bindparam("p_new_lock"),
    state_before=bindparam("p_state"), next_timer_before=bindparam("p_next"),
    work_items_before=bindparam("p_items"), at=bindparam("p_now"))

_WI_FIELDS = ("id", "task_guid", "task_spec", "process_id", "name", "form", "unit_id", "role", "user_id", "state",
              "created_at", "warn_at", "due_at", "closed_at", "closed_by", "props")


def _row_dict(w: WorkItem) -> dict:
    d = {k: getattr(w, k) for k in _WI_FIELDS}
    for k in ("created_at", "warn_at", "due_at", "closed_at"):
        d[k] = d[k].isoformat() if d[k] else None
    return d


def _pack(state: str) -> str:
    """The pre-migration state, compressed (a record keeps it only to revert)."""
    return "zlib:" + base64.b64encode(zlib.compress(state.encode("utf-8"), 6)).decode("ascii")


def _unpack(text: str) -> str:
    return zlib.decompress(base64.b64decode(text[5:])).decode("utf-8") if text.startswith("zlib:") else text


def _row_values(d: dict) -> dict:
    out = {k: d[k] for k in _WI_FIELDS if k != "id"}
    for k in ("created_at", "warn_at", "due_at", "closed_at"):
        out[k] = datetime.fromisoformat(out[k]) if out[k] else None
    return out


class Migrator:
    """Dry runs, executions and reverts of instance migrations, over one Runtime."""

    def __init__(self, runtime: Runtime, verify_roundtrip: bool = False):
        self.rt = runtime
        self.db: Database = runtime.db
        # The dry run always loads each migrated state back. Executions do it too with
        # verify_roundtrip=True; by default they rely on the structural checks of `apply` (every task
        # and sub-process resolves in the new version; the data is the data that loaded before).
        self.verify_roundtrip = verify_roundtrip
        self._pairs: dict[tuple[int, int], PairDiff] = {}
        self.before_save: Callable[[list[Plan]], None] | None = None  # test seam: runs between plan and save

    # -- helpers ---------------------------------------------------------------------------
    def pair(self, s: Session, from_vid: int, to_vid: int) -> PairDiff:
        key = (from_vid, to_vid)
        p = self._pairs.get(key)
        if p is None:
            spec1, deps1, _f1, _p1 = self.rt.specs(s, from_vid)
            spec2, deps2, _f2, _p2 = self.rt.specs(s, to_vid)
            p = PairDiff(spec1, deps1, spec2, deps2)
            self._pairs[key] = p
        return p

    def version(self, s: Session, process_id: str, number: int) -> ProcessVersion:
        v = s.scalar(select(ProcessVersion).where(ProcessVersion.process_id == process_id,
                                                  ProcessVersion.number == number))
        if v is None:
            raise NotFound(f"{process_id} has no version {number}")
        return v

    # -- the rule ----------------------------------------------------------------------------
    def check(self, wf, pair: PairDiff, to_label: str) -> tuple[list[str], list[str]]:
        """Reasons the instance cannot move (empty: it can) and notes on what moving means."""
        reasons: list[str] = []
        notes: list[str] = []
        parts = [(wf, False)]
        for sp_id, sp in wf.subprocesses.items():
            owner = wf.get_task_from_id(sp_id)
            finished = bool(getattr(sp, "completed", False)) or owner is None or \
                owner.has_state(TaskState.FINISHED_MASK)
            parts.append((sp, finished))
        for part, finished in parts:
            name = part.spec.name
            sd = pair.for_spec(name)
            new_process = pair.new_spec(name)
            if sd is None or new_process is None:
                what = "a finished" if finished else "the running"
                reasons.append(f"{to_label} no longer has sub-process {name}, and the instance has {what} one")
                continue
            for task in list(part.tasks.values()):
                if task.has_state(TaskState.PREDICTED_MASK):
                    continue
                spec = task.task_spec
                new = pair.aligned(sd, spec, new_process)
                if new is None:
                    if finished:
                        reasons.append(f"{_label(spec)} (done, in a finished part) no longer exists in {to_label}; "
                                       "its history could not be kept")
                    elif task.has_state(TaskState.COMPLETED | TaskState.CANCELLED):
                        reasons.append(f"{_label(spec)} was already {_state(task).lower()} and no longer exists in "
                                       f"{to_label}; its history could not be kept")
                    elif task.has_state(TaskState.FUTURE):
                        if not self._repredicted(task):
                            reasons.append(f"the instance is about to reach {_label(spec)}, which {to_label} removes")
                    else:
                        reasons.append(f"the instance is at {_label(spec)} ({_state(task)}), which {to_label} removes")
                    continue
                if finished:
                    continue
                attrs = pair.changes(sd, spec)
                if new.name != spec.name and not attrs:
                    notes.append(f"{_label(spec)} is {_label(new)} in {to_label}")
                if not attrs:
                    continue
                self._check_changed(task, spec, new, attrs, pair, sd, to_label, reasons, notes)
        return list(dict.fromkeys(reasons)), list(dict.fromkeys(notes))

    def _check_changed(self, task, spec, new, attrs, pair, sd, to_label, reasons, notes) -> None:
        what = ", ".join(attrs)
        if task.has_state(TaskState.STARTED):
            extra = ""
            if "outputs" in attrs:
                added = self._new_successors(spec, new, sd)
                if added:
                    extra = f"; it would skip {', '.join(added)} when it finishes"
            reasons.append(f"{_label(spec)} is in progress and {to_label} changes it ({what}){extra}; "
                           "move the instance after it finishes")
        elif task.has_state(TaskState.COMPLETED):
            effect = [a for a in attrs if a in DATA_EFFECT]
            if "decision_table" in attrs:
                if _decision_outputs(pair.conv(spec)) != _decision_outputs(pair.conv(new)):
                    effect.append("decision outputs")
                else:
                    outs = ", ".join(_decision_outputs(pair.conv(spec)))
                    notes.append(f"{_label(spec)} already ran: the values it set ({outs}) stay for the current "
                                 f"step; {to_label}'s rules apply the next time it runs")
            if effect:
                reasons.append(f"{_label(spec)} already ran and {to_label} changes what it computes "
                               f"({', '.join(effect)}); later steps may rely on values it never set")
            routing = [a for a in attrs if a in ROUTING]
            if routing:
                # (a pending successor the new version removes is reported as such, not twice)
                pending = [c for c in task.children if c.has_state(TaskState.DEFINITE_MASK)
                           and pair.aligned(sd, c.task_spec, pair.new_spec(task.workflow.spec.name)) is not None]
                if pending:
                    added = self._new_successors(spec, new, sd)
                    reasons.append(f"the instance already left {_label(spec)} by a route {to_label} changes "
                                   f"({', '.join(routing)})" + (f"; it would skip {', '.join(added)}" if added else ""))
        elif task.has_state(RESET):
            if "typename" in attrs:
                reasons.append(f"the instance waits at {_label(spec)}, which {to_label} turns into another kind of element")
            elif task.has_state(TaskState.WAITING) and _is_timer(spec):
                notes.append(f"timer {_label(spec)} changes in {to_label} ({what}) but keeps its armed due time")
            elif task.has_state(TaskState.READY) and "extensions" in attrs:
                notes.append(f"the open task {_label(spec)} takes {to_label}'s form and assignment settings")
            else:
                notes.append(f"{_label(spec)} ({_state(task)}) follows {to_label} from here ({what})")
        elif task.has_state(TaskState.ERROR):
            reasons.append(f"{_label(spec)} has failed; retry or fix it before moving the instance")

    @staticmethod
    def _repredicted(task) -> bool:
        """Whether a FUTURE task hangs below a READY/WAITING one, which migration resets and re-predicts."""
        a = task.parent
        while a is not None and a.has_state(TaskState.FUTURE | TaskState.PREDICTED_MASK):
            a = a.parent
        return a is not None and a.has_state(RESET)

    @staticmethod
    def _new_successors(spec, new, sd) -> list[str]:
        """Steps the new version adds right after `spec` (through added gateways), user tasks first."""
        old = {sd.alignment.get(o).name if sd.alignment.get(o) is not None else None for o in spec.outputs}
        added = {a.name for a in sd.added}
        found, seen = [], set()
        todo = [o for o in new.outputs if o.name not in old]
        while todo:
            ts = todo.pop(0)
            if ts.name in seen:
                continue
            seen.add(ts.name)
            found.append(ts)
            todo += [o for o in ts.outputs if o.name in added]
        manual = [ts for ts in found if ts.manual]
        return [_label(ts) for ts in (manual or found)]

    # -- in-memory migration -----------------------------------------------------------------
    def apply(self, wf, pair: PairDiff, to_label: str) -> list:
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
                raise MigrationRefused([f"moving would discard {_label(t.task_spec)} ({_state(t)})"])
        for tid, (state, data, idata, changed_at) in snap.items():
            t = wf.get_task_from_id(tid)
            if t is None:
                raise MigrationRefused([f"moving would drop a {TaskState.get_name(state)} task"])
            t.data, t.internal_data = data, idata
            if t.state != state:
                if state == TaskState.WAITING and t.state == TaskState.READY and _is_timer(t.task_spec):
                    # re-armed, a timer that is due but not fired yet turns READY: keep it waiting, with
                    # its original due time, so the next sweep fires it exactly as it would have
                    t._set_state(TaskState.WAITING)
                    wf.event_manager.add_task(t)
                else:
                    raise MigrationRefused([f"{_label(t.task_spec)} would turn {_state(t)} instead of staying "
                                            f"{TaskState.get_name(state)}"])
            t.last_state_change = changed_at
        ready = []
        for part, _sd, _ns in parts:
            specs = part.spec.task_specs
            for t in part.tasks.values():
                if specs.get(t.task_spec.name) is not t.task_spec:
                    raise MigrationRefused([f"{_label(t.task_spec)} has no counterpart in {to_label}"])
                if t.state == TaskState.READY:
                    if not t.task_spec.manual:
                        raise MigrationRefused([f"{_label(t.task_spec)} would be left to run on its own"])
                    ready.append(t)
        return ready

    def plan(self, s: Session, inst: Instance, to: ProcessVersion, rows: list[WorkItem],
             roundtrip: bool | None = None) -> Plan:
        """Decide for one instance, and if it can move, migrate it in memory (nothing is saved)."""
        p = Plan(instance_id=inst.id, business_key=inst.business_key, from_version_id=inst.version_id,
                 to_version_id=to.id, lock_version=inst.lock_version, event_seq=inst.event_seq,
                 process_id=inst.process_id)
        p.at = sorted({w.task_spec for w in rows})
        p.work_items_before = [_row_dict(w) for w in rows]
        to_label = f"v{to.number}"
        if inst.process_id != to.process_id:
            p.reasons.append(f"the instance runs {inst.process_id}, not {to.process_id}")
            return p
        if inst.version_id == to.id:
            p.reasons.append(f"already on {to_label}")
            return p
        if inst.status != "running":
            p.reasons.append("the instance has a failed step; retry or fix it first" if inst.status == "failed"
                             else f"the instance is {inst.status}")
            return p
        try:
            pair = self.pair(s, inst.version_id, to.id)
            spec1, deps1, _f, _pid = self.rt.specs(s, inst.version_id)
            wf = load_state(inst.state_json, spec1, deps1, self.rt.script_engine)
            p.reasons, p.notes = self.check(wf, pair, to_label)
            if p.reasons:
                return p
            p.state_before = inst.state_json
            p.next_timer_before = inst.next_timer_at
            ready = self.apply(wf, pair, to_label)
            p.state_json = dump_state(wf)
            if self.verify_roundtrip if roundtrip is None else roundtrip:
                wf = load_state(p.state_json, pair.spec2, pair.deps2, self.rt.script_engine)
                ready = wf.get_tasks(state=TaskState.READY, manual=True)
            p.next_timer = next_timer_at(wf)
            p.ready = {str(t.id): t for t in ready}
            p.ok = True
        except MigrationRefused as e:
            p.reasons = list(e.reasons)
        except Exception as e:  # noqa: BLE001 - a verdict, not a crash
            p.reasons = [f"cannot be migrated: {type(e).__name__}: {e}"[:500]]
            p.error = p.reasons[0]
        return p

    # -- selection -----------------------------------------------------------------------------
    def select_ids(self, s: Session, sel: Selection, to: ProcessVersion) -> list[int]:
        q = select(Instance.id).where(Instance.process_id == sel.process_id, Instance.status.in_(OPEN_STATUSES),
                                      Instance.version_id != to.id)
        if sel.from_versions:
            vids = [self.version(s, sel.process_id, n).id for n in sel.from_versions]
            q = q.where(Instance.version_id.in_(vids))
        if sel.instance_ids is not None:
            q = q.where(Instance.id.in_(sel.instance_ids))
        if sel.business_keys is not None:
            q = q.where(Instance.business_key.in_(sel.business_keys))
        if sel.at_tasks:
            q = q.where(Instance.id.in_(select(WorkItem.instance_id).where(
                WorkItem.state == "open", WorkItem.task_spec.in_(sel.at_tasks))))
        if sel.where is not None:
            q = q.where(sel.where)
        return list(s.scalars(q.order_by(Instance.id)))

    def _load(self, s: Session, ids: list[int]) -> tuple[dict[int, Instance], dict[int, list[WorkItem]]]:
        insts = {i.id: i for i in s.scalars(select(Instance).where(Instance.id.in_(ids)))}
        rows: dict[int, list[WorkItem]] = {i: [] for i in ids}
        for w in s.scalars(select(WorkItem).where(WorkItem.instance_id.in_(ids), WorkItem.state == "open")
                           .order_by(WorkItem.id)):
            rows[w.instance_id].append(w)
        return insts, rows

    # -- dry run -------------------------------------------------------------------------------
    def dry_run(self, sel: Selection, to_number: int, actor: str | None = None, chunk: int = 200,
                progress: Callable[[int, int, str], None] | None = None) -> tuple[int, list[Plan]]:
        """Say for every selected instance whether it can move and why not; store the verdicts as a run."""
        with self.db.read() as s:
            to = self.version(s, sel.process_id, to_number)
            if to.state == "retired":
                raise Conflict(f"{_vlabel(to)} is retired")
            ids = self.select_ids(s, sel, to)
        plans: list[Plan] = []
        for i in range(0, len(ids), chunk):
            part = ids[i:i + chunk]
            with self.db.read() as s:
                insts, rows = self._load(s, part)
                for iid in part:
                    if iid in insts:
                        plans.append(self.plan(s, insts[iid], to, rows[iid], roundtrip=True))
            if progress:
                progress(min(i + chunk, len(ids)), len(ids), "dry run")
        now = clock.now()
        with self.db.write() as s:
            run = MigrationRun(process_id=sel.process_id, to_version_id=to.id, dry_run=True, selection=sel.describe(),
                               status="done", actor=actor, created_at=now, finished_at=now, total=len(plans),
                               done=len(plans), migrated=0, blocked=sum(not p.ok for p in plans), skipped=0, failed=0)
            s.add(run)
            s.flush()
            if plans:
                s.execute(insert(MigrationRecord), [
                    {"run_id": run.id, "instance_id": p.instance_id, "outcome": "can_move" if p.ok else "blocked",
                     "reasons": p.reasons, "notes": p.notes, "from_version_id": p.from_version_id,
                     "to_version_id": p.to_version_id, "at": now} for p in plans])
            run_id = run.id
        return run_id, plans

    # -- execute -------------------------------------------------------------------------------
    def start(self, sel: Selection, to_number: int, actor: str | None = None) -> int:
        """Create an execution run with one pending record per selected instance; `step` works it off."""
        now = clock.now()
        with self.db.write() as s:
            to = self.version(s, sel.process_id, to_number)
            if to.state == "retired":
                raise Conflict(f"{_vlabel(to)} is retired and cannot take instances")
            ids = self.select_ids(s, sel, to)
            run = MigrationRun(process_id=sel.process_id, to_version_id=to.id, dry_run=False, selection=sel.describe(),
                               status="running", actor=actor, created_at=now, total=len(ids), done=0, migrated=0,
                               blocked=0, skipped=0, failed=0)
            s.add(run)
            s.flush()
            for i in range(0, len(ids), 1000):
                s.execute(insert(MigrationRecord), [
                    {"run_id": run.id, "instance_id": iid, "outcome": "pending", "reasons": [], "notes": [],
                     "to_version_id": to.id} for iid in ids[i:i + 1000]])
            if not ids:
                run.status, run.finished_at = "done", now
            return run.id

    def step(self, run_id: int, limit: int = 50) -> MigrationRun:
        """Migrate the next `limit` pending instances of a run; returns the run with its counters."""
        with self.db.read() as s:
            run = s.get(MigrationRun, run_id)
            if run is None:
                raise NotFound(f"migration run {run_id} does not exist")
            if run.dry_run:
                raise Conflict("a dry run cannot be executed; start an execution")
            to = s.get(ProcessVersion, run.to_version_id)
            recs = list(s.scalars(select(MigrationRecord).where(MigrationRecord.run_id == run_id,
                                                                MigrationRecord.outcome == "pending")
                                  .order_by(MigrationRecord.id).limit(limit)))
            ids = [r.instance_id for r in recs]
            insts, rows = self._load(s, ids)
            plans = [(r, self.plan(s, insts[r.instance_id], to, rows[r.instance_id])) for r in recs]
            actor = run.actor
        if self.before_save:
            self.before_save([p for _r, p in plans])
        now = clock.now()
        counts = {"migrated": 0, "blocked": 0, "skipped": 0, "failed": 0}
        rt_ = MigrationRun.__table__
        with self.db.write() as s:
            for rec, p in plans:
                outcome, reasons = "blocked", p.reasons
                if p.ok:
                    try:
                        with s.begin_nested():
                            self._save(s, p, to, run_id, rec.id, actor, now)
                        counts["migrated"] += 1
                        continue
                    except Conflict as e:
                        outcome, reasons = "skipped", [str(e)]
                    except Exception as e:  # noqa: BLE001 - the savepoint rolled back: the instance is untouched
                        outcome, reasons = "failed", [f"{type(e).__name__}: {e}"[:500]]
                elif p.error:
                    outcome = "failed"
                res = s.connection().execute(_SETTLE_RECORD, {
                    "p_id": rec.id, "p_outcome": outcome, "p_reasons": reasons, "p_notes": p.notes,
                    "p_from": p.from_version_id, "p_now": now})
                counts[outcome] += res.rowcount  # 0: another worker already settled this record
            done = sum(counts.values())
            s.execute(rt_.update().where(rt_.c.id == run_id).values(
                done=rt_.c.done + done, **{k: getattr(rt_.c, k) + n for k, n in counts.items()}))
            left = s.scalar(select(MigrationRecord.id).where(MigrationRecord.run_id == run_id,
                                                             MigrationRecord.outcome == "pending").limit(1))
            if left is None:
                res = s.execute(rt_.update().where(rt_.c.id == run_id, rt_.c.status != "done").values(
                    status="done", finished_at=now))
                if res.rowcount == 1:
                    run = s.get(MigrationRun, run_id, populate_existing=True)
                    s.add(VersionEvent(at=now, actor=actor, action="migrate", process_id=run.process_id,
                                       version_id=run.to_version_id,
                                       data={"run_id": run_id, "total": run.total, "migrated": run.migrated,
                                             "blocked": run.blocked, "skipped": run.skipped, "failed": run.failed,
                                             "selection": run.selection}))
            s.flush()
            run = s.get(MigrationRun, run_id, populate_existing=True)
            s.expunge(run)
        return run

    def execute(self, sel: Selection, to_number: int, actor: str | None = None, batch: int = 50,
                progress: Callable[[int, int, str], None] | None = None) -> MigrationRun:
        """Start a run and work it off in batches (the CLI; the web page calls `step` per request)."""
        run_id = self.start(sel, to_number, actor)
        run = self.get_run(run_id)
        if progress:
            progress(0, run.total, "")
        while run.status != "done":
            run = self.step(run_id, batch)
            if progress:
                progress(run.done, run.total, f"moved {run.migrated}, blocked {run.blocked}, skipped {run.skipped}")
        return run

    def _save(self, s: Session, p: Plan, to: ProcessVersion, run_id: int, rec_id: int, actor: str | None,
              now: datetime) -> None:
        new_lock = p.lock_version + 1
        conn = s.connection()
        res = conn.execute(_UPD_INSTANCE, {
            "p_id": p.instance_id, "p_lock": p.lock_version, "p_from": p.from_version_id, "p_state": p.state_json,
            "p_to": to.id, "p_next": p.next_timer, "p_new_lock": new_lock, "p_seq": p.event_seq + 1, "p_now": now})
        if res.rowcount != 1:
            raise Conflict("someone worked on the instance while it was being migrated; it was left as it was "
                           "(run the migration again to move it)")
        frm = s.get(ProcessVersion, p.from_version_id)
        step = Step(actor=actor, instance_id=p.instance_id, process_id=p.process_id, version_id=to.id,
                    business_key=p.business_key, status="running", lock_version=new_lock)
        step.record("version_changed", data={"from_version_id": frm.id, "to_version_id": to.id,
                                             "from": frm.number, "to": to.number, "run_id": run_id,
                                             "notes": p.notes})
        self._sync_work_items(s, p, step, now)
        ev = step.events[0]
        conn.execute(_INS_EVENT, {"instance_id": p.instance_id, "seq": p.event_seq + 1, "at": now,
                                  "actor": ev["actor"], "kind": ev["kind"], "task": None, "data": ev["data"]})
        res = conn.execute(_MIGRATED_RECORD, {
            "p_id": rec_id, "p_notes": p.notes, "p_from": p.from_version_id, "p_to": to.id, "p_lock": p.lock_version,
            "p_new_lock": new_lock, "p_state": _pack(p.state_before), "p_next": p.next_timer_before,
            "p_items": p.work_items_before, "p_now": now})
        if res.rowcount != 1:
            raise Conflict("another migration worker settled this instance first")
        for fn in self.rt.listeners:
            fn(s, step)

    def _sync_work_items(self, s: Session, p: Plan, step: Step, now: datetime) -> None:
        """Open items whose task survived keep their row (id, guid, assignment); changed forms or
        assignment settings are applied in place; new READY tasks get rows; gone ones are cancelled."""
        before = {d["task_guid"]: d for d in p.work_items_before}
        for guid, d in before.items():
            task = p.ready.get(guid)
            if task is None:
                s.execute(update(WorkItem).where(WorkItem.id == d["id"]).values(state="cancelled", closed_at=now)
                          .execution_options(synchronize_session=False))
                step.closed.append(guid)
                continue
            ts = task.task_spec
            props = (ts.extensions or {}).get("properties", {}) or {}
            warn, due = sla_times(task)
            values = {"task_spec": ts.bpmn_id, "name": ts.bpmn_name or ts.bpmn_id, "form": props.get("form"),
                      "props": {k: v for k, v in props.items() if k != "form"}, "warn_at": warn, "due_at": due}
            old_props = dict(d["props"] or {})
            if any(old_props.get(k) != props.get(k) for k in ASSIGNMENT_KEYS):
                row = self.rt.work_item_row(s, step, task, now)
                values.update(unit_id=row["unit_id"], role=row["role"], user_id=row["user_id"])
            cur = _row_values(d)
            changed = {k: v for k, v in values.items() if cur.get(k) != v}
            if changed:
                s.execute(update(WorkItem).where(WorkItem.id == d["id"]).values(**changed)
                          .execution_options(synchronize_session=False))
        rows = [self.rt.work_item_row(s, step, t, now) for g, t in p.ready.items() if g not in before]
        if rows:
            s.execute(insert(WorkItem), rows)
        step.opened = rows

    # -- runs and records ----------------------------------------------------------------------
    def get_run(self, run_id: int) -> MigrationRun:
        with self.db.read() as s:
            run = s.get(MigrationRun, run_id)
            if run is None:
                raise NotFound(f"migration run {run_id} does not exist")
            return run

    def records(self, run_id: int, outcome: str | None = None, limit: int | None = None,
                offset: int = 0) -> list[MigrationRecord]:
        with self.db.read() as s:
            q = select(MigrationRecord).where(MigrationRecord.run_id == run_id)
            if outcome:
                q = q.where(MigrationRecord.outcome == outcome)
            q = q.order_by(MigrationRecord.id).offset(offset)
            if limit:
                q = q.limit(limit)
            return list(s.scalars(q))

    def record_rows(self, run_id: int, outcome: str | None = None, limit: int | None = None,
                    offset: int = 0) -> list[dict]:
        """Records of a run with the instance's business key and version numbers, for pages."""
        recs = self.records(run_id, outcome, limit, offset)
        with self.db.read() as s:
            nums = dict(s.execute(select(ProcessVersion.id, ProcessVersion.number)).all())
            ids = [r.instance_id for r in recs]
            keys = dict(s.execute(select(Instance.id, Instance.business_key).where(Instance.id.in_(ids))).all()) \
                if ids else {}
        return [{"id": r.id, "instance_id": r.instance_id, "business_key": keys.get(r.instance_id),
                 "outcome": r.outcome, "reasons": r.reasons or [], "notes": r.notes or [],
                 "from": nums.get(r.from_version_id), "to": nums.get(r.to_version_id), "at": r.at,
                 "reverted_at": r.reverted_at, "reverted_by": r.reverted_by} for r in recs]

    def start_from_dry_run(self, dry_run_id: int, actor: str | None = None) -> int:
        """Execute what a dry run found movable (each instance is checked again when it is moved)."""
        dry = self.get_run(dry_run_id)
        if not dry.dry_run:
            raise Conflict(f"run {dry_run_id} is not a dry run")
        ids = [r.instance_id for r in self.records(dry_run_id, "can_move")]
        with self.db.read() as s:
            to = s.get(ProcessVersion, dry.to_version_id)
        sel = Selection(dry.process_id, instance_ids=ids, label=(dry.selection or {}).get("scope"))
        return self.start(sel, to.number, actor)

    def version_label(self, version_id: int) -> str:
        with self.db.read() as s:
            v = s.get(ProcessVersion, version_id)
            return _vlabel(v) if v else str(version_id)

    def runs(self, process_id: str | None = None, limit: int = 50) -> list[MigrationRun]:
        with self.db.read() as s:
            q = select(MigrationRun).order_by(MigrationRun.id.desc()).limit(limit)
            if process_id:
                q = q.where(MigrationRun.process_id == process_id)
            return list(s.scalars(q))

    # -- revert --------------------------------------------------------------------------------
    def revert(self, instance_id: int, actor: str | None = None) -> MigrationRecord:
        """Put a migrated instance back exactly as it was before its last migration.

        Refused once the instance has moved on (any step since the migration), because reverting
        would throw that work away."""
        now = clock.now()
        with self.db.write() as s:
            rec = s.scalar(select(MigrationRecord).where(MigrationRecord.instance_id == instance_id,
                                                         MigrationRecord.outcome == "migrated")
                           .order_by(MigrationRecord.id.desc()).limit(1))
            if rec is None:
                raise NotFound("this instance has no migration to revert")
            inst = s.get(Instance, instance_id, populate_existing=True)
            if inst.version_id != rec.to_version_id or inst.lock_version != rec.lock_after:
                raise Conflict("the instance has moved on since it was migrated; reverting would lose that work")
            frm = s.get(ProcessVersion, rec.from_version_id)
            to = s.get(ProcessVersion, rec.to_version_id)
            res = s.execute(update(Instance).where(Instance.id == instance_id,
                                                   Instance.lock_version == rec.lock_after).values(
                state_json=_unpack(rec.state_before), version_id=rec.from_version_id, next_timer_at=rec.next_timer_before,
                lock_version=rec.lock_after + 1, event_seq=inst.event_seq + 1, updated_at=now)
                .execution_options(synchronize_session=False))
            if res.rowcount != 1:
                raise Conflict("someone changed the instance at the same time; try again")
            before = {d["id"]: d for d in rec.work_items_before or []}
            current = list(s.scalars(select(WorkItem).where(WorkItem.instance_id == instance_id,
                                                            WorkItem.state == "open")))
            step = Step(actor=actor, instance_id=instance_id, process_id=inst.process_id, version_id=frm.id,
                        business_key=inst.business_key, status="running", lock_version=rec.lock_after + 1)
            for w in current:
                if w.id not in before:
                    s.execute(update(WorkItem).where(WorkItem.id == w.id).values(state="cancelled", closed_at=now)
                              .execution_options(synchronize_session=False))
                    step.closed.append(w.task_guid)
            for wid, d in before.items():
                s.execute(update(WorkItem).where(WorkItem.id == wid).values(**_row_values(d))
                          .execution_options(synchronize_session=False))
            data = {"from_version_id": to.id, "to_version_id": frm.id, "from": to.number, "to": frm.number,
                    "run_id": rec.run_id}
            step.record("version_reverted", data=data)
            s.execute(insert(InstanceEvent), [{"instance_id": instance_id, "seq": inst.event_seq + 1, "at": now,
                                               "actor": actor, "kind": "version_reverted", "task": None,
                                               "data": data}])
            rec.outcome, rec.reverted_at, rec.reverted_by = "reverted", now, actor
            s.add(VersionEvent(at=now, actor=actor, action="revert", process_id=inst.process_id,
                               version_id=frm.id, data={"instance_id": instance_id, **data}))
            for fn in self.rt.listeners:
                fn(s, step)
            s.flush()
            s.expunge(rec)
            return rec


# ---- comparing versions -------------------------------------------------------------------------
def _task_kind(conv: dict) -> str:
    return conv.get("typename", "")


def _visible(spec) -> bool:
    bid = getattr(spec, "bpmn_id", None)
    return bool(bid) and spec.name == bid


def _props(conv: dict) -> dict:
    return ((conv.get("extensions") or {}).get("properties") or {})


def _describe_change(attr: str, c1: dict, c2: dict) -> str:
    if attr == "outputs":
        return f"next: {', '.join(c1.get('outputs') or []) or '-'} → {', '.join(c2.get('outputs') or []) or '-'}"
    if attr == "inputs":
        return f"comes from: {', '.join(c1.get('inputs') or []) or '-'} → {', '.join(c2.get('inputs') or []) or '-'}"
    if attr == "extensions":
        p1, p2 = _props(c1), _props(c2)
        bits = [f"{k}: {p1.get(k, '-')} → {p2.get(k, '-')}" for k in sorted(set(p1) | set(p2)) if p1.get(k) != p2.get(k)]
        return "properties " + ("; ".join(bits) if bits else "changed")
    if attr == "event_definition":
        e1, e2 = c1.get("event_definition") or {}, c2.get("event_definition") or {}
        if e1.get("expression") != e2.get("expression"):
            return f"timer: {e1.get('expression')} → {e2.get('expression')}"
        return "event definition changed"
    if attr == "decision_table":
        return "decision table rules changed (see time limits)"
    if attr == "bpmn_name":
        return f"name: {c1.get('bpmn_name')} → {c2.get('bpmn_name')}"
    if attr in ("script", "prescript", "postscript"):
        return f"{attr} changed"
    if attr == "cond_task_specs":
        return "conditions changed"
    return f"{attr} changed"


def _timer_expr(conv: dict) -> str | None:
    ed = conv.get("event_definition") or {}
    if "Timer" in (ed.get("typename") or "") or ed.get("typename") in ("TimeDateEventDefinition",
                                                                        "DurationTimerEventDefinition",
                                                                        "CycleTimerEventDefinition"):
        return ed.get("expression")
    return None


def _rule_rows(dt: dict) -> dict[str, dict]:
    outs = {o["id"]: o.get("name") or o.get("label") or o["id"] for o in dt.get("outputs") or []}
    ins = {i["id"]: i.get("expression") or i.get("label") or i["id"] for i in dt.get("inputs") or []}
    rows = {}
    for r in dt.get("rules") or []:
        rows[r["id"]] = {
            "description": r.get("description") or "",
            "inputs": {ins.get(e["input_id"], e["input_id"]): " ".join(e.get("lhs") or []) for e in r.get("input_entries") or []},
            "outputs": {outs.get(e["output_id"], e["output_id"]): e.get("text") for e in r.get("output_entries") or []},
        }
    return rows


def _diff_decisions(task_id: str, c1: dict, c2: dict) -> list[dict]:
    r1, r2 = _rule_rows(c1.get("decision_table") or {}), _rule_rows(c2.get("decision_table") or {})
    out = []
    for rid in list(r1) + [r for r in r2 if r not in r1]:
        a, b = r1.get(rid), r2.get(rid)
        if a is None or b is None:
            row = a or b
            out.append({"task": task_id, "rule": rid, "description": row["description"], "inputs": row["inputs"],
                        "output": None, "before": None if a is None else "rule", "after": None if b is None else "rule",
                        "change": "added" if a is None else "removed"})
            continue
        if a["inputs"] != b["inputs"]:
            out.append({"task": task_id, "rule": rid, "description": b["description"], "inputs": b["inputs"],
                        "output": "(inputs)", "before": a["inputs"], "after": b["inputs"], "change": "changed"})
        for name in list(a["outputs"]) + [n for n in b["outputs"] if n not in a["outputs"]]:
            if a["outputs"].get(name) != b["outputs"].get(name):
                out.append({"task": task_id, "rule": rid, "description": b["description"], "inputs": b["inputs"],
                            "output": name, "before": a["outputs"].get(name), "after": b["outputs"].get(name),
                            "change": "changed"})
    return out


def _diff_forms(f1: dict, f2: dict) -> dict:
    out = {"added": sorted(set(f2) - set(f1)), "removed": sorted(set(f1) - set(f2)), "changed": []}
    for name in sorted(set(f1) & set(f2)):
        a, b = f1[name], f2[name]
        if a == b:
            continue
        details = []
        pa, pb = a.get("properties") or {}, b.get("properties") or {}
        details += [f"field added: {k}" for k in pb if k not in pa]
        details += [f"field removed: {k}" for k in pa if k not in pb]
        details += [f"field changed: {k}" for k in pa if k in pb and pa[k] != pb[k]]
        ra, rb = set(a.get("required") or []), set(b.get("required") or [])
        details += [f"now required: {k}" for k in sorted(rb - ra)]
        details += [f"no longer required: {k}" for k in sorted(ra - rb)]
        if a.get("title") != b.get("title"):
            details.append(f"title: {a.get('title')} → {b.get('title')}")
        rest = {k for k in set(a) | set(b) if k not in ("properties", "required", "title") and a.get(k) != b.get(k)}
        details += [f"{k} changed" for k in sorted(rest)]
        out["changed"].append({"name": name, "details": details or ["changed"]})
    return out


def _bpmn_files(v: ProcessVersion, names: set[str]) -> dict[str, tuple[str, set[str], dict]]:
    """BPMN files of a version that define one of `names`: file -> (xml, process ids, flows)."""
    out = {}
    for fname, text in (v.files or {}).items():
        if not fname.endswith(".bpmn"):
            continue
        try:
            root = xmlsafe.parse(text.encode("utf-8"), fname)
        except Exception:  # noqa: BLE001
            continue
        pids = {el.get("id") for el in root.iter(f"{{{BPMN_NS}}}process")}
        if not pids & names:
            continue
        flows = {}
        for el in root.iter(f"{{{BPMN_NS}}}sequenceFlow"):
            cond = el.find(f"{{{BPMN_NS}}}conditionExpression")
            flows[el.get("id")] = (el.get("sourceRef"), el.get("targetRef"),
                                   (cond.text or "").strip() if cond is not None else None)
        out[fname] = (text, pids, flows)
    return out


def compare(rt: Runtime, process_id: str, a_number: int, b_number: int) -> dict:
    """What changed from version a to version b: tasks, timers, time limits, forms and diagrams."""
    with rt.db.read() as s:
        va = s.scalar(select(ProcessVersion).where(ProcessVersion.process_id == process_id,
                                                   ProcessVersion.number == a_number))
        vb = s.scalar(select(ProcessVersion).where(ProcessVersion.process_id == process_id,
                                                   ProcessVersion.number == b_number))
        if va is None or vb is None:
            raise NotFound(f"{process_id} has no version {a_number if va is None else b_number}")
        spec1, deps1, forms1, _p = rt.specs(s, va.id)
        spec2, deps2, forms2, _p = rt.specs(s, vb.id)
    reg = SERIALIZER.registry
    processes, timers, limits = [], [], []
    markers_a: dict[str, str] = {}
    markers_b: dict[str, str] = {}
    names1 = {spec1.name: spec1, **deps1}
    names2 = {spec2.name: spec2, **deps2}
    for name in list(names1) + [n for n in names2 if n not in names1]:
        p1, p2 = names1.get(name), names2.get(name)
        entry = {"name": name, "status": "same", "added": [], "removed": [], "changed": []}
        if p1 is None or p2 is None:
            entry["status"] = "added" if p1 is None else "removed"
            for ts in (p2 or p1).task_specs.values():
                if _visible(ts):
                    item = {"id": ts.bpmn_id, "name": _name(ts), "type": _task_kind(reg.convert(ts))}
                    entry["added" if p1 is None else "removed"].append(item)
                    (markers_b if p1 is None else markers_a)[ts.bpmn_id] = entry["status"]
            processes.append(entry)
            continue
        sd = SpecDiff(reg, p1, p2)
        for ts in sd.added:
            if _visible(ts):
                c2 = reg.convert(ts)
                entry["added"].append({"id": ts.bpmn_id, "name": _name(ts), "type": _task_kind(c2)})
                markers_b[ts.bpmn_id] = "added"
                if _timer_expr(c2) is not None:
                    timers.append({"process": name, "id": ts.bpmn_id, "name": ts.bpmn_name, "before": None,
                                   "after": _timer_expr(c2), "change": "added"})
        for ts in sd.removed:
            if _visible(ts):
                c1 = reg.convert(ts)
                entry["removed"].append({"id": ts.bpmn_id, "name": _name(ts), "type": _task_kind(c1)})
                markers_a[ts.bpmn_id] = "removed"
                if _timer_expr(c1) is not None:
                    timers.append({"process": name, "id": ts.bpmn_id, "name": ts.bpmn_name, "before": _timer_expr(c1),
                                   "after": None, "change": "removed"})
        for ts, attrs in sd.changed.items():
            new = sd.alignment.get(ts)
            if not _visible(ts) or new is None:
                continue
            c1, c2 = reg.convert(ts), reg.convert(new)
            entry["changed"].append({"id": ts.bpmn_id, "name": _name(new) or _name(ts), "type": _task_kind(c2),
                                     "attrs": attrs, "details": [_describe_change(a, c1, c2) for a in attrs]})
            markers_a[ts.bpmn_id] = markers_a.get(ts.bpmn_id, "changed")
            markers_b[new.bpmn_id] = markers_b.get(new.bpmn_id, "changed")
            if "event_definition" in attrs and (_timer_expr(c1) is not None or _timer_expr(c2) is not None):
                timers.append({"process": name, "id": ts.bpmn_id, "name": new.bpmn_name, "before": _timer_expr(c1),
                               "after": _timer_expr(c2), "change": "changed"})
            if "decision_table" in attrs:
                for row in _diff_decisions(ts.bpmn_id, c1, c2):
                    row["process"] = name
                    limits.append(row)
        if entry["added"] or entry["removed"] or entry["changed"]:
            entry["status"] = "changed"
        processes.append(entry)
    # sub-process specs appear under every process that calls them: report each once
    seen: set[tuple] = set()
    uniq = []
    for row in limits:
        key = (row["task"], row["rule"], row["output"])
        if key not in seen:
            seen.add(key)
            uniq.append(row)
    files_a = _bpmn_files(va, set(names1) | set(names2))
    files_b = _bpmn_files(vb, set(names1) | set(names2))
    diagrams = []
    for fname in list(files_a) + [f for f in files_b if f not in files_a]:
        fa, fb = files_a.get(fname), files_b.get(fname)
        ma = dict(markers_a)
        mb = dict(markers_b)
        flows_a = fa[2] if fa else {}
        flows_b = fb[2] if fb else {}
        for fid in flows_a:
            if fid not in flows_b:
                ma[fid] = "removed"
            elif flows_a[fid] != flows_b[fid]:
                ma[fid] = mb[fid] = "changed"
        for fid in flows_b:
            if fid not in flows_a:
                mb[fid] = "added"
        diagrams.append({"file": fname, "a": fa[0] if fa else None, "b": fb[0] if fb else None,
                         "markers_a": ma, "markers_b": mb,
                         "same": bool(fa and fb and fa[0] == fb[0])})
    return {
        "process_id": process_id,
        "a": {"id": va.id, "number": va.number, "tag": va.tag, "sha256": va.sha256},
        "b": {"id": vb.id, "number": vb.number, "tag": vb.tag, "sha256": vb.sha256},
        "processes": processes,
        "timers": timers,
        "time_limits": uniq,
        "forms": _diff_forms(forms1 or {}, forms2 or {}),
        "diagrams": diagrams,
        "identical": va.sha256 == vb.sha256,
    }


def compare_lines(c: dict) -> list[str]:
    """A plain-text rendering of `compare` for the CLI."""
    out = [f"{c['process_id']}: v{c['a']['number']} → v{c['b']['number']}"]
    for p in c["processes"]:
        if p["status"] == "same":
            continue
        out.append(f"  process {p['name']}: {p['status']}")
        out += [f"    + {t['id']} {t['name'] or ''} ({t['type']})" for t in p["added"]]
        out += [f"    - {t['id']} {t['name'] or ''} ({t['type']})" for t in p["removed"]]
        for t in p["changed"]:
            out.append(f"    ~ {t['id']} {t['name'] or ''}: " + "; ".join(t["details"]))
    if c["timers"]:
        out.append("  timers:")
        out += [f"    {t['change']:<8} {t['id']} {t['name'] or ''}: {t['before']} → {t['after']}" for t in c["timers"]]
    if c["time_limits"]:
        out.append("  time limits:")
        for r in c["time_limits"]:
            out.append(f"    {r['task']} {r['rule']} {r['description']}: {r['output'] or ''} {r['before']} → {r['after']}")
    f = c["forms"]
    if f["added"] or f["removed"] or f["changed"]:
        out.append("  forms:")
        out += [f"    + {n}" for n in f["added"]] + [f"    - {n}" for n in f["removed"]]
        out += [f"    ~ {x['name']}: " + "; ".join(x["details"]) for x in f["changed"]]
    if len(out) == 1:
        out.append("  no differences" if c["identical"] else "  only labels or layout differ")
    return out


def verdict_lines(plans: Iterable[Plan]) -> list[str]:
    out = []
    for p in plans:
        head = f"{p.business_key or p.instance_id}: {'can move' if p.ok else 'cannot move'}"
        if p.at:
            head += f" (at {', '.join(p.at)})"
        out.append(head)
        out += [f"    why not: {r}" for r in p.reasons]
        out += [f"    note: {n}" for n in p.notes]
    return out

