"""The API case list's keyset cursor (grid.cases.api_reads.list_cases), on both databases.

- A walk page by page over cases that share `updated_at` (ties broken by id) returns each case
  once, in (updated_at, id) order, also with `updated_since`.
- A deep page (a cursor near the end) seeks in `ix_dispute_case_updated_id` from the cursor
  (`updated_at >= at` is an index bound), so it does not read every row before it: checked on the
  plan (EXPLAIN QUERY PLAN / EXPLAIN), not timed (see bench/api_bench.py for the times).
- A cursor this API did not hand out is a 400-class InvalidData, not a server error.
"""
from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import insert, select

from engine.errors import InvalidData
from grid.cases import api_reads
from grid.cases.models import DisputeCase
from grid.org import demo
from grid.org.models import OrgUnit, StaffRole
from tests.cases.test_query_plans import assert_indexed, captured, plan

NOW = datetime(2026, 1, 5, 8, 0, tzinfo=UTC)
INDEX = "ix_dispute_case_updated_id"
CITY = demo.CITY_CODE + "/"


def _fill(svc, n: int, per_instant: int = 3) -> list[int]:
    """`n` bare cases, `per_instant` of them sharing each updated_at (so the id breaks the ties)."""
    with svc.db.read() as s:
        code, path, worker = s.execute(
            select(OrgUnit.code, OrgUnit.path, StaffRole.staff_id).join(StaffRole, StaffRole.unit_code == OrgUnit.code)
            .where(OrgUnit.level == "grid", StaffRole.role == "grid_worker").order_by(OrgUnit.code).limit(1)).one()
    t0 = NOW - timedelta(days=30)
    rows = []
    for i in range(n):
        at = t0 + timedelta(minutes=i // per_instant)
        tie_id = 10_000 + (i // per_instant) * 10 + per_instant - i % per_instant  # within a tie, ids fall
        rows.append({"id": tie_id, "case_no": f"MDCUR{i:06d}", "category": "other",
                     "description": f"游标测试 {i}", "location_text": "x", "lat": None, "lng": None, "parties": [],
                     "photos": [], "reporter_id": worker, "grid_code": code, "unit_path": path,
                     "current_level": "village", "current_unit": code[:12], "status": "archived",
                     "reported_at": at, "updated_at": at, "archived_at": at, "escalations": 0, "rework_count": 0,
                     "warnings": 0, "overdue": 0, "source": "grid_worker", "instance_id": None})
    with svc.db.write() as s:
        s.execute(insert(DisputeCase), rows)
    return [r["id"] for r in sorted(rows, key=lambda r: (r["updated_at"], r["id"]))]


def _walk(svc, limit: int, **kw) -> list[int]:
    out, cursor = [], None
    for _ in range(200):
        page = api_reads.list_cases(svc, CITY, cursor=cursor, limit=limit, **kw)
        out += [c["id"] for c in page["items"]]
        if not page["has_more"]:
            return out
        cursor = page["next_cursor"]
    raise AssertionError("the walk did not end")


def test_walk_with_ties_returns_each_case_once_in_order(svc, fake_clock):
    fake_clock.set(NOW)
    want = _fill(svc, 40)
    for limit in (1, 2, 3, 7, 50):
        assert _walk(svc, limit) == want, limit
    since = NOW - timedelta(days=30) + timedelta(minutes=5)  # the 16th case on
    assert _walk(svc, 4, updated_since=since) == want[15:]


def test_deep_page_seeks_the_index_from_the_cursor(svc, fake_clock):
    fake_clock.set(NOW)
    want = _fill(svc, 60)
    first = api_reads.list_cases(svc, CITY, limit=50)
    assert [c["id"] for c in first["items"]] == want[:50]
    with captured(svc, "FROM dispute_case") as seen:
        deep = api_reads.list_cases(svc, CITY, cursor=first["next_cursor"], limit=50)
    assert [c["id"] for c in deep["items"]] == want[50:] and not deep["has_more"]
    stmt, params = next((st, p) for st, p in seen if "ORDER BY" in st and "dispute_case.updated_at >=" in st)
    text = plan(svc, stmt, params)
    assert_indexed(svc, text, INDEX)
    if svc.db.dialect == "sqlite":
        # a lower bound on the index: the scan starts at the cursor, not at the first case
        assert "updated_at>?" in text.replace(" ", ""), text
        assert "TEMP B-TREE" not in text, text  # read in index order, no sort
    else:
        cond = next(line for line in text.splitlines() if "Index Cond" in line)
        assert "updated_at >=" in cond, text
        assert "Sort" not in text, text


@pytest.mark.parametrize("bad", ["nope", api_reads.encode_cursor("x"), api_reads.encode_cursor(1, 2),
                                 api_reads.encode_cursor("2026-01-01T00:00:00", 3),
                                 api_reads.encode_cursor("2026-01-01T00:00:00+00:00", "3")])
def test_a_foreign_cursor_is_invalid_data(svc, fake_clock, bad):
    fake_clock.set(NOW)
    with pytest.raises(InvalidData):
        api_reads.list_cases(svc, CITY, cursor=bad)
