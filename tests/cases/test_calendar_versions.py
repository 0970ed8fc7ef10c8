"""The work calendar is deployed with each version: a change needs no restart, a running case keeps
the calendar it started with, a new case uses the new one (on SQLite and PostgreSQL)."""
from __future__ import annotations

import shutil
from datetime import datetime
from pathlib import Path

import pytest
from sqlalchemy import select

from engine import clock
from engine.deploy import Bundle, deploy
from engine.errors import DeployError
from engine.models import Instance, ProcessVersion, WorkItem
from grid.cases import service as cases
from grid.cases.scenario import prepare
from grid.org import service as org

ROOT = Path(__file__).resolve().parents[2]
CAL_A = "years:\n  2026:\n    holidays: []\n    workdays: []\n"  # weekends only, limits keep the minute
CAL_B = 'day_ends: "17:30"\nyears:\n  2026:\n    holidays: [2026-03-03]\n    workdays: []\n'


def _sid(svc, username: str) -> str:
    with svc.db.read() as s:
        return org.staff_by_username(s, username).id


def _open(svc, c, task: str) -> WorkItem:
    with svc.db.read() as s:
        return s.scalar(select(WorkItem).where(WorkItem.instance_id == c.instance_id, WorkItem.state == "open",
                                               WorkItem.task_spec == task))


def _report(svc, text: str):
    return cases.report(svc, _sid(svc, "jiangranran"), {"category": "neighbour", "description": text,
                                                       "location": {"text": "檀溪社区"}, "settled_on_spot": False})


def at(*args) -> datetime:
    return datetime(*args, tzinfo=clock.SHANGHAI)


@pytest.fixture
def bundle_dirs(tmp_path):
    wf, forms = tmp_path / "workflows", tmp_path / "forms"
    shutil.copytree(ROOT / "workflows", wf)
    shutil.copytree(ROOT / "forms", forms)
    (wf / "calendar.yaml").write_text(CAL_A, encoding="utf-8")
    return wf, forms


def test_running_case_keeps_its_calendar_new_case_gets_the_new_one(db, bundle_dirs):
    wf, forms = bundle_dirs
    fake = clock.install_fake(at(2026, 3, 2, 10, 0))  # Monday
    try:
        svc = prepare(db, wf, forms)  # deploys calendar A
        first = _report(svc, "甲案：按日历A开始")
        (wf / "calendar.yaml").write_text(CAL_B, encoding="utf-8")
        with db.write() as s:  # the same Services object: no restart
            report = deploy(s, Bundle.from_dirs(wf, forms), actor="test")
        assert {v.process_id for v in report.created} >= {"dispute_case", "handle_level"}, "a new calendar is a new version"
        fake.set(at(2026, 3, 2, 10, 5))
        second = _report(svc, "乙案：按日历B开始")
        with db.read() as s:
            v1 = s.get(Instance, first.instance_id).version_id
            v2 = s.get(Instance, second.instance_id).version_id
            assert v1 != v2
            assert "day_ends" not in s.get(ProcessVersion, v1).files["calendar.yaml"]
            assert "2026-03-03" in s.get(ProcessVersion, v2).files["calendar.yaml"]
        # the running case's next limit (the street's, after the community cannot resolve) uses A:
        # 10 working days from Monday 10:05, weekends only, at the same minute
        cases.complete_task(svc, _sid(svc, "qiuyun"), _open(svc, first, "dispatch").task_guid,
                            {"action": "dispatch", "assignees": [_sid(svc, "med1.420602003005")]})
        cases.complete_task(svc, _sid(svc, "med1.420602003005"), _open(svc, first, "mediate").task_guid,
                            {"outcome": "cannot_resolve", "notes": "无法化解"})
        street = _open(svc, first, "dispatch")
        assert street.unit_id == "420602003000"
        assert clock.local(street.due_at) == at(2026, 3, 16, 10, 5)
        assert clock.local(street.warn_at) == at(2026, 3, 9, 10, 5)
        # the new case uses B: Tuesday 3 March is a holiday and limits end at 17:30
        village = _open(svc, second, "dispatch")
        assert clock.local(village.warn_at) == at(2026, 3, 6, 17, 30)  # 3 working days: Wed, Thu, Fri
        assert clock.local(village.due_at) == at(2026, 3, 10, 17, 30)  # 5: ... Mon 9, Tue 10
    finally:
        clock.set_source(None)


def test_an_unreadable_calendar_is_refused_with_nothing_stored(db, bundle_dirs):
    wf, forms = bundle_dirs
    svc = prepare(db, wf, forms)
    with db.read() as s:
        before = len(list(s.scalars(select(ProcessVersion.id))))
    (wf / "calendar.yaml").write_text("years:\n  2026:\n    holidays: [2026-02-30]\n", encoding="utf-8")
    with pytest.raises(DeployError) as e, db.write() as s:
        deploy(s, Bundle.from_dirs(wf, forms), actor="test")
    assert any(p.file == "calendar.yaml" for p in e.value.problems)
    with db.read() as s:
        assert len(list(s.scalars(select(ProcessVersion.id)))) == before
    del svc
