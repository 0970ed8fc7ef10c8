"""Engine benchmark: Gridflow's service layer against a thin SpiffWorkflow loop, on SQLite and PostgreSQL.

    .venv/bin/python -m bench.engine_bench [--quick] [--pg URL] [--dialects sqlite,postgresql] [--profile]

Measures, per database, in one run:
  a  start an instance of four_tasks to its first user task (one transaction)
  b  complete one user task (one transaction that loads the instance)
  c  a whole instance: start + 4 completions
each through Gridflow (engine.runtime.Runtime) and through a thin loop (plain SpiffWorkflow, the full
serialize_json/deserialize_json, one thin_instance row); then a timer sweep with 0 and with 1,000 due among
100k waiting instances, and an inbox query among 100k open work items. See bench/README.md.
"""
from __future__ import annotations

import argparse
import contextlib
import cProfile
import functools
import gc
import io
import json
import os
import platform
import pstats
import sqlite3
import statistics
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from uuid import UUID

import psycopg
import SpiffWorkflow
import sqlalchemy
from SpiffWorkflow.bpmn.serializer import BpmnWorkflowSerializer
from SpiffWorkflow.bpmn.workflow import BpmnWorkflow
from SpiffWorkflow.spiff.parser.process import SpiffBpmnParser
from SpiffWorkflow.spiff.serializer.config import SPIFF_CONFIG
from SpiffWorkflow.util.task import TaskState
from sqlalchemy import func, select, text
from sqlalchemy.orm import Session
from sqlalchemy.orm.session import SessionTransaction

import engine.runtime as rt_mod
from bench._common import PG_DEFAULT, Scratch, admin_engine
from engine import clock, sandbox
from engine.db import Database
from engine.deploy import Bundle, deploy
from engine.migrate import upgrade
from engine.models import Instance, InstanceEvent, WorkItem
from engine.runtime import Runtime

HERE = Path(__file__).resolve().parent
BPMN = HERE / "fixtures" / "four_tasks.bpmn"
FORMS = HERE / "fixtures" / "forms"
RESULTS = HERE / "results"
PROCESS = "four_tasks"
T0 = datetime(2026, 1, 5, 8, 0, tzinfo=UTC)  # the fake clock; the PT1H reminder on t2 is due at T0 + 1h
FORM_DATA = {"note": "ok", "amount": 1}
UNITS = 3000

TARGETS = {
    "c_ratio_max": 2.0,  # Gridflow / thin for a whole instance
    "sweep_idle_ms": 10.0,  # median sweep with 0 due among 100k waiting
    "sweep_fire_s": 3.0,  # one sweep firing 1,000 due timers
    "inbox_ms": 10.0,  # median inbox query for one unit among 100k open work items
}

perf = time.perf_counter


def ms(x: float) -> float:
    return round(x * 1000.0, 3)


def summary(xs: list[float]) -> dict:
    """Median, p95, mean, min (ms) of durations given in seconds."""
    if not xs:
        return {"n": 0}
    s = sorted(xs)
    p95 = s[min(len(s) - 1, int(round(0.95 * (len(s) - 1))))]
    return {"n": len(s), "median_ms": ms(statistics.median(s)), "p95_ms": ms(p95),
            "mean_ms": ms(statistics.fmean(s)), "min_ms": ms(s[0])}


def unit_of(i: int) -> str:
    return f"unit-{i % UNITS:04d}"


# ---- databases ------------------------------------------------------------------------------------------
class Target(Scratch):
    """A scratch database of one dialect: Gridflow's tables (migrated) plus thin_instance."""

    def __init__(self, dialect: str, pg_base: str | None):
        super().__init__(dialect, pg_base, "gridflow_bench")
        self.db = Database(self.url)
        upgrade(self.db)
        with self.db.write() as s:
            deploy(s, Bundle.from_dirs(BPMN, FORMS), actor="bench")

    def close(self) -> None:
        self.db.dispose()
        super().close()


