"""Reverting a migration: one instance back exactly as it was before its last move."""
from __future__ import annotations

from sqlalchemy import select, update

from .. import audit_chain, clock
from ..errors import Conflict, NotFound
from ..models import Instance, ProcessVersion, WorkItem
from ..runtime import Runtime
from ..step import Step
from ..version_models import MigrationRecord, VersionEvent
from .snapshot import row_values, unpack


def revert(rt: Runtime, instance_id: int, actor: str | None = None) -> MigrationRecord:
    """Put a migrated instance back exactly as it was before its last migration.

    Refused once the instance has moved on (any step since the migration), because reverting
    would throw that work away."""
    now = clock.now()
    with rt.db.write() as s:
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
            state_json=unpack(rec.state_before), version_id=rec.from_version_id, next_timer_at=rec.next_timer_before,
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
            s.execute(update(WorkItem).where(WorkItem.id == wid).values(**row_values(d))
                      .execution_options(synchronize_session=False))
        data = {"from_version_id": to.id, "to_version_id": frm.id, "from": to.number, "to": frm.number,
                "run_id": rec.run_id}
        step.record("version_reverted", data=data)
        audit_chain.insert_events(s.connection(), [{"instance_id": instance_id, "seq": inst.event_seq + 1,
                                                    "at": now, "actor": actor, "kind": "version_reverted",
                                                    "task": None, "data": data}])
        rec.outcome, rec.reverted_at, rec.reverted_by = "reverted", now, actor
        s.add(VersionEvent(at=now, actor=actor, action="revert", process_id=inst.process_id,
                           version_id=frm.id, data={"instance_id": instance_id, **data}))
        for fn in rt.listeners:
            fn(s, step)
        s.flush()
        s.expunge(rec)
        return rec
