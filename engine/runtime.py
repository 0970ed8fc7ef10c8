"""The step: every change to an instance is one transaction.

load the instance -> act (start, complete, message, signal, cancel, fire timers, retry)
-> refresh_timers + do_engine_steps -> drain thrown events -> save the state (without the
spec), next_timer_at, status and lock_version + 1 (conditional on the old lock_version),
the work items and the audit events, all in the same transaction.
"""
from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any
from uuid import UUID

from jsonschema import Draft202012Validator
from SpiffWorkflow.bpmn import BpmnEvent
from SpiffWorkflow.bpmn.specs.control import BoundaryEventSplit
from SpiffWorkflow.bpmn.specs.event_definitions.item_aware_event import ErrorEventDefinition
from SpiffWorkflow.bpmn.specs.event_definitions.timer import TimerEventDefinition
from SpiffWorkflow.bpmn.specs.mixins.events.event_types import CatchingEvent
from SpiffWorkflow.bpmn.workflow import BpmnWorkflow
from SpiffWorkflow.exceptions import WorkflowException
from SpiffWorkflow.spiff.specs.event_definitions import MessageEventDefinition, SignalEventDefinition
from SpiffWorkflow.util.task import TaskState
from sqlalchemy import bindparam, select
from sqlalchemy.orm import Session

from . import clock, sandbox
from .calendar import WorkCalendar
from .db import Database, UTCDateTime
from .errors import Conflict, EngineError, InvalidData, NotFound
from .models import Instance, InstanceEvent, ProcessDefinition, ProcessVersion, VersionPin, WorkItem
from .serializer import dump_state, load_specs, load_state

TIMER_TYPES = {"DurationTimerEventDefinition", "TimeDateEventDefinition", "CycleTimerEventDefinition"}
ACTIVE = TaskState.READY | TaskState.STARTED | TaskState.WAITING


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


@dataclass
class Step:
    """Everything one step did, handed to listeners before commit."""

    actor: str | None
    instance_id: int | None = None
    process_id: str | None = None
    version_id: int | None = None
    business_key: str | None = None
    status: str | None = None
    events: list[dict] = field(default_factory=list)  # audit rows to write
    emitted: list[dict] = field(default_factory=list)  # domain events from emit()
    thrown: list[dict] = field(default_factory=list)
    completed_guids: set[str] = field(default_factory=set)
    opened: list[dict] = field(default_factory=list)  # work item rows created
    closed: list[str] = field(default_factory=list)
    current_task: str | None = None
    lock_version: int = 0
    data: dict = field(default_factory=dict)  # a snapshot of the top workflow's data
    calendar: WorkCalendar | None = None

    def emit(self, kind: str, data: dict) -> None:
        clean = _jsonable(data)
        self.emitted.append({"kind": kind, "data": clean, "task": self.current_task})
        self.record(kind, task=self.current_task, data=clean)

    def record(self, kind: str, task: str | None = None, data: dict | None = None, actor: str | None = None) -> None:
        self.events.append({"kind": kind, "task": task, "data": data or {}, "actor": actor or self.actor})


Listener = Callable[[Session, Step], None]


def _workdays(n: int) -> str:
    """`n` working days (工作日) from now, per the calendar of the runtime running this step."""
    step = sandbox.current_step.get()
    cal = step.calendar if step is not None and step.calendar is not None else WorkCalendar()
    return cal.add_workdays(clock.now(), int(n)).isoformat()


sandbox.register_helper("workdays", _workdays)


def _jsonable(v: Any) -> Any:
    if isinstance(v, dict):
        return {str(k): _jsonable(x) for k, x in v.items()}
    if isinstance(v, (list, tuple, set)):
        return [_jsonable(x) for x in v]
    if isinstance(v, datetime):
        return v.isoformat()
    if v is None or isinstance(v, (str, int, float, bool)):
        return v
    return str(v)


_I = Instance.__table__
_W = WorkItem.__table__
_E = InstanceEvent.__table__

# Statements built once: SQLAlchemy then reuses their compiled form (building ORM statements per
# step cost more than the database round trips themselves).
_SEL_INSTANCE = select(_I.c.id, _I.c.process_id, _I.c.version_id, _I.c.business_key, _I.c.status,
                       _I.c.state_json, _I.c.lock_version, _I.c.event_seq).where(_I.c.id == bindparam("p_id"))

_INS_INSTANCE = _I.insert().returning(_I.c.id)
_UPD_INSTANCE = _I.update().where(_I.c.id == bindparam("p_id"), _I.c.lock_version == bindparam("p_lock")).values(
    state_json=bindparam("p_state"), status=bindparam("p_status"),
    next_timer_at=bindparam("p_next", type_=UTCDateTime()), lock_version=bindparam("p_new_lock"),
    updated_at=bindparam("p_now", type_=UTCDateTime()), event_seq=bindparam("p_seq"),
    error_task=bindparam("p_err_task"), error_message=bindparam("p_err_msg"))