# ---- the thin loop ------------------------------------------------------------------------------------------
class Thin:
    """Plain SpiffWorkflow + one row per instance: the floor any service layer is compared with.

    Each operation is its own transaction and (except start) reads the row back first, like a request.
    """

    def __init__(self, target: Target):
        parser = SpiffBpmnParser()
        parser.add_bpmn_file(str(BPMN))
        self.spec = parser.get_spec(PROCESS)
        self.subs = parser.get_subprocess_specs(PROCESS)
        self.ser = BpmnWorkflowSerializer(BpmnWorkflowSerializer.configure(SPIFF_CONFIG))
        self.sqlite = target.dialect == "sqlite"
        self.phases: dict[str, float] | None = None  # set to a dict to collect a per-phase breakdown
        if self.sqlite:
            self.conn = sqlite3.connect(target.path, isolation_level=None, timeout=30, check_same_thread=False)
            self.conn.execute("PRAGMA journal_mode=WAL")
            self.conn.execute("PRAGMA synchronous=NORMAL")
            self.conn.execute("PRAGMA busy_timeout=30000")
            self.conn.execute("CREATE TABLE IF NOT EXISTS thin_instance (id INTEGER PRIMARY KEY, state_json TEXT NOT NULL)")
            self.q = "?"
        else:
            self.conn = psycopg.connect(target.url, autocommit=True)
            self.conn.execute("CREATE TABLE IF NOT EXISTS thin_instance (id BIGSERIAL PRIMARY KEY, state_json TEXT NOT NULL)")
            self.q = "%s"

    @contextlib.contextmanager
    def tx(self):
        if self.sqlite:
            t = perf()
            self.conn.execute("BEGIN IMMEDIATE")
            self._phase("begin", t)
            try:
                yield
            except BaseException:
                self.conn.execute("ROLLBACK")
                raise
            t = perf()
            self.conn.execute("COMMIT")
            self._phase("commit", t)
        else:
            t = perf()
            with self.conn.transaction() as tr:
                self._phase("begin", t)
                yield
                t = perf()
            # psycopg commits on leaving the block
            self._phase("commit", t)
            del tr

    def _phase(self, name: str, t0: float) -> float:
        now = perf()
        if self.phases is not None:
            key = (self._op, name)
            self.phases[key] = self.phases.get(key, 0.0) + now - t0
        return now

    _op = "start"

    def _run(self, wf: BpmnWorkflow, t: float) -> float:
        wf.refresh_timers()
        wf.do_engine_steps()
        t = self._phase("engine steps", t)
        return t

    @staticmethod
    def _ready(wf: BpmnWorkflow) -> str | None:
        ready = wf.get_tasks(state=TaskState.READY, manual=True)
        return str(ready[0].id) if ready else None

    def start(self, data: dict) -> tuple[int, str | None]:
        self._op = "start"
        with self.tx():
            t = perf()
            wf = BpmnWorkflow(self.spec, self.subs)
            wf.get_tasks(state=TaskState.READY)[0].data.update(data)
            t = self._phase("new workflow", t)
            t = self._run(wf, t)
            js = self.ser.serialize_json(wf)
            t = self._phase("serialize", t)
            iid = self.conn.execute(f"INSERT INTO thin_instance (state_json) VALUES ({self.q}) RETURNING id",
                                    (js,)).fetchone()[0]
            self._phase("INSERT", t)
            return iid, self._ready(wf)

    def complete(self, iid: int, guid: str, data: dict) -> tuple[str | None, bool]:
        self._op = "complete"
        with self.tx():
            t = perf()
            js = self.conn.execute(f"SELECT state_json FROM thin_instance WHERE id = {self.q}", (iid,)).fetchone()[0]
            t = self._phase("SELECT", t)
            wf = self.ser.deserialize_json(js)
            t = self._phase("deserialize", t)
            task = wf.get_task_from_id(UUID(guid))
            if task is None or task.state != TaskState.READY or not task.task_spec.manual:
                raise RuntimeError("task not ready")
            task.data.update(data)
            task.run()
            t = self._phase("task.run", t)
            t = self._run(wf, t)
            js = self.ser.serialize_json(wf)
            t = self._phase("serialize", t)
            self.conn.execute(f"UPDATE thin_instance SET state_json = {self.q} WHERE id = {self.q}", (js, iid))
            self._phase("UPDATE", t)
            return self._ready(wf), wf.is_completed()

    def state_size(self, iid: int) -> int:
        return len(self.conn.execute(f"SELECT state_json FROM thin_instance WHERE id = {self.q}", (iid,)).fetchone()[0])

    def close(self) -> None:
        self.conn.close()


# ---- one whole instance, both ways ------------------------------------------------------------------------
def gridflow_instance(rt: Runtime, i: int) -> tuple[float, list[float], float, int]:
    t0 = perf()
    step = rt.start(PROCESS, {"unit": unit_of(i)}, actor="bench")
    a = perf() - t0
    iid = step.instance_id
    bs = []
    for _ in range(4):
        guid = step.opened[0]["task_guid"]
        t = perf()
        step = rt.complete(iid, guid, FORM_DATA, actor="bench")
        bs.append(perf() - t)
    c = perf() - t0
    if step.status != "completed":
        raise RuntimeError(f"gridflow instance {iid} ended {step.status}")
    return a, bs, c, iid


def thin_instance(thin: Thin, i: int) -> tuple[float, list[float], float, int]:
    t0 = perf()
    iid, guid = thin.start({"unit": unit_of(i)})
    a = perf() - t0
    bs = []
    done = False
    for _ in range(4):
        t = perf()
        guid, done = thin.complete(iid, guid, FORM_DATA)
        bs.append(perf() - t)
    c = perf() - t0
    if not done:
        raise RuntimeError(f"thin instance {iid} did not complete")
    return a, bs, c, iid


def measure_steps(rt: Runtime, thin: Thin, n: int, warm: int) -> dict:
    raw = {k: {"a": [], "b": [], "b_task": [[], [], [], []], "c": []} for k in ("gridflow", "thin")}
    runners = {"gridflow": lambda i: gridflow_instance(rt, i), "thin": lambda i: thin_instance(thin, i)}
    for i in range(warm + n):
        order = ("gridflow", "thin") if i % 2 == 0 else ("thin", "gridflow")  # alternate to share drift fairly
        for name in order:
            a, bs, c, _ = runners[name](i)
            if i < warm:
                continue
            r = raw[name]
            r["a"].append(a)
            r["b"].extend(bs)
            for k, b in enumerate(bs):
                r["b_task"][k].append(b)
            r["c"].append(c)
    out = {}
    for name, r in raw.items():
        out[name] = {"a_start": summary(r["a"]), "b_complete": summary(r["b"]),
                     "b_by_task": {f"t{k + 1}": summary(v) for k, v in enumerate(r["b_task"])},
                     "c_instance": summary(r["c"])}
    out["ratio_median"] = {k: round(out["gridflow"][k]["median_ms"] / out["thin"][k]["median_ms"], 2)
                           for k in ("a_start", "b_complete", "c_instance")}
    return out


