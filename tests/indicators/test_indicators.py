"""Every indicator on a constructed set of cases (tests/indicators/cases.py), with the answers
worked out by hand, on SQLite and PostgreSQL; and the rollup rebuilt from the records is equal."""
from __future__ import annotations

from datetime import date, datetime

import pytest
from click.testing import CliRunner
from sqlalchemy import delete, func, select, update

from engine import clock
from grid.cases import rollup
from grid.cases.indicators import definitions, indicators, period, ranking
from grid.cases.models import DisputeCase, IndicatorRollup
from grid.cases.scenario import Runner
from grid.errors import Forbidden
from grid.org import service as org

from .cases import COMMUNITY, LATE_STEPS, MONDAY_STEPS, STREET, doc

MON, NEXT_MON = date(2026, 3, 2), date(2026, 3, 9)
DAY = 24 * 60
# Community handling times in working minutes: ontime 120 (10:00-12:00), dup 0, esc 0, rework 0 + 0,
# late 7201 (Mon 12:00 -> next Mon 12:01: 720 + 4 x 1440 + 721; the weekend does not count).
COMMUNITY_MINUTES = [120, 0, 0, 0, 0, 7201]


def _run(svc, steps):
    result = Runner(svc, doc(steps)).run()
    assert result.passed, str(result)


def _sid(svc, username: str) -> str:
    with svc.db.read() as s:
        return org.staff_by_username(s, username).id


@pytest.fixture
def built(svc):
    _run(svc, MONDAY_STEPS + LATE_STEPS)
    return svc


def test_every_indicator_for_the_street(built):
    v = indicators(built, _sid(built, "disp2.420602003000"), STREET, MON, NEXT_MON)
    expected_counts = {
        "reported": 6, "accepted": 5, "settled_on_spot": 1, "closed": 5, "closed_on_time": 4,
        "closed_overdue": 1, "closed_first_level": 3, "closed_escalated": 2, "closed_reworked": 1,
        "duplicates": 1, "in_progress": 0, "due_to_close": 5,
        # handlings: ontime 1, dup 1, esc 2 (community + street), rework 2, late 2 (community + street)
        "handled": 8, "escalations": 2, "reworks": 1,
        "verified": 5, "satisfied": 4,  # ontime, esc, rework x2 (one not satisfied), late
        "warnings": 1, "supervisions": 1, "urges": 1, "accountabilities": 1,
    }
    assert {k: v[k] for k in expected_counts} == expected_counts
    assert v["closure_rate"] == 5 / 5
    assert v["on_time_rate"] == 4 / 5
    assert v["overdue_rate"] == 1 / 8
    assert v["resolution_rate"] == 3 / 5
    assert v["escalation_rate"] == 2 / 8
    assert v["rework_rate"] == 1 / 5
    assert v["satisfaction_rate"] == 4 / 5
    hd = v["handling_days"]
    assert hd["village"] == {"count": 6, "avg_days": sum(COMMUNITY_MINUTES) / 6 / DAY, "p90_days": 6}
    assert hd["township"] == {"count": 2, "avg_days": 0.0, "p90_days": 0}  # esc and late, resolved at once
    assert hd["all"] == {"count": 8, "avg_days": sum(COMMUNITY_MINUTES) / 8 / DAY, "p90_days": 6}
    assert set(v) == {i.key for i in definitions()}, "every defined indicator has a value"


def test_the_community_sees_only_its_own_handling(built):
    """Case measures follow the case's grid; handling measures stay with the unit that handled."""
    v = indicators(built, _sid(built, "sup.420602003005"), COMMUNITY, MON, NEXT_MON)
    assert (v["reported"], v["closed"], v["closed_escalated"]) == (6, 5, 2)
    assert v["handled"] == 6 and v["escalations"] == 2  # the street's two handlings are not here
    assert v["escalation_rate"] == 2 / 6 and v["overdue_rate"] == 1 / 6
    assert (v["verified"], v["satisfied"]) == (3, 2)  # ontime + rework twice; esc and late at the street
    assert set(v["handling_days"]) == {"all", "village"}


