"""The subtree totals (indicator_total, grid/cases/rollups.py) that every indicator is read from:
equal to summing indicator_rollup under the unit's path (the old way, done here by hand) for
every unit and period of the scenario cases, on SQLite and PostgreSQL; kept by the database
whoever writes the rollup; restored by a rebuild."""
from __future__ import annotations

import random
from datetime import date, timedelta

import pytest
from click.testing import CliRunner
from sqlalchemy import delete, func, select

from grid.cases import indicators as ind
from grid.cases import rollup, rollups
from grid.cases.models import IndicatorRollup
from grid.cases.rollups import IndicatorTotal
from grid.org import service as org
from grid.org.models import OrgUnit

from .test_indicators import LATE_STEPS, MON, MONDAY_STEPS, NEXT_MON, STREET, _run


@pytest.fixture
def built(svc):
    _run(svc, MONDAY_STEPS + LATE_STEPS)
    return svc


def _by_hand(s, path: str, start: date, end: date) -> dict:
    """Every indicator for the subtree, from indicator_rollup under the path prefix (not the totals)."""
    r = IndicatorRollup
    under = select(OrgUnit.code).where(org.paths_condition([path], OrgUnit.path))
    flows = {(m, lv): int(v) for m, lv, v in s.execute(
        select(r.measure, r.level, func.sum(r.value)).where(r.unit_code.in_(under), r.day >= start, r.day <= end)
        .group_by(r.measure, r.level)) if v}
    stocks = {m: int(v) for m, v in s.execute(
        select(r.measure, func.sum(r.value)).where(r.unit_code.in_(under), r.day <= end).group_by(r.measure)) if v}
    return ind._values(ind.definitions(), flows, stocks)


def _days(tiles) -> list[date]:
    out = []
    for bucket, lo, hi in tiles:
        d = lo
        while d <= hi:
            if bucket == "d":
                out.append(d)
                d += timedelta(days=1)
            elif bucket == "m":
                nxt = rollups._next_month(d)
                out += [d + timedelta(days=i) for i in range((nxt - d).days)]
                d = nxt
            else:
                nxt = date(d.year + 1, 1, 1)
                out += [d + timedelta(days=i) for i in range((nxt - d).days)]
                d = nxt
    return out


def test_tiles_cover_every_day_of_a_period_once():
    rng = random.Random(11)
    cases = [(date(2026, 3, 2), date(2026, 3, 2)), (date(2026, 3, 1), date(2026, 3, 31)),
             (date(2025, 12, 31), date(2026, 1, 1)), (date(2024, 1, 1), date(2026, 12, 31)),
             (rollups.EPOCH, date(2026, 12, 15)), (date(2026, 2, 1), date(2026, 2, 28))]
    for _ in range(300):
        a = date(2023, 1, 1) + timedelta(days=rng.randrange(1500))
        cases.append((a, a + timedelta(days=rng.randrange(900))))
    for start, end in cases:
        t = rollups.tiles(start, end)
        days = _days(t)
        assert days == [start + timedelta(days=i) for i in range((end - start).days + 1)], (start, end, t)
        assert len(t) <= 5
    assert rollups.tiles(date(2026, 3, 1), date(2026, 3, 31)) == [("m", date(2026, 3, 1), date(2026, 3, 1))]
    assert rollups.tiles(date(2026, 3, 5), date(2026, 3, 4)) == []


def test_indicators_from_the_totals_equal_the_rollup_under_the_path(built):
    periods = [(MON, MON), (MON, NEXT_MON), ind.period("month", MON), ind.period("year", MON),
               (date(2026, 3, 5), date(2026, 3, 5)), (date(2025, 12, 1), date(2026, 3, 3)),
               (date(2026, 2, 27), date(2026, 4, 2))]
    with built.db.read() as s:
        street = org.get_unit(s, STREET)
        units = [u for u in s.scalars(select(OrgUnit).order_by(OrgUnit.path))
                 if street.path.startswith(u.path) or u.path.startswith(street.path)]
        assert len(units) > 5
        checked = 0
        for u in units:
            for start, end in periods:
                want = _by_hand(s, u.path, start, end)
                assert ind.evaluate(s, u.path, start, end) == want, (u.code, start, end)
                checked += want["reported"] > 0
        assert checked >= 6, "the scenario's cases are seen at several units"
        many = ind.evaluate_many(s, [u.code for u in units], MON, NEXT_MON)
        assert all(many[u.code] == _by_hand(s, u.path, MON, NEXT_MON) for u in units)
        assert rollups.stored(s) == rollups.compute(s) != {}
        city = org.path_codes(street.path)[0]
        assert ind.evaluate(s, org.get_unit(s, city).path, MON, NEXT_MON)["reported"] == 6


