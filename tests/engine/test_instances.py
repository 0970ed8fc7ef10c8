"""Instances: start, complete, message, cancel, work items, audit, incidents."""
from __future__ import annotations

import json
from datetime import timedelta

import pytest
from sqlalchemy import select

from engine.errors import Conflict, InvalidData
from engine.models import Instance, InstanceEvent, WorkItem
from engine.runtime import Runtime
from tests.engine_helpers import deploy_fixture, open_items


@pytest.fixture
def rt(db, fake_clock):
    deploy_fixture(db)
    deploy_fixture(db, "engine_features.bpmn")
    return Runtime(db)


def inst(db, iid) -> Instance:
    with db.read() as s:
        return s.get(Instance, iid)


def test_start_complete_to_the_end_with_audit(rt, db, fake_clock):
    step = rt.start("four_tasks", {"unit": "420602003005"}, actor="jiang", business_key="C-1")
    iid = step.instance_id
    row = inst(db, iid)
    assert row.status == "running" and row.business_key == "C-1" and row.lock_version == 1
    assert "task_specs" not in row.state_json, "state is stored without the spec"
    items = open_items(db, iid)
    assert [(w.task_spec, w.name, w.form, w.unit_id, w.role) for w in items] == [
        ("t1", "Task one", "small.json", "420602003005", "clerk")]
    names = []
    for expected in ["t1", "t2", "t3", "t4"]:
        (wi,) = open_items(db, iid)
        assert wi.task_spec == expected
        names.append(wi.task_spec)
        fake_clock.advance(timedelta(minutes=5))
        rt.complete(iid, wi.task_guid, {"note": f"done {expected}", "amount": 1}, actor="qiu")
        with db.read() as s:
            closed = s.scalar(select(WorkItem).where(WorkItem.task_guid == wi.task_guid))
        assert closed.state == "completed" and closed.closed_by == "qiu", "left the inbox in the same step"
    row = inst(db, iid)
    assert row.status == "completed" and row.next_timer_at is None
    hist = rt.history(iid)
    assert [e.seq for e in hist] == list(range(1, len(hist) + 1))
    assert [e.kind for e in hist] == ["started"] + ["task_completed"] * 4 + ["completed"]
    done = [e for e in hist if e.kind == "task_completed"]
    assert [e.task for e in done] == names and {e.actor for e in done} == {"qiu"}
    assert done[2].data["data"] == {"note": "done t3", "amount": 1}


def test_invalid_form_data_changes_nothing(rt, db):
    iid = rt.start("four_tasks", {"unit": "U"}).instance_id
    (wi,) = open_items(db, iid)
    before = inst(db, iid)
    with pytest.raises(InvalidData) as ei:
        rt.complete(iid, wi.task_guid, {"note": "", "amount": -3})
    paths = {e["path"] for e in ei.value.errors}
    assert paths == {"note", "amount"}
    after = inst(db, iid)
    assert (after.lock_version, after.state_json) == (before.lock_version, before.state_json)
    assert [w.task_guid for w in open_items(db, iid)] == [wi.task_guid]
    assert len(rt.history(iid)) == 1


def test_double_submit_and_stale_page(rt, db):
    iid = rt.start("four_tasks", {"unit": "U"}).instance_id
    (wi,) = open_items(db, iid)
    lock = inst(db, iid).lock_version
    rt.complete(iid, wi.task_guid, {"note": "a"}, expected_lock=lock)
    with pytest.raises(Conflict, match="already been completed"):
        rt.complete(iid, wi.task_guid, {"note": "b"}, expected_lock=lock)
    (wi2,) = open_items(db, iid)
    with pytest.raises(Conflict, match="changed since you opened it"):
        rt.complete(iid, wi2.task_guid, {"note": "c"}, expected_lock=lock)
    assert [e.kind for e in rt.history(iid)].count("task_completed") == 1