def state_sizes(target: Target, rt: Runtime, thin: Thin) -> dict:
    """Bytes of stored state while waiting at t2 (after start + one completion)."""
    step = rt.start(PROCESS, {"unit": unit_of(1)})
    rt.complete(step.instance_id, step.opened[0]["task_guid"], FORM_DATA)
    with target.db.read() as s:
        gf = len(s.get(Instance, step.instance_id).state_json)
        spec = len(s.scalar(text("SELECT spec_json FROM process_version ORDER BY id DESC LIMIT 1")))
    rt.cancel(step.instance_id, reason="bench sizes")  # keep its timer out of the sweep measurements
    iid, guid = thin.start({"unit": unit_of(1)})
    thin.complete(iid, guid, FORM_DATA)
    return {"gridflow_state_json_bytes": gf, "gridflow_spec_json_bytes_once_per_version": spec,
            "thin_full_json_bytes": thin.state_size(iid)}


# ---- per-phase breakdown of Gridflow's steps (monkeypatched timers, exclusive time) -------------------------
STICKY = {"preflight read txn", "work-item sync", "engine steps (_advance)"}


class PhaseTimer:
    """Exclusive wall time per (root, label) and per (root, group).

    A nested frame's time is subtracted from its parent's. A frame's group is its own, or its parent's when it
    has none or when the parent's group is sticky (everything inside the work-item sync counts as work-item
    sync, SQL included). The root is the outermost timed call (start, complete, sweep).
    """

    def __init__(self):
        self.by_label: dict[tuple[str, str], float] = {}
        self.by_group: dict[tuple[str, str], float] = {}
        self.calls: dict[tuple[str, str], int] = {}
        self.roots: dict[str, int] = {}
        self.stack: list[list] = []  # [label, group, start, child_time]
        self._undo: list = []

    def enter(self, label: str, group: str | None = None) -> None:
        if self.stack:
            parent = self.stack[-1][1]
            if parent in STICKY or group is None:
                group = parent
        else:
            self.roots[label] = self.roots.get(label, 0) + 1
            group = group or "python: the operation itself"
        self.stack.append([label, group, perf(), 0.0])

    def leave(self) -> None:
        label, group, t0, child = self.stack.pop()
        el = perf() - t0
        root = self.stack[0][0] if self.stack else label
        for d, k in ((self.by_label, (root, label)), (self.by_group, (root, group))):
            d[k] = d.get(k, 0.0) + el - child
        self.calls[(root, label)] = self.calls.get((root, label), 0) + 1
        if self.stack:
            self.stack[-1][3] += el

    def wrap(self, owner, name: str, label, group: str | None = None, reentrant: bool = True) -> None:
        orig = getattr(owner, name)
        timer = self
        depth = [0]

        @functools.wraps(orig)
        def wrapper(*a, **kw):
            if not reentrant and depth[0]:
                return orig(*a, **kw)
            lab = label(*a, **kw) if callable(label) else label
            grp = group(*a, **kw) if callable(group) else group
            depth[0] += 1
            timer.enter(lab, grp)
            try:
                return orig(*a, **kw)
            finally:
                timer.leave()
                depth[0] -= 1

        setattr(owner, name, wrapper)
        self._undo.append((owner, name, orig))

    def wrap_cm(self, owner, name: str, label: str, group: str | None = None) -> None:
        """Time a contextmanager-returning method from __enter__ to __exit__ (the body included)."""
        orig = getattr(owner, name)
        timer = self

        @contextlib.contextmanager
        def wrapper(*a, **kw):
            timer.enter(label, group)
            try:
                with orig(*a, **kw) as v:
                    yield v
            finally:
                timer.leave()

        setattr(owner, name, wrapper)
        self._undo.append((owner, name, orig))

    def listen(self, eng) -> None:
        """Time the DB-API round trips themselves (driver + server), inside whatever SQL frame issued them."""
        def before(*_a, **_k):
            self.enter("DB round trip (cursor.execute)")

        def after(*_a, **_k):
            self.leave()

        sqlalchemy.event.listen(eng, "before_cursor_execute", before)
        sqlalchemy.event.listen(eng, "after_cursor_execute", after)
        self._undo.append((eng, None, (before, after)))

    def restore(self) -> None:
        for owner, name, orig in reversed(self._undo):
            if name is None:
                sqlalchemy.event.remove(owner, "before_cursor_execute", orig[0])
                sqlalchemy.event.remove(owner, "after_cursor_execute", orig[1])
            else:
                setattr(owner, name, orig)
        self._undo.clear()

    def report(self) -> dict:
        out = {}
        for root, n in self.roots.items():
            labels = sorted(((k[1], v) for k, v in self.by_label.items() if k[0] == root), key=lambda kv: -kv[1])
            groups = sorted(((k[1], v) for k, v in self.by_group.items() if k[0] == root), key=lambda kv: -kv[1])
            out[root] = {
                "calls": n,
                "ms_per_call": round(sum(v for _, v in labels) * 1000 / n, 3),
                "groups_ms_per_call": {g: round(v * 1000 / n, 3) for g, v in groups},
                "labels_ms_per_call": {lab: round(v * 1000 / n, 3) for lab, v in labels},
                "label_calls_per_call": {lab: round(self.calls[(root, lab)] / n, 2) for lab, _ in labels},
            }
        return out