_CLOSE_ITEM = _W.update().where(_W.c.task_guid == bindparam("p_guid")).values(
    state=bindparam("p_state"), closed_at=bindparam("p_now", type_=UTCDateTime()), closed_by=bindparam("p_by"))
_INS_ITEMS = _W.insert()
_INS_EVENTS = _E.insert()
_SEL_ACTIVE = select(ProcessDefinition.__table__.c.active_version_id).where(
    ProcessDefinition.__table__.c.process_id == bindparam("p_pid"))
_INSTANCE_COLS = (_I.c.id, _I.c.process_id, _I.c.version_id, _I.c.business_key, _I.c.status, _I.c.state_json,
                  _I.c.lock_version, _I.c.event_seq)
_SEL_DUE = (select(*_INSTANCE_COLS)
            .where(_I.c.status == "running", _I.c.next_timer_at <= bindparam("p_now", type_=UTCDateTime()))
            .order_by(_I.c.next_timer_at).limit(bindparam("p_limit")))


@dataclass
class _Write:
    """One prepared step: what `_write` will send to the database."""

    step: Step
    update: dict | None = None
    closes: list[dict] = field(default_factory=list)
    items: list[dict] = field(default_factory=list)
    events: list[dict] = field(default_factory=list)


class Runtime:
    """The engine facade: the only place that touches SpiffWorkflow workflows."""

    def __init__(self, db: Database, assigner: Assigner | None = None, calendar: WorkCalendar | None = None,
                 validate_forms: bool = True):
        self.db = db
        self.assigner = assigner or default_assigner
        self.listeners: list[Listener] = []
        self.validate_forms = validate_forms
        self.calendar = calendar or WorkCalendar()
        self.script_engine = sandbox.SandboxedScriptEngine()
        self._specs: dict[int, tuple] = {}
        self._validators: dict[tuple[int, str], Draft202012Validator] = {}
        self._lock = threading.Lock()
        self._sel_due = _SEL_DUE.with_for_update(skip_locked=True) if db.dialect == "postgresql" else _SEL_DUE

    # ---- specs -------------------------------------------------------------------------------
    def _version(self, s: Session, version_id: int) -> tuple:
        cached = self._specs.get(version_id)
        if cached is None:
            v = s.get(ProcessVersion, version_id)
            if v is None:
                raise NotFound(f"process version {version_id} does not exist")
            spec, subs = load_specs(v.spec_json)
            cached = (spec, subs, v.forms or {}, v.process_id)
            with self._lock:
                self._specs[version_id] = cached
        return cached

    def specs(self, s: Session, version_id: int) -> tuple:
        """(spec, subprocess specs, forms, process id) of a version, parsed once and cached."""
        return self._version(s, version_id)

    def resolve_version(self, s: Session, process_id: str, version_id: int | None = None,
                        scopes: list[str] | None = None) -> int:
        """Which version a new instance uses: the named one, a pin for its scope, or the active one."""
        if version_id is not None:
            v = s.get(ProcessVersion, version_id)
            if v is None or v.process_id != process_id:
                raise NotFound(f"version {version_id} of {process_id} does not exist")
            if v.state == "retired":
                raise Conflict(f"{process_id} v{v.number} is retired")
            return v.id
        if scopes:
            pins = s.execute(select(VersionPin.scope, VersionPin.version_id).where(
                VersionPin.process_id == process_id, VersionPin.scope.in_(scopes))).all()
            if pins:
                return max(pins, key=lambda p: len(p[0]))[1]
        active = s.connection().execute(_SEL_ACTIVE, {"p_pid": process_id}).scalar()
        if active is None:
            raise NotFound(f"process {process_id} has no active version; deploy it first")
        return active

    def form_schema(self, version_id: int, form: str | None, session: Session | None = None) -> dict | None:
        if not form:
            return None
        if session is not None:
            return self._version(session, version_id)[2].get(form)
        with self.db.read() as s:
            return self._version(s, version_id)[2].get(form)

    def validate_task_data(self, version_id: int, form: str | None, data: dict, session: Session | None = None) -> None:
        """Raise InvalidData listing every error (path and message) if data does not fit the form."""
        if not form or not self.validate_forms:
            return
        key = (version_id, form)
        validator = self._validators.get(key)
        if validator is None:
            schema = self.form_schema(version_id, form, session)
            if schema is None:
                raise InvalidData(f"form {form} is missing from this process version")
            validator = Draft202012Validator(schema, format_checker=Draft202012Validator.FORMAT_CHECKER)
            self._validators[key] = validator
        errors = sorted(validator.iter_errors(data), key=lambda e: list(e.absolute_path))
        if errors:
            raise InvalidData(
                "the form has errors",
                [{"path": "/".join(str(p) for p in e.absolute_path), "message": e.message,
                  "validator": e.validator} for e in errors],
            )

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
        wf = BpmnWorkflow(spec, subs, script_engine=self.script_engine)
        start = wf.get_tasks(state=TaskState.READY)[0]
        start.data.update(data or {})
        step = Step(actor=actor, process_id=process_id, version_id=vid, business_key=business_key,
                    calendar=self.calendar)
        step.record("started", data={"version_id": vid, "process_id": process_id})
        self._advance(wf, step)
        self._save(s, None, wf, step, before=set())
        return step

    def complete(self, instance_id: int, task_guid: str, data: dict | None = None, *, actor: str | None = None,
                 expected_lock: int | None = None) -> Step:
        """Complete a READY user task with form data. A second completion gets Conflict; invalid data
        gets InvalidData; either way nothing changes."""
        data = dict(data or {})

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

        return self._step(instance_id, act, actor, expected_lock)

    def send_message(self, instance_id: int, name: str, payload: Any = None, *, actor: str | None = None,
                     session: Session | None = None) -> Step:
        def act(wf: BpmnWorkflow, step: Step, s: Session) -> None:
            try:
                wf.send_event(BpmnEvent(MessageEventDefinition(name), payload=payload))
            except WorkflowException as e:
                raise Conflict(f"the instance is not waiting for message {name!r}") from e
            step.record("message_received", data={"name": name, "payload": _jsonable(payload)})

        return self._step(instance_id, act, actor, session=session)

    def signal(self, instance_id: int, name: str, payload: Any = None, *, actor: str | None = None) -> Step:
        def act(wf: BpmnWorkflow, step: Step, s: Session) -> None:
            try:
                wf.send_event(BpmnEvent(SignalEventDefinition(name), payload=payload))
            except WorkflowException as e:
                raise Conflict(f"the instance is not waiting for signal {name!r}") from e
            step.record("signal_received", data={"name": name, "payload": _jsonable(payload)})

        return self._step(instance_id, act, actor)

    def cancel(self, instance_id: int, *, actor: str | None = None, reason: str | None = None,
               session: Session | None = None) -> Step:
        def act(wf: BpmnWorkflow, step: Step, s: Session) -> None:
            wf.cancel()
            step.status = "cancelled"
            step.record("cancelled", data={"reason": reason})

        return self._step(instance_id, act, actor, run=False, allow={"running", "failed"}, session=session)

    def fire_timers(self, instance_id: int, *, session: Session | None = None) -> Step:
        """Fire whatever timers are due now (the sweep calls this per due instance)."""
        return self._step(instance_id, lambda wf, step, s: None, None, session=session)

    def retry(self, instance_id: int, data: dict | None = None, *, actor: str | None = None) -> Step:
        """Re-run the failed task(s) of a failed instance, after patching their data."""
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
        inst = s.connection().execute(_SEL_INSTANCE, {"p_id": instance_id}).first()
        if inst is None:
            raise NotFound(f"instance {instance_id} does not exist")
        if inst.status not in (allow or {"running"}):
            raise Conflict(f"the instance is {inst.status}")
        spec, subs, _forms, _pid = self._version(s, inst.version_id)
        wf = load_state(inst.state_json, spec, subs, self.script_engine)
        before = {str(t.id) for t in wf.get_tasks(state=TaskState.READY, manual=True)}
        step = Step(actor=actor, instance_id=inst.id, process_id=inst.process_id, version_id=inst.version_id,
                    business_key=inst.business_key, calendar=self.calendar)
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

    def _prepare(self, s: Session, inst, wf: BpmnWorkflow, step: Step, before: set[str], now) -> _Write:
        """Everything a step will write, computed in Python (a new instance is inserted here: its
        id is needed by its work items)."""
        if step.status is None:
            step.status = "completed" if wf.is_completed() else "running"
        if step.status == "completed" and (inst is None or inst.status != "completed"):
            step.record("completed")
        error = getattr(step, "error", None)
        if step.status == "failed" and error is None:
            error = (None, next((e["data"].get("message") for e in step.events if e["kind"] == "error"), "failed"))
        nxt = None if step.status in ("completed", "cancelled") else next_timer_at(wf)
        state = dump_state(wf)
        err_task, err_msg = error if error else (None, None)
        w = _Write(step)
        if inst is None:
            seq0 = 0
            step.lock_version = 1
            step.instance_id = s.connection().execute(_INS_INSTANCE, {
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
        step.data = _jsonable(wf.data)
        # work items: READY user tasks open; the ones that left close. The open set before the step
        # is exactly the READY set of the workflow as loaded (same transaction).
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

    def _write(self, s: Session, writes: list[_Write]) -> None:
        """Write the prepared steps with one statement per kind (executemany), then run listeners."""
        conn = s.connection()
        updates = [w.update for w in writes if w.update is not None]
        if updates:
            res = conn.execute(_UPD_INSTANCE, updates)
            if res.rowcount != len(updates):
                raise Conflict("someone else changed this at the same time; reload and try again")
        closes = [c for w in writes for c in w.closes]
        if closes:
            conn.execute(_CLOSE_ITEM, closes)
        items = [r for w in writes for r in w.items]
        if items:
            conn.execute(_INS_ITEMS, items)
        events = [e for w in writes for e in w.events]
        if events:
            conn.execute(_INS_EVENTS, events)
        for w in writes:
            for fn in self.listeners:
                fn(s, w.step)

    def work_item_row(self, s: Session, step: Step, task, now) -> dict:
        """The work-item row for a READY user task (assignment hook + SLA times)."""
        return self._work_item_row(s, step, task, now)

    def _work_item_row(self, s: Session, step: Step, task, now) -> dict:
        ts = task.task_spec
        props = (ts.extensions or {}).get("properties", {}) or {}
        ctx = TaskContext(process_id=step.process_id, task_spec=ts.bpmn_id, name=ts.bpmn_name, props=props,
                          data=task.data, instance_id=step.instance_id, session=s)
        a = self.assigner(ctx)
        warn, due = sla_times(task)
        return {"instance_id": step.instance_id, "task_guid": str(task.id), "task_spec": ts.bpmn_id,
                "process_id": step.process_id, "name": ts.bpmn_name or ts.bpmn_id, "form": props.get("form"),
                "unit_id": a.unit_id, "role": a.role, "user_id": a.user_id, "state": "open", "created_at": now,
                "warn_at": warn, "due_at": due, "closed_at": None, "closed_by": None,
                "props": {k: v for k, v in props.items() if k != "form"}}

    def annotate(self, instance_id: int, kind: str, data: dict, *, actor: str | None = None,
                 session: Session | None = None) -> None:
        """Append an audit event that did not come from an engine step (e.g. a supervisor's urge).
        It bumps lock_version too, so a step that loaded earlier gets a clean Conflict."""
        def run(s: Session) -> None:
            conn = s.connection()
            row = conn.execute(_SEL_INSTANCE, {"p_id": instance_id}).first()
            if row is None:
                raise NotFound(f"instance {instance_id} does not exist")
            res = conn.execute(_I.update().where(_I.c.id == instance_id, _I.c.lock_version == row.lock_version)
                               .values(lock_version=row.lock_version + 1, event_seq=row.event_seq + 1))
            if res.rowcount != 1:
                raise Conflict("someone else changed this at the same time; reload and try again")
            conn.execute(_INS_EVENTS, [{"instance_id": instance_id, "seq": row.event_seq + 1, "at": clock.now(),
                                        "actor": actor, "kind": kind, "task": None, "data": _jsonable(data)}])

        if session is not None:
            run(session)
        else:
            with self.db.write() as s:
                run(s)

    # ---- reads -------------------------------------------------------------------------------
    def history(self, instance_id: int) -> list[InstanceEvent]:
        with self.db.read() as s:
            return list(s.scalars(select(InstanceEvent).where(InstanceEvent.instance_id == instance_id)
                                  .order_by(InstanceEvent.seq)))

    def instance(self, instance_id: int) -> Instance:
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
        return _jsonable(task.data)

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

    def _fire_prepared(self, s: Session, inst, now) -> _Write:
        spec, subs, _forms, _pid = self._version(s, inst.version_id)
        wf = load_state(inst.state_json, spec, subs, self.script_engine)
        before = {str(t.id) for t in wf.get_tasks(state=TaskState.READY, manual=True)}
        step = Step(actor=None, instance_id=inst.id, process_id=inst.process_id, version_id=inst.version_id,
                    business_key=inst.business_key, calendar=self.calendar)
        self._advance(wf, step)
        return self._prepare(s, inst, wf, step, before, now)

    def _mark_broken(self, s: Session, instance_id: int, e: Exception) -> None:
        msg = f"{type(e).__name__}: {e}"[:2000]
        conn = s.connection()
        seq = conn.execute(select(_I.c.event_seq).where(_I.c.id == instance_id)).scalar_one() + 1
        conn.execute(_I.update().where(_I.c.id == instance_id).values(
            status="failed", error_message=msg, event_seq=seq, lock_version=_I.c.lock_version + 1))
        conn.execute(_INS_EVENTS, [{"instance_id": instance_id, "seq": seq, "at": clock.now(), "actor": "timer",
                                    "kind": "error", "task": None, "data": {"message": msg}}])


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
