"""`gridflow version replay`: past cases' level stays against a candidate version's time limits,
checked against a hand-computed case set (v2 shortens the due days: village·neighbour 5 → 4,
township·neighbour 10 → 8; warn days unchanged: 3 and 5)."""
from __future__ import annotations

from datetime import date, datetime

import pytest
from click.testing import CliRunner

from engine import clock
from grid.cases.replay import replay, report_lines, totals_by_unit
from tests.versions_helpers import START, VILLAGE_HEAD, VILLAGE_MED, Cases, deploy_v2

VILLAGE, TOWNSHIP = "420602003005", "420602003000"


@pytest.fixture
def world(svc):
    fake = clock.install_fake(START)
    yield Cases(svc, fake)
    clock.set_source(None)


def _at(day: int, hour: int) -> datetime:
    return datetime(2026, 3, day, hour, 0, tzinfo=clock.SHANGHAI)


def _cases(world) -> None:
    """A: village Mon 10:00 → cannot_resolve Fri 12:00 (4 workdays + 2 h) → township, still open.
    B: village (property) Mon 10:00 → resolved Mon 15:00."""
    world.report("A")
    world.report("B", category="property")
    world.r.fake.set(_at(2, 15))
    world.complete("B", "dispatch", VILLAGE_HEAD, {"action": "dispatch", "assignees": [f"@{VILLAGE_MED}"]})
    world.complete("B", "mediate", VILLAGE_MED, {"outcome": "resolved", "notes": "当场调解"})
    world.r.fake.set(_at(6, 12))
    world.complete("A", "dispatch", VILLAGE_HEAD, {"action": "dispatch", "assignees": [f"@{VILLAGE_MED}"]})
    world.complete("A", "mediate", VILLAGE_MED, {"outcome": "cannot_resolve", "notes": "需街道协调"})
    assert world.case("A").current_unit == TOWNSHIP
    world.r.fake.set(_at(18, 13))  # Wed: township stay 8 workdays + 1 h old


def test_replay_matches_the_hand_computed_case_set(world, svc):
    _cases(world)
    deploy_v2(svc)
    r = replay(svc, "dispute_case", 2, date(2026, 1, 1))
    assert (r.current, r.candidate, r.cases, len(r.stays)) == (1, 2, 2, 3)
    # village: A lasted past warn (Thu 10:00) under both and past due only under v2 (Fri 10:00 < 12:00,
    # v1 due Mon 03-09); B (property, 5 hours) nothing. Township: A warned (Fri 03-13 12:00) under both,
    # overdue under v2 (Wed 03-18 12:00) but not v1 (Fri 03-20 12:00); both stays below the top: escalated.
    assert totals_by_unit(r) == {
        VILLAGE: {"current": {"stays": 2, "warned": 1, "overdue": 0, "escalated": 0},
                  "candidate": {"stays": 2, "warned": 1, "overdue": 1, "escalated": 1}},
        TOWNSHIP: {"current": {"stays": 1, "warned": 1, "overdue": 0, "escalated": 0},
                   "candidate": {"stays": 1, "warned": 1, "overdue": 1, "escalated": 1}},
    }
    assert r.missing == []
    lines = report_lines(r)
    assert lines[0].startswith("replay dispute_case: 2 case(s) reported since 2026-01-01, 3 level stay(s)")
    assert any(line.split()[:2] == ["total", "3"] for line in lines)


def test_replay_only_counts_cases_since_the_day(world, svc):
    _cases(world)
    deploy_v2(svc)
    r = replay(svc, "dispute_case", 2, date(2026, 3, 3))
    assert (r.cases, r.stays, r.by_unit) == (0, [], {})


def test_cli_replay_prints_the_per_unit_report(world, svc):
    from web.cli import main

    _cases(world)
    deploy_v2(svc)
    res = CliRunner().invoke(main, ["--database", svc.db.url_with_password, "version", "replay", "dispute_case",
                                    "--to", "2", "--since", "2026-01-01"], obj=svc)
    assert res.exit_code == 0, res.output
    assert "time limits v1 → v2" in res.output
    rows = {line.split()[0]: line.split() for line in res.output.splitlines()[2:]}
    assert rows[VILLAGE][1:] == ["2", "1", "→", "1", "0", "→", "1", "0", "→", "1"]
    assert rows[TOWNSHIP][1:] == ["1", "1", "→", "1", "0", "→", "1", "0", "→", "1"]
    bad = CliRunner().invoke(main, ["version", "replay", "dispute_case", "--to", "9", "--since", "2026-01-01"],
                             obj=svc)
    assert bad.exit_code == 1 and "no version 9" in bad.output