def _sql_label(_self, stmt, *a, **kw) -> str:
    """Cheap on purpose (stmt.get_final_froms() costs ~0.8 ms on an ORM select and would skew the numbers)."""
    verb = type(stmt).__name__.upper()
    table = getattr(getattr(stmt, "table", None), "name", None)
    if table is None:
        cols = getattr(stmt, "_raw_columns", None) or [None]
        table = getattr(getattr(cols[0], "table", cols[0]), "name", "?")
    return f"SQL {verb} {table}"


def _commit_label(self, *a, **kw) -> str:
    return "RELEASE SAVEPOINT" if self.nested else "COMMIT"


def install_timers(pt: PhaseTimer, target: Target) -> None:
    txn = "txn overhead (session, pool checkout, BEGIN, autoflush, savepoints)"

    def sql_group(_self, stmt, *a, **kw) -> str | None:
        table = getattr(getattr(stmt, "table", None), "name", None)
        if table == "instance_event":
            return "event INSERT"
        if table == "instance":
            return "instance INSERT/UPDATE + _save"
        labels = [f[0] for f in pt.stack]
        if "sweep(): own python" in labels and not any(lab.startswith("step body") for lab in labels):
            return "sweep: SELECT due ids"
        return None

    pt.wrap(Runtime, "start", "start(): own python")
    pt.wrap(Runtime, "complete", "complete(): own python")
    pt.wrap(Runtime, "sweep", "sweep(): own python")
    pt.wrap_cm(Database, "read", "read session (open/rollback/close)", "preflight read txn")
    pt.wrap_cm(Database, "write", "write session (open/close)", txn)
    pt.wrap(Runtime, "validate_task_data", "validate form (jsonschema)", "form validation")
    pt.wrap(Runtime, "resolve_version", "resolve_version (python)", "resolve version (start)")
    pt.wrap(Runtime, "_step_in", "step body: act, task.run, Step (python)", "act (task.run) + step python")
    pt.wrap(Runtime, "_advance", "engine steps (_advance)", "engine steps (_advance)")
    pt.wrap(Runtime, "_prepare", "_prepare (python: state, work items, events)", "prepare writes")
    pt.wrap(Runtime, "_write", "_write (batched statements)", "instance UPDATE + work items + events")
    pt.wrap(Runtime, "_work_item_row", "work-item row (assigner+SLA)")
    pt.wrap(rt_mod, "load_state", "deserialize (load_state)", "deserialize")
    pt.wrap(rt_mod, "dump_state", "serialize (dump_state)", "serialize (+next_timer_at)")
    pt.wrap(rt_mod, "next_timer_at", "next_timer_at", "serialize (+next_timer_at)")
    pt.wrap(rt_mod, "_jsonable", "_jsonable (data snapshots)", reentrant=False)
    pt.wrap(rt_mod, "BpmnWorkflow", "new BpmnWorkflow (start)", "act (task.run) + step python")
    pt.wrap(sandbox, "evaluate", "sandbox.evaluate (unit expr)")
    pt.wrap(Session, "_execute_internal", _sql_label, sql_group)
    pt.wrap(Session, "get", lambda _s, entity, *a, **kw: f"ORM Session.get({entity.__name__})",
            lambda _s, entity, *a, **kw: "load row (SELECT instance)" if entity is Instance else "resolve version (start)")
    pt.wrap(Session, "flush", "ORM autoflush/flush",
            lambda self, *a, **kw: "instance INSERT/UPDATE + _save" if any(isinstance(o, Instance) for o in self.new)
            else None)
    pt.wrap(Session, "begin_nested", "SAVEPOINT", txn)
    pt.wrap(SessionTransaction, "_connection_for_bind", "connection checkout + BEGIN", txn)
    pt.wrap(SessionTransaction, "commit", _commit_label, lambda self, *a, **kw: txn if self.nested else "commit")
    pt.listen(target.db.engine)


LAYERS = (
    ("SQLAlchemy (statements, sessions, pool, ORM)",
     ("SQL ", "ORM ", "connection checkout", "read session", "write session", "SAVEPOINT", "RELEASE")),
    ("DB round trips (driver + server)", ("DB round trip",)),
    ("COMMIT (driver + server)", ("COMMIT",)),
    ("SpiffWorkflow (deserialize, engine steps, serialize)",
     ("deserialize", "serialize", "engine steps", "next_timer_at", "new BpmnWorkflow")),
)


def layers(labels: dict[str, float]) -> dict[str, float]:
    """Labels folded into layers; the rest is Gridflow's own python (which includes building SQL statements)."""
    out = {name: 0.0 for name, _ in LAYERS}
    out["Gridflow python (incl. building SQL statements)"] = 0.0
    for lab, v in labels.items():
        name = next((n for n, prefixes in LAYERS if lab.startswith(prefixes)),
                    "Gridflow python (incl. building SQL statements)")
        out[name] += v
    return {k: round(v, 3) for k, v in out.items()}


def gridflow_breakdown(target: Target, rt: Runtime, n: int) -> dict:
    """Run n instances with timers around each part of a step: exclusive ms per call, by phase and by label."""
    pt = PhaseTimer()
    install_timers(pt, target)
    try:
        for i in range(n):
            gridflow_instance(rt, i)
    finally:
        pt.restore()
    rep = pt.report()
    for r in rep.values():
        r["layers_ms_per_call"] = layers(r["labels_ms_per_call"])
    return rep


