"""The step: every change to an instance is one transaction.

load the instance -> act (start, complete, message, signal, cancel, fire timers, retry)
-> refresh_timers + do_engine_steps -> drain thrown events -> save the state (without the
spec), next_timer_at, status and lock_version + 1 (conditional on the old lock_version),
the work items and the audit events, all in the same transaction.

This module is the facade and the step itself; its parts live beside it: `step` (what a step
did), `assignment` (who a task goes to, the work-item row), `timers` (next timer, SLA times),
`specs` (spec cache, version choice, form checks), `reads` (history, task data and states)
and `store` (the SQL a step writes with).
"""
from __future__ import annotations

import threading
from datetime import datetime
from typing import Any
from uuid import UUID

from jsonschema import Draft202012Validator
from SpiffWorkflow.bpmn import BpmnEvent
from SpiffWorkflow.bpmn.specs.event_definitions.item_aware_event import ErrorEventDefinition
from SpiffWorkflow.bpmn.specs.event_definitions.timer import TimerEventDefinition
from SpiffWorkflow.bpmn.specs.mixins.events.event_types import CatchingEvent
from SpiffWorkflow.bpmn.specs.mixins.multiinstance_task import MultiInstanceTask
from SpiffWorkflow.bpmn.workflow import BpmnWorkflow
from SpiffWorkflow.exceptions import WorkflowException
from SpiffWorkflow.spiff.specs.event_definitions import MessageEventDefinition, SignalEventDefinition
from SpiffWorkflow.util.task import TaskState
from sqlalchemy.orm import Session

from . import clock, limits, sandbox, store
from .assignment import Assigner, Assignment, TaskContext, default_assigner, reassign_act, work_item_row
from .calendar import VersionCalendars, WorkCalendar
from .db import Database
from .errors import Conflict, EngineError, InvalidData, NotFound
from .reads import InstanceReads
from .serializer import dump_state, load_state
from .specs import SpecCache
from .step import Listener, Step
from .step import jsonable as _jsonable
from .store import INS_INSTANCE, SEL_DUE, SEL_INSTANCE, Write
from .timers import ACTIVE, TIMER_TYPES, next_timer_at, sla_times

# importable from here as before the split (callers and the benchmark's profiler use these names)
__all__ = ["ACTIVE", "TIMER_TYPES", "Assigner", "Assignment", "Listener", "Runtime", "Step", "TaskContext",
           "default_assigner", "next_timer_at", "sla_times"]


class LimitedScriptEngine(sandbox.SandboxedScriptEngine):
    """The sandboxed engine, refusing a multi-instance cardinality over `MAX_MI_CARDINALITY`
    when it is computed (before SpiffWorkflow creates the instances)."""

    def evaluate(self, task, expression, external_context=None):
        value = super().evaluate(task, expression, external_context)
        ts = task.task_spec
        if isinstance(ts, MultiInstanceTask) and expression == ts.cardinality and isinstance(value, int) \
                and value > limits.MAX_MI_CARDINALITY:
            raise limits.LimitExceeded(
                f"multi-instance {ts.bpmn_id}: cardinality {expression!r} is {value}, over the limit of "
                f"{limits.MAX_MI_CARDINALITY} (GRIDFLOW_MAX_MI_CARDINALITY)")
        return value


def _check_input(data: Any, what: str) -> None:
    """Refuse data nested deeper than `MAX_DATA_DEPTH` before anything walks it recursively."""
    if limits.data_depth(data) > limits.MAX_DATA_DEPTH:
        raise InvalidData(f"the {what} is nested more than {limits.MAX_DATA_DEPTH} levels deep")


def _deliver(definition: type, kind: str, name: str, payload: Any):
    """The step action delivering a message or signal event `name`; Conflict if nothing waits for it."""
    def act(wf: BpmnWorkflow, step: Step, s: Session) -> None:
        try:
            wf.send_event(BpmnEvent(definition(name), payload=payload))
        except WorkflowException as e:
            raise Conflict(f"the instance is not waiting for {kind} {name!r}") from e
        step.record(f"{kind}_received", data={"name": name, "payload": _jsonable(payload)})
    return act


