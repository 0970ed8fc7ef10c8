"""Deep task trees: a loop past SpiffWorkflow's iterator depth (1000) stays correct, a long chain
deploys and runs, and a tree past MAX_TREE_DEPTH fails loudly instead of closing silently."""
from __future__ import annotations

import sys

import pytest

from engine import limits
from engine.deploy import Bundle, deploy
from engine.runtime import Runtime
from tests.engine_helpers import FIXTURES, open_items

HOSTILE = FIXTURES / "hostile"


def _deploy(db, *names: str) -> None:
    with db.write() as s:
        deploy(s, Bundle(bpmn={n: (HOSTILE / n).read_bytes() for n in names}))


def test_iterators_walk_the_whole_tree():
    assert limits.iterator_depth() == sys.maxsize


@pytest.mark.slow
def test_loop_of_400_rounds_keeps_running_until_its_condition_ends_it(db):
    _deploy(db, "loop_rounds.bpmn")
    rt = Runtime(db)
    iid = rt.start("loop_rounds", {"limit": 401}).instance_id
    for _ in range(400):  # three tasks a round: past depth 1000 after 333 rounds
        (item,) = open_items(db, iid)
        assert rt.complete(iid, item.task_guid, {}).status == "running"
    inst = rt.instance(iid)
    assert inst.status == "running" and inst.error_message is None
    (item,) = open_items(db, iid)
    assert item.task_spec == "work"
    assert rt.complete(iid, item.task_guid, {}).status == "completed"
    assert rt.instance(iid).status == "completed" and open_items(db, iid) == []


def test_chain_of_500_tasks_deploys_and_runs(db):
    _deploy(db, "chain_500.bpmn")
    rt = Runtime(db)
    iid = rt.start("long_chain").instance_id
    (item,) = open_items(db, iid)
    assert item.task_spec == "t1"
    assert rt.complete(iid, item.task_guid, {}).status == "running"
    (item,) = open_items(db, iid)
    assert item.task_spec == "t500"
    assert rt.complete(iid, item.task_guid, {}).status == "completed"


def test_tree_past_the_limit_is_an_incident_not_a_close(db, monkeypatch):
    monkeypatch.setattr(limits, "MAX_TREE_DEPTH", 30)
    _deploy(db, "loop_rounds.bpmn")
    rt = Runtime(db)
    iid = rt.start("loop_rounds", {"limit": 1000}).instance_id
    status = "running"
    for _ in range(20):
        items = open_items(db, iid)
        if not items:
            break
        status = rt.complete(iid, items[0].task_guid, {}).status
        if status != "running":
            break
    inst = rt.instance(iid)
    assert status == "failed" and inst.status == "failed"
    assert "task tree is" in inst.error_message and "GRIDFLOW_MAX_TREE_DEPTH" in inst.error_message


def test_parser_recursion_limit_is_restored():
    before = sys.getrecursionlimit()
    with limits.deep_recursion():
        assert sys.getrecursionlimit() >= limits.PARSE_RECURSION_LIMIT
    assert sys.getrecursionlimit() == before