def thin_breakdown(thin: Thin, n: int) -> dict:
    """ms per call by phase for the thin loop's start and complete (from inline timers)."""
    thin.phases = {}
    totals = {"start": 0.0, "complete": 0.0}

    def timed(op: str):
        orig = getattr(thin, op)

        def call(*a):
            t = perf()
            try:
                return orig(*a)
            finally:
                totals[op] += perf() - t
        return call

    thin.start, thin.complete = timed("start"), timed("complete")
    try:
        for i in range(n):
            thin_instance(thin, i)
    finally:
        phases, thin.phases = thin.phases, None
        del thin.start, thin.complete
    out = {}
    for op, calls in (("start", n), ("complete", 4 * n)):
        rows = sorted(((k[1], v) for k, v in phases.items() if k[0] == op), key=lambda kv: -kv[1])
        other = totals[op] - sum(v for _, v in rows)
        out[op] = {"calls": calls, "ms_per_call": round(totals[op] * 1000 / calls, 3),
                   "groups_ms_per_call": {**{k: round(v * 1000 / calls, 3) for k, v in rows},
                                          "other python": round(other * 1000 / calls, 3)}}
    return out


def cprofile_top(rt: Runtime, n: int, limit: int = 30) -> str:
    prof = cProfile.Profile()
    prof.enable()
    for i in range(n):
        gridflow_instance(rt, i)
    prof.disable()
    buf = io.StringIO()
    st = pstats.Stats(prof, stream=buf)
    st.sort_stats("tottime").print_stats(limit)
    st.sort_stats("cumulative").print_stats(limit)
    return buf.getvalue()


# ---- timers: sweep among 100k waiting instances --------------------------------------------------------------
def _sqlite_ts(d: datetime) -> str:
    return d.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S.%f")


def bulk_fill(target: Target, rt: Runtime, rows: int, fake: clock.FakeClock) -> dict:
    """rows waiting instances (copies of one real instance waiting at t2, timer far in the future) and one
    open work item each, spread over UNITS unit ids with varied due dates."""
    fake.set(T0)
    step = rt.start(PROCESS, {"unit": unit_of(0)})
    step = rt.complete(step.instance_id, step.opened[0]["task_guid"], FORM_DATA)
    with target.db.read() as s:
        tpl = s.get(Instance, step.instance_id)
    rt.cancel(tpl.id, reason="bench template")  # so that only the real due instances fire later
    base = T0 + timedelta(days=7)
    t = perf()
    with target.db.engine.begin() as c:
        lo = (c.scalar(select(func.max(Instance.id))) or 0) + 1
        p = {"pid": tpl.process_id, "vid": tpl.version_id, "state": tpl.state_json, "n": rows,
             "lock": tpl.lock_version, "seq": tpl.event_seq, "units": UNITS}
        if target.dialect == "sqlite":
            p.update(base=_sqlite_ts(base), t0=_sqlite_ts(T0))
            c.execute(text(
                "WITH RECURSIVE g(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM g WHERE x < :n) "
                "INSERT INTO instance (process_id, version_id, status, state_json, next_timer_at, lock_version, "
                "event_seq, created_at, updated_at) "
                "SELECT :pid, :vid, 'running', :state, strftime('%Y-%m-%d %H:%M:%S', :base, '+' || x || ' seconds') "
                "|| '.000000', :lock, :seq, :t0, :t0 FROM g"), p)
            hi = c.scalar(select(func.max(Instance.id)))
            c.execute(text(
                "INSERT INTO work_item (instance_id, task_guid, task_spec, process_id, name, form, unit_id, role, "
                "state, created_at, due_at, props) "
                "SELECT id, 'bench-' || id, 't2', process_id, 'Task two', 'small.json', printf('unit-%04d', id % :units), "
                "'clerk', 'open', :t0, strftime('%Y-%m-%d %H:%M:%S', :base, '+' || ((id * 7919) % 2592000) || ' seconds') "
                "|| '.000000', '{}' FROM instance WHERE id BETWEEN :lo AND :hi"), {**p, "lo": lo, "hi": hi})
        else:
            p.update(base=base, t0=T0)
            c.execute(text(
                "INSERT INTO instance (process_id, version_id, status, state_json, next_timer_at, lock_version, "
                "event_seq, created_at, updated_at) "
                "SELECT :pid, :vid, 'running', :state, CAST(:base AS timestamptz) + g * interval '1 second', :lock, "
                ":seq, :t0, :t0 FROM generate_series(1, :n) AS g"), p)
            hi = c.scalar(select(func.max(Instance.id)))
            c.execute(text(
                "INSERT INTO work_item (instance_id, task_guid, task_spec, process_id, name, form, unit_id, role, "
                "state, created_at, due_at, props) "
                "SELECT id, 'bench-' || id, 't2', process_id, 'Task two', 'small.json', "
                "'unit-' || lpad((id % :units)::text, 4, '0'), 'clerk', 'open', :t0, "
                "CAST(:base AS timestamptz) + ((id * 7919) % 2592000) * interval '1 second', '{}'::jsonb "
                "FROM instance WHERE id BETWEEN :lo AND :hi"), {**p, "lo": lo, "hi": hi})
    if target.dialect == "postgresql":
        with admin_engine(target.url).connect() as c:  # what autovacuum would do soon after a load like this
            c.execute(text("ANALYZE instance"))
            c.execute(text("ANALYZE work_item"))
    fill_s = perf() - t
    with target.db.read() as s:
        waiting = s.scalar(select(func.count()).select_from(Instance).where(Instance.status == "running",
                                                                            Instance.next_timer_at.is_not(None)))
        open_items = s.scalar(select(func.count()).select_from(WorkItem).where(WorkItem.state == "open"))
    return {"rows": rows, "fill_seconds": round(fill_s, 2), "waiting_instances": waiting,
            "open_work_items": open_items, "state_json_bytes_per_row": len(tpl.state_json)}


