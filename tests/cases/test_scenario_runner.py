"""Scenario failures are readable: which step, what was expected, what was found."""
from __future__ import annotations

from grid.cases.scenario import Runner

REPORT = {"report": {"as": "jiangranran", "data": {"category": "neighbour", "description": "楼上住户夜间噪音扰民",
                                                   "location": {"text": "檀溪社区"}, "settled_on_spot": False}}}


def test_failed_expectation_is_reported_readably(svc):
    doc = {"name": "broken", "start": "2026-03-02T10:00:00+08:00",
           "steps": [REPORT, {"expect": {"level": "city", "tasks": [{"task": "dispatch", "role": "mediator"}]}}]}
    result = Runner(svc, doc, "broken.yaml").run()
    assert not result.passed
    (msg,) = result.failures
    assert msg.startswith("step 2 (expect")
    assert "level is 'village', expected 'city'" in msg
    assert "task 'dispatch' is assigned to dispatch: role=grid_head unit=檀溪社区" in msg
    assert str(result).startswith("FAIL broken (broken.yaml, 2 steps)")


def test_a_typo_in_an_expectation_fails_loudly(svc):
    doc = {"steps": [REPORT, {"expect": {"levle": "village"}}]}
    result = Runner(svc, doc).run()
    assert not result.passed and "unknown expectation(s) ['levle']" in result.failures[0]
    doc = {"steps": [REPORT, {"expect": {"tasks": [{"task": "dispatch", "rol": "grid_head"}]}}]}
    assert "tasks.rol" in Runner(svc, doc).run().failures[0]


def test_wrong_person_and_bad_data_are_reported(svc):
    doc = {"steps": [REPORT, {"complete": {"task": "dispatch", "as": "jiangranran", "data": {"action": "dispatch"}}}]}
    result = Runner(svc, doc).run()
    assert "jiangranran may not complete 'dispatch'" in result.failures[0]
    doc = {"steps": [REPORT, {"complete": {"task": "dispatch", "as": "qiuyun", "data": {"action": "dispatch"}}}]}
    result = Runner(svc, doc).run()
    assert "InvalidData" in result.failures[0] and "assignees" in result.failures[0]
