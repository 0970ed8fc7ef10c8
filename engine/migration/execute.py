"""Executing a migration: a run with one pending record per instance, worked off in batches.

Each instance is planned again when its batch comes up, then saved the runtime's way: one
conditional `UPDATE ... WHERE lock_version = old`, the work items kept (same id and guid) or
opened, and a `version_changed` audit event, in a savepoint per instance. A conflict skips the
instance; an error rolls its savepoint back, leaving it exactly as it was.
"""
from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import TYPE_CHECKING

from sqlalchemy import bindparam, insert, select, update
from sqlalchemy.orm import Session

from .. import audit_chain, clock
from ..errors import Conflict, NotFound
from ..models import Instance, InstanceEvent, ProcessVersion, WorkItem
from ..runtime import Runtime
from ..step import Step
from ..timers import sla_times
from ..version_models import MigrationRecord, MigrationRun, VersionEvent
from .labels import failure, msg, store, vlabel
from .plan import Plan, plan
from .runs import get_run, records
from .selection import Selection, find_version, load_open, select_ids
from .snapshot import pack, row_values

if TYPE_CHECKING:
    from .migrator import Migrator

ASSIGNMENT_KEYS = ("unit", "user", "role", "roleExpression")  # a change to these re-runs the assigner

_I, _E, _R = Instance.__table__, InstanceEvent.__table__, MigrationRecord.__table__
# prebuilt Core statements for the hot path of a large migration (one per moved instance)
UPD_INSTANCE = _I.update().where(
    _I.c.id == bindparam("p_id"), _I.c.lock_version == bindparam("p_lock"), _I.c.status == "running",
    _I.c.version_id == bindparam("p_from")).values(
    state_json=bindparam("p_state"), version_id=bindparam("p_to"), next_timer_at=bindparam("p_next"),
    lock_version=bindparam("p_new_lock"), event_seq=bindparam("p_seq"), updated_at=bindparam("p_now"))
INS_EVENT = _E.insert()
SETTLE_RECORD = _R.update().where(_R.c.id == bindparam("p_id"), _R.c.outcome == "pending").values(
    outcome=bindparam("p_outcome"), reasons=bindparam("p_reasons"), notes=bindparam("p_notes"),
    from_version_id=bindparam("p_from"), at=bindparam("p_now"))
MIGRATED_RECORD = _R.update().where(_R.c.id == bindparam("p_id"), _R.c.outcome == "pending").values(
    outcome="migrated", reasons=[], notes=bindparam("p_notes"), from_version_id=bindparam("p_from"),
    to_version_id=bindparam("p_to"), lock_before=bindparam("p_lock"), lock_after=bindparam("p_new_lock"),
    state_before=bindparam("p_state"), next_timer_before=bindparam("p_next"),
    work_items_before=bindparam("p_items"), at=bindparam("p_now"))


def start(m: Migrator, sel: Selection, to_number: int, actor: str | None = None) -> int:
    """Create an execution run with one pending record per selected instance; `step` works it off."""
    now = clock.now()
    with m.db.write() as s:
        to = find_version(s, sel.process_id, to_number)
        if to.state == "retired":
            raise Conflict(f"{vlabel(to)} is retired and cannot take instances")
        ids = select_ids(s, sel, to)
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


