"""Two people complete the same task at the same moment: exactly one wins, on both databases."""
from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor

import pytest
from sqlalchemy import func, select, update

from engine.errors import Conflict
from engine.models import Instance, InstanceEvent, WorkItem
from engine.runtime import Runtime
from tests.engine_helpers import deploy_fixture, open_items


def _race(rt: Runtime, iid: int, guid: str, n: int) -> list[str]:
    start = threading.Barrier(n)

    def attempt(i: int) -> str:
        start.wait(10)
        try:
            rt.complete(iid, guid, {"note": f"by {i}"}, actor=f"user{i}")
            return "ok"
        except Conflict as e:
            return f"conflict: {e}"

    with ThreadPoolExecutor(n) as pool:
        return list(pool.map(attempt, range(n)))


def _assert_one_effect(db, iid: int, guid: str) -> None:
    with db.read() as s:
        assert s.scalar(select(func.count()).select_from(InstanceEvent).where(
            InstanceEvent.instance_id == iid, InstanceEvent.kind == "task_completed")) == 1
        assert s.get(Instance, iid).lock_version == 2
        assert s.scalar(select(WorkItem.state).where(WorkItem.task_guid == guid)) == "completed"
    assert [w.task_spec for w in open_items(db, iid)] == ["t2"]


def test_concurrent_completions_one_wins(db):
    deploy_fixture(db)
    rt = Runtime(db)
    iid = rt.start("four_tasks", {"unit": "U"}).instance_id
    (wi,) = open_items(db, iid)
    results = _race(rt, iid, wi.task_guid, 6)
    assert results.count("ok") == 1, results
    assert all(r.startswith("conflict") for r in results if r != "ok")
    _assert_one_effect(db, iid, wi.task_guid)


class _Interleaved(Runtime):
    """Both writers load the same lock_version before either saves: the optimistic lock must decide."""

    def __init__(self, db, barrier):
        super().__init__(db)
        self.barrier = barrier

    def _advance(self, wf, step):
        if step.completed_guids:
            self.barrier.wait(10)
        return super()._advance(wf, step)


def test_optimistic_lock_under_true_interleaving(pg_db):
    db = pg_db
    deploy_fixture(db)
    barrier = threading.Barrier(2)
    rt = _Interleaved(db, barrier)
    iid = rt.start("four_tasks", {"unit": "U"}).instance_id
    (wi,) = open_items(db, iid)

    def attempt(i):
        try:
            rt.complete(iid, wi.task_guid, {"note": str(i)}, actor=f"u{i}")
            return "ok"
        except Conflict as e:
            return str(e)

    with ThreadPoolExecutor(2) as pool:
        results = list(pool.map(attempt, range(2)))
    assert results.count("ok") == 1, results
    assert any("at the same time" in r for r in results), "the lock_version check caught it"
    _assert_one_effect(db, iid, wi.task_guid)


class _SomeoneWritesFirst(Runtime):
    """Between loading and saving, another writer commits a change to the same row (simulated in the
    same transaction, so it also works under SQLite's BEGIN IMMEDIATE)."""

    def _advance(self, wf, step):
        if step.completed_guids:
            self._session.execute(update(Instance).where(Instance.id == step.instance_id)
                                  .values(lock_version=Instance.lock_version + 1))
        return super()._advance(wf, step)

    def _step_in(self, s, *a, **kw):
        self._session = s
        return super()._step_in(s, *a, **kw)


def test_lock_version_predicate_rejects_a_stale_write(db):
    deploy_fixture(db)
    rt = _SomeoneWritesFirst(db)
    iid = rt.start("four_tasks", {"unit": "U"}).instance_id
    (wi,) = open_items(db, iid)
    with pytest.raises(Conflict, match="at the same time"):
        rt.complete(iid, wi.task_guid, {"note": "x"}, actor="late")
    with db.read() as s:
        assert s.get(Instance, iid).lock_version == 1, "rolled back: nothing changed"
        assert s.scalar(select(WorkItem.state).where(WorkItem.task_guid == wi.task_guid)) == "open"
        assert s.scalar(select(func.count()).select_from(InstanceEvent).where(
            InstanceEvent.instance_id == iid, InstanceEvent.kind == "task_completed")) == 0
