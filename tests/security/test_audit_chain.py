"""Tamper-evident audit (issue 17 scope 7): instance (case) events and security events are hash
chains; `gridflow audit verify` passes on an untouched database and, after one row is edited,
removed or inserted in the database itself, fails and names it. On SQLite and PostgreSQL."""
from __future__ import annotations

import threading
from datetime import timedelta

import pytest
from click.testing import CliRunner
from sqlalchemy import func, select, text

from engine import clock
from engine.models import InstanceEvent
from engine.runtime import Runtime
from grid.org import audit
from grid.org.models import SecurityEvent
from grid.services import Services
from tests.engine_helpers import deploy_fixture, open_items


@pytest.fixture
def world(db, fake_clock):
    """Two instances with a few steps and an annotation each, and a few security events."""
    deploy_fixture(db)
    rt = Runtime(db)
    ids = []
    for n in range(2):
        iid = rt.start("four_tasks", {"unit": "420602003005", "n": n, "ratio": 0.1, "note": "调解 ✓"}, actor="jiang").instance_id
        for _ in range(2):
            (wi,) = open_items(db, iid)
            rt.complete(iid, wi.task_guid, {"note": "办结 ✓", "amount": 2}, actor="jiang")
            fake_clock.advance(timedelta(minutes=3))
        rt.annotate(iid, "urge", {"comment": "快点"}, actor="boss")
        ids.append(iid)
    svc = Services.build(db=db)
    for i in range(4):
        audit.log(svc, audit.SIGN_IN, actor=f"s{i}", ip="10.0.0.1", detail={"n": i})
    return svc, ids


@pytest.fixture
def verify(db, monkeypatch):
    from web.cli import main

    monkeypatch.setenv("GRIDFLOW_DATABASE_URL", db.url_with_password)
    runner = CliRunner()

    def run():
        r = runner.invoke(main, ["audit", "verify", "--quiet"], catch_exceptions=False)
        return r.exit_code, r.output
    return run


def sql(db, stmt: str, **kw) -> None:
    with db.engine.begin() as c:
        c.execute(text(stmt), kw)


def events(db, iid: int) -> list[InstanceEvent]:
    with db.read() as s:
        return list(s.scalars(select(InstanceEvent).where(InstanceEvent.instance_id == iid)
                              .order_by(InstanceEvent.seq)))


def test_untouched_chains_pass_and_every_row_is_sealed(world, db, verify):
    code, out = verify()
    assert code == 0, out
    assert "every chain is intact" in out
    with db.read() as s:
        assert s.scalar(select(func.count()).where(InstanceEvent.hash.is_(None))) == 0
        seqs = list(s.scalars(select(SecurityEvent.seq).order_by(SecurityEvent.id)))
    assert seqs == [1, 2, 3, 4]


def test_an_edited_instance_event_is_named(world, db, verify):
    svc, (a, b) = world
    victim = events(db, b)[2]
    sql(db, "UPDATE instance_event SET actor = 'mallory' WHERE id = :id", id=victim.id)
    code, out = verify()
    assert code == 1
    assert f"instance {b}: instance_event row id {victim.id} (seq {victim.seq}) changed" in out, out
    assert f"instance {a}:" not in out  # the other chain is intact


def test_an_edited_event_payload_is_named(world, db, verify):
    svc, (a, _b) = world
    victim = events(db, a)[1]
    with db.write() as s:  # through the ORM, as a script with database access would
        s.get(InstanceEvent, victim.id).data = {**victim.data, "comment": "nothing happened"}
    code, out = verify()
    assert code == 1 and f"instance_event row id {victim.id}" in out, out


def test_a_removed_instance_event_is_named(world, db, verify):
    _svc, (a, _b) = world
    rows = events(db, a)
    sql(db, "DELETE FROM instance_event WHERE id = :id", id=rows[2].id)
    code, out = verify()
    assert code == 1
    assert f"instance {a}: instance_event row id {rows[3].id} (seq {rows[3].seq}) removed: row(s) seq " \
           f"{rows[2].seq}..{rows[2].seq} before it are missing" in out, out