def test_a_period_is_a_window_and_in_progress_is_a_stock(built):
    sid = _sid(built, "disp2.420602003000")
    mon = indicators(built, sid, STREET, *period("day", MON))
    assert (mon["reported"], mon["closed"], mon["in_progress"], mon["due_to_close"]) == (6, 4, 1, 5)
    assert mon["closure_rate"] == 4 / 5 and mon["on_time_rate"] == 4 / 5
    assert (mon["warnings"], mon["accountabilities"], mon["handled"]) == (0, 0, 6)
    thu = indicators(built, sid, STREET, date(2026, 3, 5), date(2026, 3, 5))
    assert (thu["reported"], thu["in_progress"], thu["warnings"], thu["supervisions"], thu["urges"]) == (0, 1, 1, 1, 1)
    assert thu["closure_rate"] == 0 / 1 and thu["satisfaction_rate"] is None  # nothing verified that day
    later = indicators(built, sid, STREET, *period("week", NEXT_MON))
    assert (later["reported"], later["closed"], later["closed_overdue"], later["in_progress"]) == (0, 1, 1, 0)
    assert later["handling_days"]["village"]["p90_days"] == 6
    month = indicators(built, sid, STREET, *period("month", MON))
    whole = indicators(built, sid, STREET, MON, NEXT_MON)
    assert month == whole


def test_periods():
    assert period("week", date(2026, 3, 4)) == (date(2026, 3, 2), date(2026, 3, 8))
    assert period("month", date(2026, 2, 10)) == (date(2026, 2, 1), date(2026, 2, 28))
    assert period("quarter", date(2026, 11, 30)) == (date(2026, 10, 1), date(2026, 12, 31))
    assert period("year", date(2026, 5, 1)) == (date(2026, 1, 1), date(2026, 12, 31))


def test_jurisdiction_and_ranking(built):
    with pytest.raises(Forbidden):
        indicators(built, _sid(built, "jiangranran"), COMMUNITY, MON, NEXT_MON)  # a grid is below the community
    with pytest.raises(Forbidden):
        indicators(built, _sid(built, "sup.420602003005"), STREET, MON, NEXT_MON)
    sid = _sid(built, "disp2.420602003000")
    rows = ranking(built, sid, STREET, "closed", MON, NEXT_MON)
    with built.db.read() as s:
        assert [r["unit_code"] for r in rows] == sorted([COMMUNITY] + [u.code for u in org.children(s, STREET)
                                                                       if u.code != COMMUNITY],
                                                        key=lambda c: (c != COMMUNITY, c))
    assert rows[0] == {"rank": 1, "unit_code": COMMUNITY, "name": "檀溪社区", "value": 5}
    assert all(r["value"] == 0 for r in rows[1:])
    rates = ranking(built, sid, STREET, "rework_rate", MON, NEXT_MON)  # lower is better; no value -> last
    assert rates[0]["unit_code"] == COMMUNITY and rates[0]["value"] == 1 / 5
    assert all(r["value"] is None for r in rates[1:])


def test_rebuild_from_the_records_equals_the_incremental_rollup(built):
    cal = built.runtime.calendar
    with built.db.read() as s:
        incremental = rollup.stored(s)
        recomputed = rollup.compute(s, cal)
    assert incremental and recomputed == incremental
    with built.db.write() as s:
        assert rollup.rebuild(s, cal, check=True) == []
    # damage the rollup: --check reports it and changes nothing; a rebuild repairs it
    with built.db.write() as s:
        s.execute(update(IndicatorRollup).where(IndicatorRollup.measure == "closed").values(value=IndicatorRollup.value + 1))
        s.execute(delete(IndicatorRollup).where(IndicatorRollup.measure == "warning"))
    with built.db.write() as s:
        diffs = rollup.rebuild(s, cal, check=True)
    assert {k[4] for k, _have, _want in diffs} == {"closed", "warning"}
    with built.db.write() as s:
        assert rollup.rebuild(s, cal) == diffs
    with built.db.read() as s:
        assert rollup.stored(s) == incremental


