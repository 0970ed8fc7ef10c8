"""The SQL of the step: statements built once, and the batched write of prepared steps.

SQLAlchemy reuses the compiled form of statements built once (building ORM statements per step
cost more than the database round trips themselves), and a batch of steps (a timer sweep) goes
out as one executemany per kind.
"""
from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

from sqlalchemy import bindparam, select
from sqlalchemy.orm import Session

from . import audit_chain, clock
from .db import UTCDateTime
from .errors import Conflict, NotFound
from .models import Instance, InstanceEvent, WorkItem
from .step import Listener, Step, jsonable

_I = Instance.__table__
_W = WorkItem.__table__
_E = InstanceEvent.__table__

SEL_INSTANCE = select(_I.c.id, _I.c.process_id, _I.c.version_id, _I.c.business_key, _I.c.status,
                      _I.c.state_json, _I.c.lock_version, _I.c.event_seq).where(_I.c.id == bindparam("p_id"))

INS_INSTANCE = _I.insert().returning(_I.c.id)
UPD_INSTANCE = _I.update().where(_I.c.id == bindparam("p_id"), _I.c.lock_version == bindparam("p_lock")).values(
    state_json=bindparam("p_state"), status=bindparam("p_status"),
    next_timer_at=bindparam("p_next", type_=UTCDateTime()), lock_version=bindparam("p_new_lock"),
    updated_at=bindparam("p_now", type_=UTCDateTime()), event_seq=bindparam("p_seq"),
    error_task=bindparam("p_err_task"), error_message=bindparam("p_err_msg"))
CLOSE_ITEM = _W.update().where(_W.c.task_guid == bindparam("p_guid")).values(
    state=bindparam("p_state"), closed_at=bindparam("p_now", type_=UTCDateTime()), closed_by=bindparam("p_by"))
INS_ITEMS = _W.insert()
INS_EVENTS = _E.insert()
_INSTANCE_COLS = (_I.c.id, _I.c.process_id, _I.c.version_id, _I.c.business_key, _I.c.status, _I.c.state_json,
                  _I.c.lock_version, _I.c.event_seq)
SEL_DUE = (select(*_INSTANCE_COLS)
           .where(_I.c.status == "running", _I.c.next_timer_at <= bindparam("p_now", type_=UTCDateTime()))
           .order_by(_I.c.next_timer_at).limit(bindparam("p_limit")))


@dataclass
class Write:
    """One prepared step: what `write` will send to the database."""

    step: Step
    update: dict | None = None
    closes: list[dict] = field(default_factory=list)
    items: list[dict] = field(default_factory=list)
    events: list[dict] = field(default_factory=list)


def write(s: Session, writes: list[Write], listeners: Iterable[Listener]) -> None:
    """Write the prepared steps with one statement per kind (executemany), then run listeners."""
    conn = s.connection()
    updates = [w.update for w in writes if w.update is not None]
    if updates:
        res = conn.execute(UPD_INSTANCE, updates)
        if res.rowcount != len(updates):
            raise Conflict("someone else changed this at the same time; reload and try again")
    closes = [c for w in writes for c in w.closes]
    if closes:
        conn.execute(CLOSE_ITEM, closes)
    items = [r for w in writes for r in w.items]
    if items:
        conn.execute(INS_ITEMS, items)
    events = [e for w in writes for e in w.events]
    if events:  # each with its chain hash (engine.audit_chain): the prev hash read in this transaction
        conn.execute(INS_EVENTS, audit_chain.seal_events(conn, events))
    for w in writes:
        for fn in listeners:
            fn(s, w.step)


def annotate(s: Session, instance_id: int, kind: str, data: dict, actor: str | None) -> None:
    """Append one audit event outside a step, bumping lock_version (see `Runtime.annotate`)."""
    conn = s.connection()
    row = conn.execute(SEL_INSTANCE, {"p_id": instance_id}).first()
    if row is None:
        raise NotFound(f"instance {instance_id} does not exist")
    res = conn.execute(_I.update().where(_I.c.id == instance_id, _I.c.lock_version == row.lock_version)
                       .values(lock_version=row.lock_version + 1, event_seq=row.event_seq + 1))
    if res.rowcount != 1:
        raise Conflict("someone else changed this at the same time; reload and try again")
    audit_chain.insert_events(conn, [{"instance_id": instance_id, "seq": row.event_seq + 1, "at": clock.now(),
                                      "actor": actor, "kind": kind, "task": None, "data": jsonable(data)}])


def mark_broken(s: Session, instance_id: int, e: Exception) -> None:
    """Turn an instance whose due timers cannot even be fired into an incident (status failed)."""
    msg = f"{type(e).__name__}: {e}"[:2000]
    conn = s.connection()
    seq = conn.execute(select(_I.c.event_seq).where(_I.c.id == instance_id)).scalar_one() + 1
    conn.execute(_I.update().where(_I.c.id == instance_id).values(
        status="failed", error_message=msg, event_seq=seq, lock_version=_I.c.lock_version + 1))
    audit_chain.insert_events(conn, [{"instance_id": instance_id, "seq": seq, "at": clock.now(), "actor": "timer",
                                      "kind": "error", "task": None, "data": {"message": msg}}])