def step(m: Migrator, run_id: int, limit: int = 50) -> MigrationRun:
    """Migrate the next `limit` pending instances of a run; returns the run with its counters."""
    with m.db.read() as s:
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
        insts, rows = load_open(s, ids)
        plans = [(r, plan(m, s, insts[r.instance_id], to, rows[r.instance_id])) for r in recs]
        actor = run.actor
    if m.before_save:
        m.before_save([p for _r, p in plans])
    now = clock.now()
    counts = {"migrated": 0, "blocked": 0, "skipped": 0, "failed": 0}
    rt_ = MigrationRun.__table__
    with m.db.write() as s:
        for rec, p in plans:
            outcome, reasons = "blocked", p.reasons
            if p.ok:
                try:
                    with s.begin_nested():
                        save(m.rt, s, p, to, run_id, rec.id, actor, now)
                    counts["migrated"] += 1
                    continue
                except Conflict as e:
                    outcome, reasons = "skipped", [failure(e, "save_failed")]
                except Exception as e:  # noqa: BLE001 - the savepoint rolled back: the instance is untouched
                    outcome, reasons = "failed", [failure(e, "save_failed")]
            elif p.error:
                outcome = "failed"
            res = s.connection().execute(SETTLE_RECORD, {
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


def execute(m: Migrator, sel: Selection, to_number: int, actor: str | None = None, batch: int = 50,
            progress: Callable[[int, int, str], None] | None = None) -> MigrationRun:
    """Start a run and work it off in batches (the CLI; the web page calls `step` per request)."""
    run_id = start(m, sel, to_number, actor)
    run = get_run(m.db, run_id)
    if progress:
        progress(0, run.total, "")
    while run.status != "done":
        run = step(m, run_id, batch)
        if progress:
            progress(run.done, run.total, f"moved {run.migrated}, blocked {run.blocked}, skipped {run.skipped}")
    return run


def start_from_dry_run(m: Migrator, dry_run_id: int, actor: str | None = None) -> int:
    """Execute what a dry run found movable (each instance is checked again when it is moved)."""
    dry = get_run(m.db, dry_run_id)
    if not dry.dry_run:
        raise Conflict(f"run {dry_run_id} is not a dry run")
    ids = [r.instance_id for r in records(m.db, dry_run_id, "can_move")]
    with m.db.read() as s:
        to = s.get(ProcessVersion, dry.to_version_id)
    sel = Selection(dry.process_id, instance_ids=ids, label=(dry.selection or {}).get("scope"))
    return start(m, sel, to.number, actor)


def save(rt: Runtime, s: Session, p: Plan, to: ProcessVersion, run_id: int, rec_id: int, actor: str | None,
         now: datetime) -> None:
    """Save one moved instance in the caller's savepoint: the conditional UPDATE, its work items,
    a `version_changed` event and the record (settled as migrated); Conflict if anyone got there first."""
    new_lock = p.lock_version + 1
    conn = s.connection()
    res = conn.execute(UPD_INSTANCE, {
        "p_id": p.instance_id, "p_lock": p.lock_version, "p_from": p.from_version_id, "p_state": p.state_json,
        "p_to": to.id, "p_next": p.next_timer, "p_new_lock": new_lock, "p_seq": p.event_seq + 1, "p_now": now})
    if res.rowcount != 1:
        raise Conflict(msg("worked_meanwhile"))
    frm = s.get(ProcessVersion, p.from_version_id)
    step = Step(actor=actor, instance_id=p.instance_id, process_id=p.process_id, version_id=to.id,
                business_key=p.business_key, status="running", lock_version=new_lock)
    step.record("version_changed", data={"from_version_id": frm.id, "to_version_id": to.id,
                                         "from": frm.number, "to": to.number, "run_id": run_id,
                                         "notes": store(p.notes)})
    _sync_work_items(rt, s, p, step, now)
    ev = step.events[0]
    audit_chain.insert_events(conn, [{"instance_id": p.instance_id, "seq": p.event_seq + 1, "at": now,
                                      "actor": ev["actor"], "kind": ev["kind"], "task": None, "data": ev["data"]}])
    res = conn.execute(MIGRATED_RECORD, {
        "p_id": rec_id, "p_notes": p.notes, "p_from": p.from_version_id, "p_to": to.id, "p_lock": p.lock_version,
        "p_new_lock": new_lock, "p_state": pack(p.state_before), "p_next": p.next_timer_before,
        "p_items": p.work_items_before, "p_now": now})
    if res.rowcount != 1:
        raise Conflict(msg("settled_elsewhere"))
    for fn in rt.listeners:
        fn(s, step)


def _sync_work_items(rt: Runtime, s: Session, p: Plan, step: Step, now: datetime) -> None:
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
            row = rt.work_item_row(s, step, task, now)
            values.update(unit_id=row["unit_id"], role=row["role"], user_id=row["user_id"])
        cur = row_values(d)
        changed = {k: v for k, v in values.items() if cur.get(k) != v}
        if changed:
            s.execute(update(WorkItem).where(WorkItem.id == d["id"]).values(**changed)
                      .execution_options(synchronize_session=False))
    rows = [rt.work_item_row(s, step, t, now) for g, t in p.ready.items() if g not in before]
    if rows:
        s.execute(insert(WorkItem), rows)
    step.opened = rows