def test_rebuild_command(built, monkeypatch):
    from web.cli import main

    monkeypatch.setenv("GRIDFLOW_WORKFLOWS", str(built.settings.workflows))  # the same working calendar
    url = built.db.url_with_password
    ok = CliRunner().invoke(main, ["--database", url, "indicators", "rebuild", "--check"])
    assert ok.exit_code == 0, ok.output
    assert "matches" in ok.output
    with built.db.write() as s:
        s.execute(delete(IndicatorRollup).where(IndicatorRollup.measure == "reported"))
    bad = CliRunner().invoke(main, ["--database", url, "indicators", "rebuild", "--check"])
    assert bad.exit_code == 1, bad.output
    assert "neighbour - reported: stored 0, records say 4" in bad.output  # per category: 4 + 1 + 1
    assert "3 difference(s)" in bad.output
    fixed = CliRunner().invoke(main, ["--database", url, "indicators", "rebuild"])
    assert fixed.exit_code == 0, fixed.output
    again = CliRunner().invoke(main, ["--database", url, "indicators", "rebuild", "--check"])
    assert again.exit_code == 0, again.output
    with built.db.read() as s:
        assert s.scalar(select(func.sum(IndicatorRollup.value)).where(IndicatorRollup.measure == "reported")) == 6


def test_a_cancelled_case_leaves_the_stock_and_the_rebuild_agrees(svc):
    _run(svc, MONDAY_STEPS)
    sid = _sid(svc, "disp2.420602003000")
    assert indicators(svc, sid, STREET, MON, MON)["in_progress"] == 1  # `late` is still open
    with svc.db.read() as s:
        late = s.scalars(select(DisputeCase).where(DisputeCase.status == "open")).one()
    clock.install_fake(datetime(2026, 3, 3, 9, 0, tzinfo=clock.SHANGHAI))
    try:
        svc.runtime.cancel(late.instance_id, actor="admin", reason="测试撤销")
    finally:
        clock.set_source(None)
    assert indicators(svc, sid, STREET, MON, MON)["in_progress"] == 1, "counted on the day it was cancelled"
    v = indicators(svc, sid, STREET, MON, date(2026, 3, 3))
    assert (v["in_progress"], v["closed"], v["reported"]) == (0, 4, 6)  # cancelled is not 办结
    assert v["closure_rate"] == 4 / 4
    with svc.db.write() as s:
        assert rollup.rebuild(s, svc.runtime.calendar, check=True) == []


def test_an_urge_with_no_supervision_open_is_counted_and_the_rebuild_agrees(svc):
    """A supervisor may urge (催办) a case before its warning fires: `urge()` then writes the record
    itself, outside the step listener; it must still reach the rollup."""
    from grid.cases import service as cases

    _run(svc, MONDAY_STEPS)
    sid = _sid(svc, "disp2.420602003000")
    with svc.db.read() as s:
        late = s.scalars(select(DisputeCase).where(DisputeCase.status == "open")).one()
    supervisor = _sid(svc, "sup.420602003005")
    before = indicators(svc, sid, STREET, MON, date(2026, 3, 3))["urges"]
    clock.install_fake(datetime(2026, 3, 3, 9, 0, tzinfo=clock.SHANGHAI))
    try:
        assert cases.urge(svc, supervisor, late.id, "请尽快处理") == "recorded"
    finally:
        clock.set_source(None)
    assert indicators(svc, sid, STREET, MON, date(2026, 3, 3))["urges"] == before + 1
    with svc.db.write() as s:
        assert rollup.rebuild(s, svc.runtime.calendar, check=True) == []
