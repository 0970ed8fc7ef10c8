"""The 部门协同 path of handle_level.bpmn on plain SpiffWorkflow 3.2.0 (the harness of
test_workflow_files: RestrictedPython scripts, a fake clock, a JSON round trip after every step):
the multi-instance sub-process gives one task per department with its own timers, the answers and
the overdue department's marker are collected, and the level resumes at dispatch."""
from __future__ import annotations

from tests.cases.test_workflow_files import Case, add_workdays, cst


def _by_unit(case: Case) -> dict:
    return {case.assignment(t)["unit"]: t for t in case.ready() if t.task_spec.bpmn_id == "department_handle"}


def test_two_departments_one_answers_one_runs_late(clock):
    clock.now = cst(2026, 3, 2, 10, 0).astimezone(clock.now.tzinfo)
    case = Case(clock, level_idx=1)  # at the township: its dispatcher transfers
    start = clock.now
    case.complete("dispatch", {"action": "transfer", "departments": [
        {"unit": "D1", "part": "拆除违建"}, {"unit": "D2", "part": "调查威胁", "days": 4}]})
    tasks = _by_unit(case)
    assert sorted(tasks) == ["D1", "D2"]
    assert all(case.assignment(t)["role"] == "department_handler" for t in tasks.values())
    due = {e.value for e in case.wf.waiting_events() if e.name == "部门超期"}
    assert due == {add_workdays(start, 3).isoformat(), add_workdays(start, 4).isoformat()}, "DMN 3 days; D2 its own 4"
    t = tasks["D1"]
    t.data["department_reply"] = {"status": "done", "answer": "已拆除"}
    t.run()
    case.wf.do_engine_steps()
    case.roundtrip()
    assert sorted(_by_unit(case)) == ["D2"]
    case.advance_to(add_workdays(start, 3))  # D2's warning (one day before its own limit)
    assert [k for k, d in case.take_events() if d.get("department")] == ["warning"]
    case.advance_to(add_workdays(start, 4))
    events = case.take_events()
    assert ("accountability", {"level": "township", "unit": "D2", "of_unit": "T1", "department": True,
                               "assigned_at": start.isoformat()}) in events
    assert case.ready_ids() == ["dispatch"], "the level resumes once every department answered or ran late"
    answers = case.task("dispatch").data["department_answers"]
    assert [(a["unit"], a["status"], a["on_time"]) for a in answers] == [("D1", "done", True), ("D2", "overdue", False)]
    assert events[-1] == ("departments_answered", {"level": "township", "unit": "T1", "answered": ["D1"], "late": ["D2"]})