def sweep_idle(rt: Runtime, fake: clock.FakeClock, runs: int) -> dict:
    fake.set(T0 + timedelta(minutes=30))
    for _ in range(3):
        assert rt.sweep() == 0
    xs = []
    for _ in range(runs):
        t = perf()
        n = rt.sweep()
        xs.append(perf() - t)
        assert n == 0, n
    return summary(xs)


def sweep_fire(target: Target, rt: Runtime, fake: clock.FakeClock, due: int) -> dict:
    """Start `due` real instances waiting at t2 (reminder due at T0 + 1h), then one sweep fires them all."""
    fake.set(T0)
    t = perf()
    for i in range(due):
        step = rt.start(PROCESS, {"unit": unit_of(i)})
        rt.complete(step.instance_id, step.opened[0]["task_guid"], FORM_DATA)
    prep = perf() - t
    with target.db.read() as s:
        before = s.scalar(select(func.count()).select_from(InstanceEvent).where(InstanceEvent.kind == "timer_fired"))
    fake.set(T0 + timedelta(hours=1, minutes=1))
    gc.collect()
    t = perf()
    fired = rt.sweep()
    took = perf() - t
    with target.db.read() as s:
        after = s.scalar(select(func.count()).select_from(InstanceEvent).where(InstanceEvent.kind == "timer_fired"))
    t = perf()
    again = rt.sweep()
    again_s = perf() - t
    return {"due": due, "fired": fired, "timer_fired_events": after - before, "seconds": round(took, 3),
            "ms_per_instance": round(took * 1000 / max(fired, 1), 3), "prepare_seconds": round(prep, 1),
            "second_sweep_fired": again, "second_sweep_ms": ms(again_s)}


def sweep_breakdown(target: Target, rt: Runtime, fake: clock.FakeClock, due: int) -> dict:
    """The firing sweep again (fewer instances) with the phase timers on: ms per fired instance."""
    fake.set(T0)
    for i in range(due):
        step = rt.start(PROCESS, {"unit": unit_of(i)})
        rt.complete(step.instance_id, step.opened[0]["task_guid"], FORM_DATA)
    fake.set(T0 + timedelta(hours=1, minutes=1))
    pt = PhaseTimer()
    install_timers(pt, target)
    try:
        fired = rt.sweep()
    finally:
        pt.restore()
    rep = pt.report()["sweep(): own python"]
    k = max(fired, 1)
    return {"fired": fired, "ms_per_fired_instance": round(rep["ms_per_call"] / k, 3),
            "groups_ms_per_fired_instance": {g: round(v / k, 3) for g, v in rep["groups_ms_per_call"].items()},
            "labels_ms_per_fired_instance": {g: round(v / k, 3) for g, v in rep["labels_ms_per_call"].items()},
            "label_calls_per_fired_instance": {g: round(v / k, 2) for g, v in rep["label_calls_per_call"].items()}}


# ---- inbox query ------------------------------------------------------------------------------------------
def inbox(target: Target, runs: int) -> dict:
    units = [unit_of(i * 7 + 3) for i in range(runs)]

    def orm(u: str) -> int:  # the way an inbox page reads it: ORM objects in a read session
        with target.db.read() as s:
            return len(s.scalars(select(WorkItem).where(WorkItem.unit_id == u, WorkItem.state == "open")
                                 .order_by(WorkItem.due_at).limit(50)).all())

    sql = text("SELECT id, instance_id, task_guid, task_spec, name, form, role, user_id, due_at, warn_at "
               "FROM work_item WHERE unit_id = :u AND state = 'open' ORDER BY due_at LIMIT 50")

    def core(u: str) -> int:
        with target.db.engine.connect() as c:
            return len(c.execute(sql, {"u": u}).all())

    out = {}
    for name, fn in (("orm_session", orm), ("core_sql", core)):
        for u in units[:20]:
            fn(u)
        xs, counts = [], []
        for u in units:
            t = perf()
            counts.append(fn(u))
            xs.append(perf() - t)
        out[name] = {**summary(xs), "rows_median": statistics.median(counts)}
    with target.db.engine.connect() as c:
        if target.dialect == "sqlite":
            plan = [r[-1] for r in c.exec_driver_sql(
                "EXPLAIN QUERY PLAN SELECT * FROM work_item WHERE unit_id = 'unit-0001' AND state = 'open' "
                "ORDER BY due_at LIMIT 50").all()]
        else:
            plan = [r[0] for r in c.exec_driver_sql(
                "EXPLAIN SELECT * FROM work_item WHERE unit_id = 'unit-0001' AND state = 'open' "
                "ORDER BY due_at LIMIT 50").all()]
    out["plan"] = plan
    return out