class Runtime(SpecCache, InstanceReads):
    """The engine facade: the only place that touches SpiffWorkflow workflows."""

    def __init__(self, db: Database, assigner: Assigner | None = None, calendar: WorkCalendar | None = None,
                 validate_forms: bool = True):
        self.db = db
        self.assigner = assigner or default_assigner
        self.listeners: list[Listener] = []
        self.validate_forms = validate_forms
        self.calendar = calendar or WorkCalendar()  # for versions deployed without a calendar.yaml
        self.version_calendars = VersionCalendars()
        self.script_engine = LimitedScriptEngine()
        self._specs: dict[int, tuple] = {}
        self._validators: dict[tuple[int, str], Draft202012Validator] = {}
        self._lock = threading.Lock()
        self._sel_due = SEL_DUE.with_for_update(skip_locked=True) if db.dialect == "postgresql" else SEL_DUE

    # ---- operations --------------------------------------------------------------------------
    def start(self, process_id: str, data: dict | None = None, *, actor: str | None = None,
              version_id: int | None = None, business_key: str | None = None,
              scopes: list[str] | None = None, session: Session | None = None) -> Step:
        """Start an instance and run it to its first wait state, in one transaction."""
        if session is not None:
            return self._start(session, process_id, data, actor, version_id, business_key, scopes)
        with self.db.write() as s:
            return self._start(s, process_id, data, actor, version_id, business_key, scopes)

    def _start(self, s, process_id, data, actor, version_id, business_key, scopes) -> Step:
        vid = self.resolve_version(s, process_id, version_id, scopes)
        spec, subs, _forms, _pid = self._version(s, vid)
        _check_input(data or {}, "start data")
        wf = BpmnWorkflow(spec, subs, script_engine=self.script_engine)
        start = wf.get_tasks(state=TaskState.READY)[0]
        start.data.update(data or {})
        step = Step(actor=actor, process_id=process_id, version_id=vid, business_key=business_key,
                    calendar=self.calendar_of(s, vid))
        step.fallback_state = dump_state(wf)
        step.record("started", data={"version_id": vid, "process_id": process_id})
        self._advance(wf, step)
        self._save(s, None, wf, step, before=set())
        return step

    def complete(self, instance_id: int, task_guid: str, data: dict | None = None, *, actor: str | None = None,
                 expected_lock: int | None = None, session: Session | None = None) -> Step:
        """Complete a READY user task with form data. A second completion gets Conflict; invalid data
        gets InvalidData; either way nothing changes. With `session`, the step is part of the
        caller's write transaction (its checks and the step in one transaction)."""
        data = dict(data or {})
        _check_input(data, "form data")

        def act(wf: BpmnWorkflow, step: Step, s: Session) -> None:
            task = wf.get_task_from_id(UUID(task_guid))
            if task is None:
                raise NotFound("no such task")
            if task.state != TaskState.READY or not task.task_spec.manual:
                raise Conflict("this task has already been completed by someone else"
                               if task.state == TaskState.COMPLETED else "this task is no longer active")
            props = (task.task_spec.extensions or {}).get("properties", {}) or {}
            self.validate_task_data(step.version_id, props.get("form"), data, session=s)
            if props.get("result"):
                task.data[props["result"]] = data
            else:
                task.data.update(data)
            step.current_task = task.task_spec.bpmn_id
            task.run()
            step.completed_guids.add(task_guid)
            step.record("task_completed", task=task.task_spec.bpmn_id,
                        data={"name": task.task_spec.bpmn_name, "guid": task_guid, "data": _jsonable(data)})

        return self._step(instance_id, act, actor, expected_lock, session=session)

    def send_message(self, instance_id: int, name: str, payload: Any = None, *, actor: str | None = None,
                     session: Session | None = None) -> Step:
        _check_input(payload, "message payload")
        return self._step(instance_id, _deliver(MessageEventDefinition, "message", name, payload), actor,
                          session=session)

    def signal(self, instance_id: int, name: str, payload: Any = None, *, actor: str | None = None) -> Step:
        _check_input(payload, "signal payload")
        return self._step(instance_id, _deliver(SignalEventDefinition, "signal", name, payload), actor)

    def cancel(self, instance_id: int, *, actor: str | None = None, reason: str | None = None,
               session: Session | None = None) -> Step:
        def act(wf: BpmnWorkflow, step: Step, s: Session) -> None:
            wf.cancel()
            step.status = "cancelled"
            step.record("cancelled", data={"reason": reason})

        return self._step(instance_id, act, actor, run=False, allow={"running", "failed"}, session=session)

    def reassign(self, instance_id: int, task_guid: str, to: Assignment, *, reason: str, actor: str | None = None,
                 expect: dict | None = None) -> Step:
        """Hand a READY user task to someone else (engine.assignment.reassign_act): one step, audited."""
        return self._step(instance_id, reassign_act(task_guid, to, reason, expect), actor)

    def fire_timers(self, instance_id: int, *, session: Session | None = None) -> Step:
        """Fire whatever timers are due now (the sweep calls this per due instance)."""
        return self._step(instance_id, lambda wf, step, s: None, None, session=session)

    def retry(self, instance_id: int, data: dict | None = None, *, actor: str | None = None) -> Step:
        """Re-run the failed task(s) of a failed instance, after patching their data."""
        _check_input(data or {}, "data patch")

        def act(wf: BpmnWorkflow, step: Step, s: Session) -> None:
            failed = [t for t in wf.get_tasks(state=TaskState.ERROR)]
            if not failed:
                raise Conflict("the instance has no failed task to retry")
            for t in failed:
                t.data.update(data or {})
                t._set_state(TaskState.READY)
            step.record("retried", task=failed[0].task_spec.bpmn_id, data={"patch": _jsonable(data or {})})

        return self._step(instance_id, act, actor, allow={"failed"})

    def set_task_data(self, instance_id: int, task_guid: str, data: dict, *, actor: str | None = None) -> Step:
        """Patch a waiting task's data (an administrative fix); audited."""
        _check_input(data, "data patch")

        def act(wf: BpmnWorkflow, step: Step, s: Session) -> None:
            task = wf.get_task_from_id(UUID(task_guid))
            if task is None:
                raise NotFound("no such task")
            task.data.update(data)
            step.record("data_changed", task=task.task_spec.bpmn_id, data={"patch": _jsonable(data)})

        return self._step(instance_id, act, actor, allow={"running", "failed"})

    # ---- the step ----------------------------------------------------------------------------
    def _step(self, instance_id: int, act, actor, expected_lock: int | None = None, run: bool = True,
              allow: set[str] | None = None, session: Session | None = None) -> Step:
        if session is not None:
            return self._step_in(session, instance_id, act, actor, expected_lock, run, allow)
        with self.db.write() as s:
            return self._step_in(s, instance_id, act, actor, expected_lock, run, allow)

    def _step_in(self, s: Session, instance_id, act, actor, expected_lock, run, allow) -> Step:
        inst = s.connection().execute(SEL_INSTANCE, {"p_id": instance_id}).first()
        if inst is None:
            raise NotFound(f"instance {instance_id} does not exist")
        if inst.status not in (allow or {"running"}):
            raise Conflict(f"the instance is {inst.status}")
        spec, subs, _forms, _pid = self._version(s, inst.version_id)
        wf = load_state(inst.state_json, spec, subs, self.script_engine)
        before = {str(t.id) for t in wf.get_tasks(state=TaskState.READY, manual=True)}
        step = Step(actor=actor, instance_id=inst.id, process_id=inst.process_id, version_id=inst.version_id,
                    business_key=inst.business_key, calendar=self.calendar_of(s, inst.version_id))
        token = sandbox.current_step.set(step)
        try:
            act(wf, step, s)  # may say "already completed", which beats "stale" for a double submit
            if expected_lock is not None and inst.lock_version != expected_lock:
                raise Conflict("this changed since you opened it; reload and try again")
        except EngineError:
            raise
        except Exception as e:  # a script error while the action ran (e.g. a postScript)
            self._fail(step, e)
        finally:
            sandbox.current_step.reset(token)
        if run and step.status is None:
            self._advance(wf, step)
        self._save(s, inst, wf, step, before=before)
        return step

    def _advance(self, wf: BpmnWorkflow, step: Step) -> None:
        token = sandbox.current_step.set(step)

        def did(task) -> None:
            ts = task.task_spec
            if limits.data_depth(task.data) > limits.MAX_DATA_DEPTH:
                step.current_task = ts.bpmn_id or ts.name
                raise limits.LimitExceeded(
                    f"task {ts.bpmn_id or ts.name} left data nested more than {limits.MAX_DATA_DEPTH} levels deep "
                    "(GRIDFLOW_MAX_DATA_DEPTH)")
            if isinstance(ts, CatchingEvent) and isinstance(getattr(ts, "event_definition", None), TimerEventDefinition):
                value = task.internal_data.get("event_value")
                if isinstance(value, dict):
                    value = value.get("next")
                step.record("timer_fired", task=ts.bpmn_id, data={"name": ts.bpmn_name, "due": value}, actor="timer")

        try:
            for _ in range(20):
                wf.refresh_timers()
                wf.do_engine_steps(did_complete_task=did)
                if not any(not t.task_spec.manual for t in wf.get_tasks(state=TaskState.READY)):
                    break
            depth = limits.tree_depth(wf)
            if depth > limits.MAX_TREE_DEPTH:
                raise limits.LimitExceeded(
                    f"the task tree is {depth} levels deep, over the limit of {limits.MAX_TREE_DEPTH} "
                    "(GRIDFLOW_MAX_TREE_DEPTH): a loop ran too many rounds; cancel or migrate the instance")
            for ev in wf.get_events():
                kind = type(ev.event_definition).__name__
                info = {"type": kind, "name": getattr(ev.event_definition, "name", None),
                        "code": getattr(ev.event_definition, "code", None), "payload": _jsonable(ev.payload)}
                step.thrown.append(info)
                if isinstance(ev.event_definition, ErrorEventDefinition):
                    step.status = "failed"
                    step.record("error", data={"message": f"uncaught BPMN error {info['code'] or info['name']}",
                                               **info})
                else:
                    step.record("event_thrown", data=info)
        except Exception as e:  # noqa: BLE001 - any script failure becomes an incident
            self._fail(step, e)
        finally:
            sandbox.current_step.reset(token)

    def _fail(self, step: Step, e: Exception) -> None:
        inner = e.__context__ if e.__context__ is not None and not isinstance(e, EngineError) else e
        task = getattr(e, "task", None)
        task_id = task.task_spec.bpmn_id if task is not None else step.current_task
        msg = f"{type(inner).__name__}: {inner}" if inner is not e else f"{type(e).__name__}: {e}"
        step.status = "failed"
        step.record("error", task=task_id, data={"message": msg[:2000]})
        step.error = (task_id, msg[:2000])  # type: ignore[attr-defined]

    def _save(self, s: Session, inst, wf: BpmnWorkflow, step: Step, before: set[str]) -> None:
        """Write state, status, next timer, lock, work items and events; then run the listeners."""
        self._write(s, [self._prepare(s, inst, wf, step, before, clock.now())])

    def _prepare(self, s: Session, inst, wf: BpmnWorkflow, step: Step, before: set[str], now) -> Write:
        """Everything a step will write, computed in Python (a new instance is inserted here: its
        id is needed by its work items)."""
        try:
            state = dump_state(wf)
        except (TypeError, ValueError, RecursionError, OverflowError) as e:  # a script left data JSON cannot hold
            # the step is not stored: the instance keeps the state it had before, as an incident
            state = self._unstorable(step, inst, e)
            before = set(before)
            wf = None
        if step.status is None:
            step.status = "completed" if wf.is_completed() else "running"
        if step.status == "completed" and (inst is None or inst.status != "completed"):
            step.record("completed")
        error = getattr(step, "error", None)
        if step.status == "failed" and error is None:
            error = (None, next((e["data"].get("message") for e in step.events if e["kind"] == "error"), "failed"))
        nxt = None if step.status in ("completed", "cancelled") or wf is None else next_timer_at(wf)
        err_task, err_msg = error if error else (None, None)
        w = Write(step)
        if inst is None:
            seq0 = 0
            step.lock_version = 1
            step.instance_id = s.connection().execute(INS_INSTANCE, {
                "process_id": step.process_id, "version_id": step.version_id, "business_key": step.business_key,
                "status": step.status, "state_json": state, "next_timer_at": nxt, "lock_version": 1,
                "event_seq": len(step.events), "created_at": now, "updated_at": now, "started_by": step.actor,
                "error_task": err_task, "error_message": err_msg}).scalar_one()
        else:
            seq0 = inst.event_seq
            step.lock_version = inst.lock_version + 1
            w.update = {"p_id": inst.id, "p_lock": inst.lock_version, "p_state": state, "p_status": step.status,
                        "p_next": nxt, "p_new_lock": inst.lock_version + 1, "p_now": now,
                        "p_seq": seq0 + len(step.events), "p_err_task": err_task, "p_err_msg": err_msg}
        step.data = _jsonable(wf.data) if wf is not None else {}
        # work items: READY user tasks open; the ones that left close. The open set before the step
        # is exactly the READY set of the workflow as loaded (same transaction).
        if wf is None:  # nothing of the step was stored: the open items stay open
            ready = dict.fromkeys(before)
        else:
            ready = {} if step.status in ("completed", "cancelled") else {
                str(t.id): t for t in wf.get_tasks(state=TaskState.READY, manual=True)}
        gone = [g for g in before if g not in ready]
        w.closes = [{"p_guid": g, "p_state": "completed" if g in step.completed_guids else "cancelled",
                     "p_now": now, "p_by": step.actor if g in step.completed_guids else None} for g in gone]
        step.closed = gone
        w.items = [self._work_item_row(s, step, task, now) for guid, task in ready.items() if guid not in before]
        step.opened = w.items
        w.events = [{"instance_id": step.instance_id, "seq": seq0 + i + 1, "at": now, "actor": e["actor"],
                     "kind": e["kind"], "task": e["task"], "data": e["data"]} for i, e in enumerate(step.events)]
        return w

    def _unstorable(self, step: Step, inst, e: Exception) -> str:
        """Fail the step whose data cannot be serialized; the state to keep is the one before it."""
        cause = "it is nested too deeply" if isinstance(e, RecursionError) else f"{type(e).__name__}: {e}"
        step.events = [ev for ev in step.events if ev["kind"] not in ("completed", "task_completed")]
        step.status = "failed"
        step.completed_guids.clear()
        msg = f"the instance data cannot be stored ({cause}); the step was not applied"[:2000]
        step.record("error", task=step.current_task, data={"message": msg})
        step.error = (step.current_task, msg)  # type: ignore[attr-defined]
        if inst is not None:
            return inst.state_json
        return step.fallback_state or ""

    def _write(self, s: Session, writes: list[Write]) -> None:
        """Write the prepared steps with one statement per kind (executemany), then run listeners."""
        store.write(s, writes, self.listeners)

    def calendar_of(self, s: Session, version_id: int | None) -> WorkCalendar:
        """The work calendar deployed with this version (else the configured one): a running
        instance keeps the calendar it started with until it is migrated."""
        return self.version_calendars.get(s, version_id, self.calendar)

    def work_item_row(self, s: Session, step: Step, task, now) -> dict:
        """The work-item row for a READY user task (assignment hook + SLA times)."""
        return self._work_item_row(s, step, task, now)

    def _work_item_row(self, s: Session, step: Step, task, now) -> dict:
        return work_item_row(self.assigner, s, step, task, now)

    def annotate(self, instance_id: int, kind: str, data: dict, *, actor: str | None = None,
                 session: Session | None = None) -> None:
        """Append an audit event that did not come from an engine step (e.g. a supervisor's urge).
        It bumps lock_version too, so a step that loaded earlier gets a clean Conflict."""
        if session is not None:
            store.annotate(session, instance_id, kind, data, actor)
        else:
            with self.db.write() as s:
                store.annotate(s, instance_id, kind, data, actor)

    # ---- timers ------------------------------------------------------------------------------
    def sweep(self, batch: int = 100, now: datetime | None = None, limit: int | None = None) -> int:
        """Fire every timer due by `now`; returns how many instances fired. Several processes may
        sweep at once on PostgreSQL (SKIP LOCKED). A batch is claimed, fired and written with one
        statement per kind; if anything in it fails, the batch is redone one instance at a time,
        and an instance that cannot even be loaded becomes an incident instead of blocking others."""
        now = now or clock.now()
        fired = 0
        while limit is None or fired < limit:
            with self.db.write() as s:
                rows = s.connection().execute(self._sel_due, {"p_now": now, "p_limit": batch}).all()
                if not rows:
                    break
                try:
                    with s.begin_nested():
                        self._write(s, [self._fire_prepared(s, r, now) for r in rows])
                    fired += len(rows)
                except Exception:  # noqa: BLE001 - isolate the culprit below
                    for r in rows:
                        try:
                            with s.begin_nested():
                                self.fire_timers(r.id, session=s)
                            fired += 1
                        except Conflict:
                            continue
                        except Exception as e:  # noqa: BLE001
                            self._mark_broken(s, r.id, e)
            if len(rows) < batch:
                break
        return fired

    def _fire_prepared(self, s: Session, inst, now) -> Write:
        spec, subs, _forms, _pid = self._version(s, inst.version_id)
        wf = load_state(inst.state_json, spec, subs, self.script_engine)
        before = {str(t.id) for t in wf.get_tasks(state=TaskState.READY, manual=True)}
        step = Step(actor=None, instance_id=inst.id, process_id=inst.process_id, version_id=inst.version_id,
                    business_key=inst.business_key, calendar=self.calendar_of(s, inst.version_id))
        self._advance(wf, step)
        return self._prepare(s, inst, wf, step, before, now)

    def _mark_broken(self, s: Session, instance_id: int, e: Exception) -> None:
        store.mark_broken(s, instance_id, e)