def test_the_totals_follow_every_write_to_the_rollup(built):
    """Inserts, upserts and deletes of indicator_rollup reach indicator_total in the same
    transaction (triggers), on both databases; a rolled-back write leaves nothing."""
    with built.db.read() as s:
        before = rollups.stored(s)
        grid = s.scalar(select(IndicatorRollup.unit_code).where(IndicatorRollup.measure == "reported").limit(1))
    row = (grid, date(2026, 3, 20), "neighbour", "", "reported", 2)
    with built.db.write() as s:
        rollup.add(s, [row, row])  # one upsert of 4
        rollup.add(s, [row])  # on the existing row: value + 2
        assert rollups.stored(s) == rollups.compute(s)
    with built.db.read() as s:
        after = rollups.stored(s)
        path = org.get_unit(s, grid).path
        levels = {c: s.get(OrgUnit, c).level for c in org.path_codes(path)}
    tops = [c for c, lv in levels.items() if lv in rollups.TOTAL_LEVELS]
    assert len(tops) == 3 and levels[grid] == "grid"
    for scope in tops:
        for cat in ("neighbour", rollups.ALL):  # the category's row and the all-categories row
            assert after[(scope, "d", date(2026, 3, 20), cat, "", "reported")] == 6
            assert after[(scope, "m", date(2026, 3, 1), cat, "", "reported")] == \
                before.get((scope, "m", date(2026, 3, 1), cat, "", "reported"), 0) + 6
            assert after[(scope, "y", date(2026, 1, 1), cat, "", "reported")] == \
                before.get((scope, "y", date(2026, 1, 1), cat, "", "reported"), 0) + 6
    small = {c for c, lv in levels.items() if lv not in rollups.TOTAL_LEVELS}  # the village and the grid
    assert len(small) == 2 and not any(k[0] in small for k in after), "villages and grids sum the rollup"
    with pytest.raises(RuntimeError), built.db.write() as s:
        rollup.add(s, [row])
        raise RuntimeError("rolled back")
    with built.db.write() as s:
        s.execute(delete(IndicatorRollup).where(IndicatorRollup.day == date(2026, 3, 20)))
    with built.db.read() as s:
        assert rollups.stored(s) == before


def test_rebuild_restores_deleted_totals_and_rollup_rows(built, monkeypatch):
    from web.cli import main

    with built.db.read() as s:
        good_totals, good_rollup = rollups.stored(s), rollup.stored(s)
    with built.db.write() as s:
        s.execute(delete(IndicatorTotal).where(IndicatorTotal.measure == "closed"))  # the totals only
        s.execute(delete(IndicatorRollup).where(IndicatorRollup.measure == "satisfied"))  # rollup (and, by trigger, totals)
    monkeypatch.setenv("GRIDFLOW_WORKFLOWS", str(built.settings.workflows))
    url = built.db.url_with_password
    bad = CliRunner().invoke(main, ["--database", url, "indicators", "rebuild", "--check"])
    assert bad.exit_code == 1, bad.output
    assert "total " in bad.output and " closed: stored 0, rollup says " in bad.output
    assert " satisfied: stored 0, records say " in bad.output
    with built.db.read() as s:
        assert rollups.stored(s) != good_totals, "--check changed nothing"
        assert ind.evaluate(s, org.get_unit(s, STREET).path, MON, NEXT_MON)["closed"] == 0
    fixed = CliRunner().invoke(main, ["--database", url, "indicators", "rebuild"])
    assert fixed.exit_code == 0, fixed.output
    assert "corrected" in fixed.output
    again = CliRunner().invoke(main, ["--database", url, "indicators", "rebuild", "--check"])
    assert again.exit_code == 0 and "match" in again.output, again.output
    with built.db.read() as s:
        assert rollups.stored(s) == good_totals and rollup.stored(s) == good_rollup
        v = ind.evaluate(s, org.get_unit(s, STREET).path, MON, NEXT_MON)
        assert (v["closed"], v["satisfied"]) == (5, 4)


def test_a_trend_read_at_once_equals_each_month_on_its_own(built):
    """dashboard's trend (indicators.evaluate_months: month buckets, stocks carried forward) gives
    every indicator of every month as evaluating that month alone does, at every level."""
    from grid.cases.dashboard import months_back

    with built.db.write() as s:  # open reports before and inside the trends, so that stocks carry
        grid = s.scalar(select(IndicatorRollup.unit_code).where(IndicatorRollup.measure == "reported").limit(1))
        rollup.add(s, [(grid, date(2024, 11, 3), "land", "", "reported", 2),
                       (grid, date(2025, 12, 20), "land", "", "reported", 1)])
    with built.db.read() as s:
        street = org.get_unit(s, STREET)
        units = [u for u in s.scalars(select(OrgUnit).order_by(OrgUnit.path))
                 if street.path.startswith(u.path) or u.path.startswith(street.path)]
        for end in (NEXT_MON, date(2026, 5, 31)):
            months = months_back(end, 12)
            trend = ind.evaluate_months(s, [u.code for u in units], months)
            assert len(trend) == 12
            seen = 0
            for (start, stop), row in zip(months, trend, strict=True):
                for u in units:
                    assert row[u.code] == ind.evaluate(s, u.path, start, stop), (u.code, start)
                    seen += row[u.code]["reported"] > 0
            assert seen >= 5, "the scenario's cases are in the trend"
            assert {row[units[0].code]["in_progress"] for row in trend} >= {2, 3}, "stocks carried forward"