# ---- driver ---------------------------------------------------------------------------------------------------
def run_dialect(dialect: str, args, pg_base: str | None) -> dict:
    quick = args.quick
    n, warm = (args.instances or (40 if quick else 200)), (5 if quick else 20)
    print(f"\n=== {dialect} ===", flush=True)
    target = Target(dialect, pg_base)
    fake = clock.install_fake(T0)
    thin = None
    try:
        rt = Runtime(target.db)
        thin = Thin(target)
        res: dict = {"dialect": dialect, "instances": n, "warmup_instances": warm}
        t = perf()
        res["steps"] = measure_steps(rt, thin, n, warm)
        print(f"  steps measured in {perf() - t:.1f}s", flush=True)
        res["sizes"] = state_sizes(target, rt, thin)
        bn = 10 if quick else 40
        res["breakdown"] = {"instances": bn, "gridflow": gridflow_breakdown(target, rt, bn),
                            "thin": thin_breakdown(thin, bn)}
        ratio = res["steps"]["ratio_median"]["c_instance"]
        if args.profile or ratio > TARGETS["c_ratio_max"]:
            res["cprofile"] = cprofile_top(rt, bn)
        t = perf()
        res["bulk"] = bulk_fill(target, rt, args.rows, fake)
        print(f"  bulk fill {args.rows} rows in {res['bulk']['fill_seconds']}s", flush=True)
        res["inbox"] = inbox(target, 100 if quick else 500)
        res["sweep_idle"] = sweep_idle(rt, fake, 10 if quick else 30)
        res["sweep_fire"] = sweep_fire(target, rt, fake, args.due)
        res["sweep_fire"]["breakdown"] = sweep_breakdown(target, rt, fake, 50 if quick else 200)
        print(f"  sweep/inbox done in {perf() - t:.1f}s", flush=True)
        res["targets"] = judge(res)
        return res
    finally:
        clock.set_source(None)
        if thin is not None:
            thin.close()
        target.close()


def judge(res: dict) -> list[dict]:
    steps = res["steps"]
    out = [
        {"target": f"c whole instance within {TARGETS['c_ratio_max']}x of thin",
         "value": steps["ratio_median"]["c_instance"], "ok": steps["ratio_median"]["c_instance"] <= TARGETS["c_ratio_max"]},
        {"target": f"sweep, 0 due of {res['bulk']['waiting_instances']} waiting, median < {TARGETS['sweep_idle_ms']} ms",
         "value": res["sweep_idle"]["median_ms"], "ok": res["sweep_idle"]["median_ms"] < TARGETS["sweep_idle_ms"]},
        {"target": f"sweep firing {res['sweep_fire']['due']} due < {TARGETS['sweep_fire_s']} s",
         "value": res["sweep_fire"]["seconds"],
         "ok": res["sweep_fire"]["seconds"] < TARGETS["sweep_fire_s"] and res["sweep_fire"]["fired"] == res["sweep_fire"]["due"]},
        {"target": f"inbox query (ORM, one unit of {UNITS}) median < {TARGETS['inbox_ms']} ms",
         "value": res["inbox"]["orm_session"]["median_ms"], "ok": res["inbox"]["orm_session"]["median_ms"] < TARGETS["inbox_ms"]},
    ]
    return out