def test_message_delivery(rt, db):
    iid = rt.start("message_wait").instance_id
    assert open_items(db, iid) == []
    with pytest.raises(Conflict):
        rt.signal(iid, "nobody_listens")
    rt.send_message(iid, "court_decision", {"verdict": "upheld"}, actor="court")
    (wi,) = open_items(db, iid)
    assert wi.task_spec == "after_msg"
    kinds = [(e.kind, e.actor) for e in rt.history(iid)]
    assert ("message_received", "court") in kinds
    with pytest.raises(Conflict):
        rt.send_message(iid, "court_decision", {"verdict": "again"})


def test_signal_interrupts_waiting_task(rt, db):
    iid = rt.start("message_wait").instance_id
    rt.send_message(iid, "court_decision", {"verdict": "upheld"})
    (wi,) = open_items(db, iid)
    rt.signal(iid, "case_withdrawn", {"by": "reporter"}, actor="clerk")
    assert open_items(db, iid) == []
    with db.read() as s:
        assert s.scalar(select(WorkItem.state).where(WorkItem.task_guid == wi.task_guid)) == "cancelled"
    assert inst(db, iid).status == "completed"
    kinds = [e.kind for e in rt.history(iid)]
    assert kinds[-3:] == ["signal_received", "withdrawn", "completed"]


def test_cancel_closes_work_items(rt, db):
    iid = rt.start("four_tasks", {"unit": "U"}).instance_id
    (wi,) = open_items(db, iid)
    rt.cancel(iid, actor="admin", reason="duplicate")
    row = inst(db, iid)
    assert row.status == "cancelled" and row.next_timer_at is None
    with db.read() as s:
        assert s.scalar(select(WorkItem.state).where(WorkItem.task_guid == wi.task_guid)) == "cancelled"
    with pytest.raises(Conflict):
        rt.complete(iid, wi.task_guid, {"note": "late"})


def test_sla_times_from_boundary_timers_inside_call_activity(rt, db, fake_clock):
    iid = rt.start("parent_with_call").instance_id
    (wi,) = open_items(db, iid)
    assert wi.task_spec == "child_task"
    assert wi.warn_at == fake_clock.current + timedelta(days=1)
    assert wi.due_at.isoformat() == "2030-01-01T01:00:00+00:00"
    assert inst(db, iid).next_timer_at == wi.warn_at, "next_timer_at sees timers in the call activity"


def test_script_error_is_an_incident_and_retry_fixes_it(rt, db):
    bad = rt.start("scripted", {"total": 10, "count": 0}, actor="ann").instance_id
    good = rt.start("scripted", {"total": 10, "count": 5}).instance_id
    row = inst(db, bad)
    assert row.status == "failed" and row.error_task == "compute"
    assert "ZeroDivisionError" in row.error_message
    assert open_items(db, bad) == []
    assert inst(db, good).status == "running" and len(open_items(db, good)) == 1, "others unaffected"
    with pytest.raises(Conflict):
        rt.retry(good)
    rt.retry(bad, {"count": 4}, actor="admin")
    row = inst(db, bad)
    assert row.status == "running" and row.error_task is None
    (wi,) = open_items(db, bad)
    assert wi.task_spec == "review"
    assert rt.task_data(bad, wi.task_guid)["ratio"] == 2.5
    kinds = [e.kind for e in rt.history(bad)]
    assert kinds == ["started", "error", "retried"]


def test_uncaught_bpmn_error_fails_instance(rt, db):
    iid = rt.start("throws_error").instance_id
    row = inst(db, iid)
    assert row.status == "failed" and "FATAL" in row.error_message


def test_endless_script_does_not_hang(rt, db):
    iid = rt.start("looping").instance_id  # returns: the line budget stops the loop as an incident
    row = inst(db, iid)
    assert row.status == "failed" and row.error_task == "spin" and "budget" in row.error_message


def test_history_is_append_only_sequence(rt, db):
    iid = rt.start("four_tasks", {"unit": "U"}).instance_id
    (wi,) = open_items(db, iid)
    rt.complete(iid, wi.task_guid, {"note": "x"})
    with db.read() as s:
        seqs = list(s.scalars(select(InstanceEvent.seq).where(InstanceEvent.instance_id == iid)))
    assert sorted(seqs) == [1, 2] and inst(db, iid).event_seq == 2
    assert json.loads(inst(db, iid).state_json)["format"].startswith("gridflow-state-1/")
