"""Timers: the sweep with a fake clock, cycles, catch-up after downtime, exactly-once across processes."""
from __future__ import annotations

import multiprocessing as mp
import threading
from collections import Counter
from datetime import timedelta

import pytest
from sqlalchemy import func, select

from engine import clock
from engine.models import Instance, InstanceEvent
from engine.runtime import Runtime
from engine.scheduler import start_scheduler
from tests.engine_helpers import deploy_fixture, open_items, sweep_worker


@pytest.fixture
def rt(db, fake_clock):
    deploy_fixture(db)
    deploy_fixture(db, "engine_features.bpmn")
    return Runtime(db)


def events(db, iid, kind):
    with db.read() as s:
        return list(s.scalars(select(InstanceEvent).where(InstanceEvent.instance_id == iid,
                                                          InstanceEvent.kind == kind).order_by(InstanceEvent.seq)))


def test_sweep_fires_due_timer_with_fake_clock(rt, db, fake_clock):
    iid = rt.start("four_tasks", {"unit": "U"}).instance_id
    (wi,) = open_items(db, iid)
    rt.complete(iid, wi.task_guid, {"note": "x"})
    (t2,) = open_items(db, iid)
    due = fake_clock.current + timedelta(hours=1)
    assert t2.warn_at == due
    with db.read() as s:
        assert s.get(Instance, iid).next_timer_at == due
    fake_clock.advance(timedelta(minutes=59))
    assert rt.sweep() == 0 and events(db, iid, "timer_fired") == []
    fake_clock.advance(timedelta(minutes=2))
    assert rt.sweep() == 1
    (fired,) = events(db, iid, "timer_fired")
    assert fired.task == "t2_remind" and fired.data["due"] == due.isoformat()
    assert [e.data for e in events(db, iid, "reminder")] == [{"unit": "U"}]
    with db.read() as s:
        assert s.get(Instance, iid).next_timer_at is None
    assert rt.sweep() == 0, "a fired timer does not fire again"
    assert [w.task_guid for w in open_items(db, iid)] == [t2.task_guid], "non-interrupting: task stays"


def test_cycle_timer_fires_each_cycle(rt, db, fake_clock):
    iid = rt.start("cycle_nag").instance_id
    for n in (1, 2, 3):
        fake_clock.advance(timedelta(hours=1, minutes=1))
        rt.sweep()
        assert len(events(db, iid, "nag")) == n
    fake_clock.advance(timedelta(hours=5))
    rt.sweep()
    assert len(events(db, iid, "nag")) == 3
    with db.read() as s:
        assert s.get(Instance, iid).next_timer_at is None


def test_timestamps_utc_and_shanghai_display(rt, db, fake_clock):
    iid = rt.start("parent_with_call").instance_id
    (wi,) = open_items(db, iid)
    assert wi.due_at.tzinfo is not None and wi.due_at.utcoffset() == timedelta(0)
    assert clock.local(wi.due_at).isoformat() == "2030-01-01T09:00:00+08:00"


def test_catch_up_after_downtime_on_startup(rt, db, fake_clock):
    ids = [rt.start("child_timer").instance_id for _ in range(3)]
    # the server is "down" for two days: nobody sweeps
    fake_clock.advance(timedelta(days=2))
    done = threading.Event()
    original = rt.sweep

    def sweep_and_signal(*a, **kw):
        n = original(*a, **kw)
        done.set()
        return n

    rt.sweep = sweep_and_signal
    sched = start_scheduler(rt, seconds=3600)  # the interval is irrelevant: the first run is at start
    try:
        assert done.wait(20), "the start-up sweep ran"
    finally:
        sched.shutdown(wait=True)
    for iid in ids:
        assert len(events(db, iid, "timer_fired")) == 1


def test_exactly_once_across_three_processes(pg_db, fake_clock):
    """SKIP LOCKED is PostgreSQL's; on SQLite one scheduler runs and the optimistic lock guards."""
    db = pg_db
    deploy_fixture(db, "engine_features.bpmn")
    rt = Runtime(db)
    n = 520
    for _ in range(n):
        rt.start("child_timer")
    now = fake_clock.current + timedelta(days=1, minutes=1)
    ctx = mp.get_context("spawn")
    barrier, out = ctx.Barrier(3), ctx.Queue()
    procs = [ctx.Process(target=sweep_worker, args=(db.url_with_password, now.isoformat(), barrier, out))
             for _ in range(3)]
    for p in procs:
        p.start()
    counts = [out.get(timeout=120) for _ in procs]
    for p in procs:
        p.join(30)
    assert sum(counts) == n
    assert sum(1 for c in counts if c > 0) >= 2, f"the work was shared: {counts}"
    with db.read() as s:
        per = Counter(s.scalars(select(InstanceEvent.instance_id).where(InstanceEvent.kind == "timer_fired")))
        assert len(per) == n and set(per.values()) == {1}, "each timer fired exactly once"
        assert s.scalar(select(func.count()).select_from(Instance).where(Instance.next_timer_at <= now)) == 0


def test_sweep_is_batched_and_bounded(rt, db, fake_clock):
    for _ in range(7):
        rt.start("child_timer")
    fake_clock.advance(timedelta(days=2))
    assert rt.sweep(batch=3) == 7
    assert rt.sweep(batch=3) == 0


def test_unloadable_instance_does_not_block_the_sweep(rt, db, fake_clock):
    ids = [rt.start("child_timer").instance_id for _ in range(4)]
    with db.write() as s:
        s.execute(Instance.__table__.update().where(Instance.id == ids[1]).values(state_json='{"format": "old"}'))
    fake_clock.advance(timedelta(days=2))
    assert rt.sweep() == 3
    with db.read() as s:
        broken = s.get(Instance, ids[1])
        assert broken.status == "failed" and "format" in broken.error_message
    for iid in (ids[0], ids[2], ids[3]):
        assert len(events(db, iid, "timer_fired")) == 1
    assert [e.kind for e in events(db, ids[1], "error")] == ["error"]
    assert rt.sweep() == 0, "the broken instance is an incident now, not a due timer"