def print_report(res: dict) -> None:
    s = res["steps"]
    print(f"\n--- {res['dialect']}: {res['instances']} instances each (after {res['warmup_instances']} warm-up), ms ---")
    print(f"{'':24}{'gridflow med':>13}{'p95':>9}{'thin med':>11}{'p95':>9}{'ratio':>8}")
    for key, label in (("a_start", "a start -> first task"), ("b_complete", "b complete one task"),
                       ("c_instance", "c whole instance")):
        g, t = s["gridflow"][key], s["thin"][key]
        print(f"{label:24}{g['median_ms']:>13.2f}{g['p95_ms']:>9.2f}{t['median_ms']:>11.2f}{t['p95_ms']:>9.2f}"
              f"{s['ratio_median'][key]:>7.2f}x")
    for k in ("t1", "t2", "t3", "t4"):
        g, t = s["gridflow"]["b_by_task"][k], s["thin"]["b_by_task"][k]
        print(f"{'  b ' + k:24}{g['median_ms']:>13.2f}{g['p95_ms']:>9.2f}{t['median_ms']:>11.2f}{t['p95_ms']:>9.2f}"
              f"{g['median_ms'] / t['median_ms']:>7.2f}x")
    z = res["sizes"]
    print(f"state at t2: gridflow {z['gridflow_state_json_bytes']} B (+ spec {z['gridflow_spec_json_bytes_once_per_version']} B "
          f"once per version), thin {z['thin_full_json_bytes']} B")
    b = res["breakdown"]
    g, t = b["gridflow"], b["thin"]
    print(f"where the time goes: exclusive ms per call, {b['instances']} instances with phase timers "
          f"(gridflow start {g['start(): own python']['ms_per_call']:.2f}, complete "
          f"{g['complete(): own python']['ms_per_call']:.2f}; thin start {t['start']['ms_per_call']:.2f}, "
          f"complete {t['complete']['ms_per_call']:.2f})")
    for op, gk in (("start", "start(): own python"), ("complete", "complete(): own python")):
        print(f"  {op}:  gridflow" + " " * 50 + "| thin")
        gl = list(g[gk]["groups_ms_per_call"].items())
        tl = list(t[op]["groups_ms_per_call"].items())
        for i in range(max(len(gl), len(tl))):
            left = f"{gl[i][1]:7.3f}  {gl[i][0]}" if i < len(gl) else ""
            right = f"{tl[i][1]:7.3f}  {tl[i][0]}" if i < len(tl) else ""
            print(f"    {left:62}| {right}")
    for op, gk in (("start", "start(): own python"), ("complete", "complete(): own python")):
        print(f"  {op} by layer: " + ", ".join(f"{k} {v:.2f}" for k, v in g[gk]["layers_ms_per_call"].items()))
    print("  complete, by label (top 14; 'SQL ...' = SQLAlchemy statement work excluding the DB round trip):")
    labels = g["complete(): own python"]["labels_ms_per_call"]
    calls = g["complete(): own python"]["label_calls_per_call"]
    for k in list(labels)[:14]:
        print(f"    {labels[k]:7.3f}  {k}  (x{calls[k]:g})")
    bk, sw, sf, ib = res["bulk"], res["sweep_idle"], res["sweep_fire"], res["inbox"]
    print(f"bulk: {bk['waiting_instances']} waiting instances, {bk['open_work_items']} open work items "
          f"({bk['state_json_bytes_per_row']} B state each), filled in {bk['fill_seconds']} s")
    print(f"sweep, 0 due: median {sw['median_ms']:.2f} ms, p95 {sw['p95_ms']:.2f} ms ({sw['n']} runs)")
    print(f"sweep, {sf['due']} due: fired {sf['fired']} ({sf['timer_fired_events']} timer_fired events) in "
          f"{sf['seconds']:.3f} s = {sf['ms_per_instance']:.2f} ms/instance; next sweep fired {sf['second_sweep_fired']}")
    sb = sf["breakdown"]
    print(f"  firing sweep with phase timers ({sb['fired']} fired): {sb['ms_per_fired_instance']:.3f} ms per instance:")
    for k, v in list(sb["groups_ms_per_fired_instance"].items())[:12]:
        print(f"    {v:7.3f}  {k}")
    for k in ("orm_session", "core_sql"):
        print(f"inbox {k}: median {ib[k]['median_ms']:.3f} ms, p95 {ib[k]['p95_ms']:.3f} ms, "
              f"{ib[k]['rows_median']:g} rows ({ib[k]['n']} queries)")
    print("inbox plan: " + " | ".join(ib["plan"]))
    for tgt in res["targets"]:
        print(f"  {'PASS' if tgt['ok'] else 'MISS'}  {tgt['target']}: {tgt['value']}")
    if "cprofile" in res:
        print("\ncProfile (gridflow instances):")
        print(res["cprofile"])


def environment() -> dict:
    try:
        load = os.getloadavg()
    except OSError:
        load = None
    return {"python": sys.version.split()[0], "platform": platform.platform(), "cpus": os.cpu_count(),
            "loadavg_at_start": load, "SpiffWorkflow": SpiffWorkflow.__version__ if hasattr(SpiffWorkflow, "__version__")
            else _dist_version("SpiffWorkflow"), "SQLAlchemy": sqlalchemy.__version__,
            "psycopg": psycopg.__version__, "sqlite": sqlite3.sqlite_version}


def _dist_version(name: str) -> str | None:
    from importlib.metadata import PackageNotFoundError, version
    try:
        return version(name)
    except PackageNotFoundError:
        return None


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m bench.engine_bench", description=__doc__.split("\n\n")[0])
    ap.add_argument("--quick", action="store_true", help="fewer iterations (40 instances instead of 200)")
    ap.add_argument("--pg", default=os.environ.get("GRIDFLOW_BENCH_PG_URL", PG_DEFAULT),
                    help="PostgreSQL server URL; a scratch database gridflow_bench_<pid> is created and dropped")
    ap.add_argument("--dialects", default="sqlite,postgresql", help="comma-separated: sqlite,postgresql")
    ap.add_argument("--instances", type=int, default=None, help="override the number of measured instances")
    ap.add_argument("--rows", type=int, default=100_000, help="waiting instances / open work items for sweep+inbox")
    ap.add_argument("--due", type=int, default=1000, help="real instances made due for the firing sweep")
    ap.add_argument("--profile", action="store_true", help="always add a cProfile of Gridflow instances")
    ap.add_argument("--no-save", action="store_true", help="do not write bench/results/*.json")
    args = ap.parse_args(argv)
    env = environment()
    print(f"engine bench: {env}", flush=True)
    all_ok = True
    for dialect in [d.strip() for d in args.dialects.split(",") if d.strip()]:
        if dialect not in ("sqlite", "postgresql"):
            ap.error(f"unknown dialect {dialect}")
        res = run_dialect(dialect, args, args.pg if dialect == "postgresql" else None)
        res["environment"] = env
        res["date"] = datetime.now(UTC).isoformat(timespec="seconds")
        res["quick"] = args.quick
        res["targets_def"] = TARGETS
        print_report(res)
        all_ok &= all(t["ok"] for t in res["targets"])
        if not args.no_save:
            RESULTS.mkdir(exist_ok=True)
            path = RESULTS / f"engine-{dialect}-{datetime.now(UTC).date().isoformat()}.json"
            path.write_text(json.dumps(res, indent=2, ensure_ascii=False) + "\n")
            print(f"wrote {path.relative_to(HERE.parent)}")
    return 0 if all_ok else 1


if __name__ == "__main__":
    sys.exit(main())
