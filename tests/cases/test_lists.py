"""Case lists at the service level, on SQLite and PostgreSQL: 在办件 with each filter, sort and
paging forward and back; 我上报的 and 经我办理; jurisdiction (an outsider's unit is Forbidden,
an outsider's cases never show)."""
from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import update

from engine.models import WorkItem
from grid.cases import lists
from grid.errors import Forbidden
from tests.web_helpers import dispatch, open_items, report_case, staff_id

NOW = datetime(2026, 3, 10, 2, 0, tzinfo=UTC)
COUNTY, STREET, VILLAGE, GRID = "420602000000", "420602003000", "420602003005", "420602003005015"


def _times(svc, c, warn: timedelta, due: timedelta) -> None:
    with svc.db.write() as s:
        s.execute(update(WorkItem).where(WorkItem.instance_id == c.instance_id, WorkItem.state == "open")
                  .values(warn_at=NOW + warn, due_at=NOW + due))


@pytest.fixture
def made(svc, fake_clock):
    """Seven open cases in 江冉冉's grid: 0..2 normal, 3..4 warned, 5..6 overdue; 6 is land."""
    out = []
    for i in range(7):
        fake_clock.set(NOW - timedelta(hours=10 - i))
        out.append(report_case(svc, {"description": f"列表测试{i}", "category": "land" if i == 6 else "neighbour"}))
    fake_clock.set(NOW)
    for c in out[3:5]:
        _times(svc, c, -timedelta(hours=1), timedelta(days=1))
    for i, c in enumerate(out[5:]):
        _times(svc, c, -timedelta(days=2), -timedelta(hours=5 - i))
    return out


def nos(page) -> list[str]:
    return [r.case_no for r in page.rows]


def test_open_cases_filters_and_rows(svc, made):
    sup = staff_id(svc, f"sup.{COUNTY}")
    every = lists.open_cases(svc, sup)
    assert nos(every) == [c.case_no for c in reversed(made)]  # newest first
    assert nos(lists.open_cases(svc, sup, sort="oldest")) == [c.case_no for c in made]
    assert nos(lists.open_cases(svc, sup, sort="due"))[:2] == [made[5].case_no, made[6].case_no]
    assert nos(lists.open_cases(svc, sup, state="overdue")) == [made[6].case_no, made[5].case_no]
    assert nos(lists.open_cases(svc, sup, state="warned")) == [made[4].case_no, made[3].case_no]
    assert nos(lists.open_cases(svc, sup, state="normal")) == [c.case_no for c in reversed(made[:3])]
    assert nos(lists.open_cases(svc, sup, state="supervised")) == []
    assert nos(lists.open_cases(svc, sup, category="land")) == [made[6].case_no]
    assert nos(lists.open_cases(svc, sup, level="village")) == nos(every)
    assert nos(lists.open_cases(svc, sup, level="county")) == []
    assert nos(lists.open_cases(svc, sup, reporter=staff_id(svc, "jiangranran"))) == nos(every)
    assert nos(lists.open_cases(svc, sup, reporter=sup)) == []
    assert nos(lists.open_cases(svc, sup, date_from=NOW - timedelta(hours=5))) == [c.case_no for c in reversed(made[5:])]
    assert nos(lists.open_cases(svc, sup, date_to=NOW - timedelta(hours=9))) == [made[0].case_no]
    assert nos(lists.open_cases(svc, sup, unit=STREET)) == nos(every)
    assert nos(lists.open_cases(svc, sup, unit="420602001000")) == []  # another street of the county
    row = lists.open_cases(svc, sup, state="overdue").rows[0]
    assert row.current_level == "village" and row.unit_name == "檀溪社区" and row.state == "overdue"
    assert row.handlers and row.time_left(NOW) == timedelta(hours=-4)
    assert row.hierarchy == ["襄城区", "真武山街道", "檀溪社区", "第十五网格"]


def test_open_cases_page_forward_and_back(svc, made):
    sup = staff_id(svc, f"sup.{STREET}")
    p1 = lists.open_cases(svc, sup, per_page=3)
    p2 = lists.open_cases(svc, sup, per_page=3, page=2)
    p3 = lists.open_cases(svc, sup, per_page=3, page=3)
    assert p1.has_next and p2.has_next and not p3.has_next
    assert nos(p1) + nos(p2) + nos(p3) == [c.case_no for c in reversed(made)]
    assert nos(lists.open_cases(svc, sup, per_page=3, page=2)) == nos(p2)  # back again: same page
    assert nos(lists.open_cases(svc, sup, per_page=3, page=1)) == nos(p1)


def test_jurisdiction(svc, made):
    outsider = staff_id(svc, "sup.420606000000")  # 樊城区, the other county
    sup = staff_id(svc, f"sup.{STREET}")
    with pytest.raises(Forbidden):
        lists.open_cases(svc, sup, unit=COUNTY)  # above the street
    with pytest.raises(Forbidden):
        lists.open_cases(svc, sup, unit="no-such-unit")
    with pytest.raises(Forbidden):
        lists.unit_picker(svc, sup, COUNTY)
    assert nos(lists.open_cases(svc, outsider)) == []
    with pytest.raises(Forbidden):
        lists.open_cases(svc, outsider, unit=GRID)
    picker = lists.unit_picker(svc, sup, VILLAGE)
    assert [c for c, _n in picker.crumbs] == [STREET, VILLAGE] and GRID in [c for c, _n, _l in picker.children]


def test_my_reports_and_handled(svc, made, fake_clock):
    worker = staff_id(svc, "jiangranran")
    assert nos(lists.my_reports(svc, worker)) == [c.case_no for c in reversed(made)]
    assert nos(lists.my_reports(svc, worker, status="closed")) == []
    p = lists.my_reports(svc, worker, per_page=4)
    assert p.has_next and len(p.rows) == 4
    assert nos(lists.my_reports(svc, staff_id(svc, "qiuyun"))) == []
    dispatch(svc, made[1].id)
    fake_clock.set(NOW + timedelta(minutes=5))
    dispatch(svc, made[2].id)
    handled = lists.handled_by_me(svc, staff_id(svc, "qiuyun"))
    assert nos(handled) == [made[2].case_no, made[1].case_no]  # most recent action first
    assert handled.rows[0].acted_at is not None and handled.rows[0].current_level == "village"
    assert nos(lists.handled_by_me(svc, staff_id(svc, "qiuyun"), status="closed")) == []
    assert open_items(svc, made[1].id, "mediate")
    assert nos(lists.handled_by_me(svc, worker)) == []