def test_a_removed_last_event_and_a_renumbered_chain_are_named(world, db, verify):
    _svc, (a, b) = world
    rows = events(db, a)
    sql(db, "DELETE FROM instance_event WHERE id = :id", id=rows[-1].id)
    brows = events(db, b)  # remove a row in b and close the gap by renumbering the rest
    sql(db, "DELETE FROM instance_event WHERE id = :id", id=brows[1].id)
    for r in brows[2:]:
        sql(db, "UPDATE instance_event SET seq = :s WHERE id = :id", s=r.seq - 1, id=r.id)
    code, out = verify()
    assert code == 1
    assert f"instance {a}: instance_event (seq {rows[-1].seq}) removed" in out, out
    assert f"instance {b}: instance_event row id {brows[2].id}" in out, out


def test_an_inserted_instance_event_is_named(world, db, verify):
    _svc, (a, _b) = world
    rows = events(db, a)
    # shift the tail up by one and slip a forged row into the gap
    for r in reversed(rows[2:]):
        sql(db, "UPDATE instance_event SET seq = :s WHERE id = :id", s=r.seq + 1, id=r.id)
    sql(db, "INSERT INTO instance_event (instance_id, seq, at, actor, kind, task, data, hash) "
            "VALUES (:i, :s, :at, 'mallory', 'resolved', NULL, '{}', :h)",
        i=a, s=rows[2].seq, at=rows[2].at.replace(tzinfo=None) if db.engine.dialect.name == "sqlite" else rows[2].at,
        h="0" * 64)
    sql(db, "UPDATE instance SET event_seq = event_seq + 1 WHERE id = :i", i=a)
    code, out = verify()
    assert code == 1
    with db.read() as s:
        forged = s.scalar(select(InstanceEvent.id).where(InstanceEvent.actor == "mallory"))
    assert f"instance {a}: instance_event row id {forged} (seq {rows[2].seq}) inserted" in out, out


def test_an_edited_or_removed_security_event_is_named(world, db, verify):
    with db.read() as s:
        rows = list(s.scalars(select(SecurityEvent).order_by(SecurityEvent.seq)))
    sql(db, "UPDATE security_event SET ip = '192.0.2.9' WHERE id = :id", id=rows[1].id)
    code, out = verify()
    assert code == 1 and f"security: security_event row id {rows[1].id} (seq 2) changed" in out, out
    sql(db, "UPDATE security_event SET ip = '10.0.0.1' WHERE id = :id", id=rows[1].id)
    assert verify()[0] == 0  # put back as it was: intact again
    sql(db, "DELETE FROM security_event WHERE id = :id", id=rows[2].id)
    code, out = verify()
    assert code == 1 and f"security: security_event row id {rows[3].id} (seq 4) removed" in out, out


def test_a_security_event_added_outside_the_chain_is_named(world, db, verify):
    sql(db, "INSERT INTO security_event (at, kind, detail) VALUES (:at, 'sign_in', '{}')",
        at=clock.now().replace(tzinfo=None))
    code, out = verify()
    with db.read() as s:
        stray = s.scalar(select(SecurityEvent.id).where(SecurityEvent.seq.is_(None)))
    assert code == 1 and f"security_event row id {stray} (seq None) inserted" in out, out


def test_the_retention_purge_keeps_the_chain_verifiable(world, db, verify, fake_clock):
    svc, _ = world
    fake_clock.advance(timedelta(days=200))
    audit.log(svc, audit.SIGN_OUT, actor="s9")
    assert audit.purge(svc, days=180) == 4
    code, out = verify()
    assert code == 0, out
    with db.read() as s:
        kinds = list(s.scalars(select(SecurityEvent.kind).order_by(SecurityEvent.seq)))
    assert kinds == ["sign_out", "audit_purged"]
    # quietly removing more of the old end than the purge did is named
    fake_clock.advance(timedelta(days=1))
    audit.log(svc, audit.SIGN_IN, actor="s9")
    with db.read() as s:
        first = s.scalar(select(SecurityEvent.id).where(SecurityEvent.kind == "sign_out"))
    sql(db, "DELETE FROM security_event WHERE id = :id", id=first)
    code, out = verify()
    assert code == 1 and "removed" in out, out


def test_concurrent_writers_do_not_fork_the_chain(world, db, verify):
    svc, _ = world
    errors = []

    def writer(n):
        try:
            for i in range(5):
                audit.log(svc, audit.SIGN_IN_FAILURE, detail={"w": n, "i": i})
        except Exception as e:  # noqa: BLE001
            errors.append(e)

    threads = [threading.Thread(target=writer, args=(n,)) for n in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    with db.read() as s:
        seqs = list(s.scalars(select(SecurityEvent.seq).order_by(SecurityEvent.seq)))
    assert seqs == list(range(1, 25))
    assert verify()[0] == 0
