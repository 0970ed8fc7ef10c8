"""The late list, the archive search and a resident's cases are answered from their indexes, on
both databases, so a refactor cannot silently fall back to a scan that grows with history.

Not timed: the SQL each service function issues is captured and replayed under EXPLAIN QUERY
PLAN (SQLite) / EXPLAIN (PostgreSQL, with seq scans priced out, since a test database is small
enough for any plan), and the plan must name the index and scan none of the big tables.
"""
from __future__ import annotations

from contextlib import contextmanager
from datetime import UTC, datetime, timedelta

from sqlalchemy import event, select, update

from engine.models import WorkItem
from grid.cases import parties
from grid.cases import service as cases
from grid.cases.models import CaseLate
from tests.web_helpers import report_case, staff_id

NOW = datetime(2026, 1, 5, 8, 0, tzinfo=UTC)
SETTLED = {"settled_on_spot": True, "spot_result": "当场调解成功"}
BIG = ("dispute_case", "work_item", "instance_event", "case_record")


@contextmanager
def captured(svc, marker: str):
    """Collect (statement, parameters) of every statement mentioning `marker`."""
    seen: list[tuple[str, object]] = []

    def hook(conn, cursor, statement, parameters, context, executemany):
        if marker in statement and not executemany:
            seen.append((statement, parameters))

    event.listen(svc.db.engine, "before_cursor_execute", hook)
    try:
        yield seen
    finally:
        event.remove(svc.db.engine, "before_cursor_execute", hook)


def plan(svc, statement: str, parameters) -> str:
    """The query plan of one captured statement, as one text."""
    with svc.db.engine.connect() as conn:
        if svc.db.dialect == "sqlite":
            rows = conn.exec_driver_sql("EXPLAIN QUERY PLAN " + statement, parameters).all()
            return "\n".join(r[-1] for r in rows)
        conn.exec_driver_sql("SET enable_seqscan = off")
        rows = conn.exec_driver_sql("EXPLAIN " + statement, parameters).all()
        return "\n".join(r[0] for r in rows)


def assert_indexed(svc, text: str, index: str) -> None:
    assert index in text, text
    for t in BIG:
        if svc.db.dialect == "sqlite":
            assert f"SCAN {t}\n" not in text + "\n" and f"SCAN {t} " not in text, text
        else:
            assert f"Seq Scan on {t}" not in text, text


def make_late(svc, n: int) -> list:
    out = []
    for i in range(n):
        c = report_case(svc, {"description": f"超期纠纷第{i + 1}件"})
        with svc.db.write() as s:  # the trigger carries the new times into case_late
            s.execute(update(WorkItem).where(WorkItem.instance_id == c.instance_id, WorkItem.state == "open")
                      .values(warn_at=NOW - timedelta(hours=200 - i), due_at=NOW - timedelta(hours=100 - i)))
        out.append(c)
    return out


def test_late_list_reads_its_index(svc, fake_clock):
    fake_clock.set(NOW)
    made = make_late(svc, 3)
    report_case(svc, {"description": "还没到预警时间"})
    for who in ("sup.420602003000", "sup.420602000000"):
        with captured(svc, "case_late") as seen:
            rows = cases.late_in_jurisdiction(svc, staff_id(svc, who), limit=41)
        assert [r.case_no for r in rows] == [c.case_no for c in made]
        stmt, params = seen[-1]
        text = plan(svc, stmt, params)
        assert_indexed(svc, text, "ix_case_late_scope_due")
        if svc.db.dialect == "sqlite":
            assert "TEMP B-TREE" not in text, text  # read in due order, no sort of the late set


def test_late_index_follows_the_steps(svc, fake_clock):
    fake_clock.set(NOW)
    c = make_late(svc, 1)[0]
    with svc.db.read() as s:
        scopes = sorted(s.scalars(select(CaseLate.scope).where(CaseLate.case_id == c.id)))
    assert scopes == ["420600000000/", "420600000000/420602000000/", "420600000000/420602000000/420602003000/",
                      "420600000000/420602000000/420602003000/420602003005/",
                      "420600000000/420602000000/420602003000/420602003005/420602003005015/"]
    svc.runtime.cancel(c.instance_id, actor="test")
    with svc.db.read() as s:
        assert s.scalars(select(CaseLate).where(CaseLate.case_id == c.id)).all() == []


def test_archive_search_reads_the_full_text_index(svc):
    hit = report_case(svc, {**SETTLED, "description": "楼上漏水引发邻里纠纷"})
    report_case(svc, {**SETTLED, "description": "物业费上涨引发纠纷"})
    me = staff_id(svc, "qiuyun")
    for q in ("漏水", "漏", "楼上漏水引发"):
        with captured(svc, "case_search") as seen:
            found = cases.search_archive(svc, me, text=q)
        assert [x.case_no for x in found["items"]] == [hit.case_no], q
        assert found["total"] == 1 and not found["has_next"]
        stmt, params = next(x for x in seen if "MATCH" in x[0] or "@@" in x[0])  # the page's text query
        text = plan(svc, stmt, params)
        index = "case_fts VIRTUAL TABLE" if svc.db.dialect == "sqlite" else "case_search"
        assert_indexed(svc, text, index)
        assert "DESCRIPTION LIKE" not in stmt.upper()  # no substring scan of the text


def test_resident_cases_read_the_party_link(svc):
    from datetime import date

    from tests.registry_helpers import SEED_GRID, household, person, sid

    worker = sid(svc, "jiangranran")
    hh = household(svc, worker, SEED_GRID, "檀溪路9号")
    zhang, li = person(svc, worker, hh, "张三", date(1970, 1, 1), 11), person(svc, worker, hh, "李四", date(1972, 2, 2), 12,
                                                                       relation="spouse")
    c = report_case(svc, {"parties": [{"name": "张三", "resident_id": zhang}, {"name": "李四", "resident_id": li}]})
    report_case(svc, {"parties": [{"name": "王五"}]})
    with captured(svc, "case_party") as seen:
        assert [x.id for x in parties.resident_cases(svc, None, zhang)] == [c.id]
    assert [x.id for x in parties.resident_cases(svc, None, li)] == [c.id]
    stmt, params = seen[0]
    assert_indexed(svc, plan(svc, stmt, params), "case_party")


def test_repeat_detection_reads_the_newest_cases_of_each_map_cell(svc, fake_clock):
    """A report at a corner with earlier cases of its category: the nearby read is a range of
    ix_dispute_case_cell cut at REPEAT_LIMIT rows, not every case of the category in a band."""
    from grid.cases import checks
    from grid.cases.models import DisputeCase

    fake_clock.set(NOW)
    spot = {"text": "檀溪社区北门", "lat": 32.0213, "lng": 112.1432}
    for i in range(3):
        report_case(svc, {**SETTLED, "category": "municipal", "description": f"施工噪音第{i + 1}次", "location": spot})
        fake_clock.advance(timedelta(minutes=5))
    c = report_case(svc, {**SETTLED, "category": "municipal", "description": "施工噪音又起", "location": spot})
    with svc.db.read() as s, captured(svc, "geo_cell") as seen:
        found = checks.find_repeats(s, s.get(DisputeCase, c.id))
    assert len(found) == 3 and all(why == ["nearby"] for _o, why in found)
    reads = [(stmt, p) for stmt, p in seen if "dispute_case.geo_cell = " in stmt]
    assert reads and all("LIMIT" in stmt.upper() for stmt, _p in reads)
    for stmt, params in reads:
        assert_indexed(svc, plan(svc, stmt, params), "ix_dispute_case_cell")


def test_open_cases_under_a_unit_are_an_index_range_of_their_paths(svc, fake_clock):
    """The grouped map counts open cases per child unit: on both databases a range of
    ix_dispute_case_status_unit_path on (status, path prefix), not every open case filtered (on
    PostgreSQL the pattern opclass makes the prefix LIKE a range in any collation)."""
    from grid.cases import case_map
    from grid.org import service as org
    from grid.org.models import OrgUnit

    report_case(svc, {**SETTLED})
    c = report_case(svc, {"description": "楼道堆物引发邻里纠纷，尚未化解"})
    with svc.db.read() as s, captured(svc, "count(*)") as seen:
        county = s.get(OrgUnit, "420602000000")
        counts = case_map._open_counts(s, org.children(s, county.code))
    assert sum(counts.values()) == 1 and counts["420600000000/420602000000/420602003000/"] == 1
    assert c.status == "open" and seen
    for stmt, params in seen:
        if svc.db.dialect == "sqlite":
            text = plan(svc, stmt, params)
        else:  # a near-empty table may pick the other index led by status: set it aside, in a rollback
            with svc.db.engine.connect() as conn, conn.begin() as tx:
                conn.exec_driver_sql("DROP INDEX ix_dispute_case_archived")
                conn.exec_driver_sql("SET LOCAL enable_seqscan = off")
                text = "\n".join(r[0] for r in conn.exec_driver_sql("EXPLAIN " + stmt, params).all())
                tx.rollback()
        assert_indexed(svc, text, "ix_dispute_case_status_unit_path")
        if svc.db.dialect == "sqlite":
            assert "unit_path>" in text.replace(" ", ""), text
        else:
            assert "unit_path ~>=~" in text, text


def test_my_reports_read_the_newest_of_the_reporter_index(svc, fake_clock):
    """我上报的: the person's newest reports are an index range read backwards and cut to a window
    (ix_dispute_case_reporter_id = reporter_id, id), then checked against the jurisdiction: no sort
    of every report she ever filed. Pages still cover each report once."""
    from grid.cases import lists

    fake_clock.set(NOW)
    made = [report_case(svc, {"description": f"第{i}件：楼道堆放杂物引发邻里争执"}) for i in range(5)]
    me = staff_id(svc, "jiangranran")
    with captured(svc, "reporter_id") as seen:
        first = lists.my_reports(svc, me, per_page=2)
    assert [r.case_id for r in first.rows] == [made[4].id, made[3].id] and first.has_next
    pages = [r.case_id for p in (1, 2, 3) for r in lists.my_reports(svc, me, page=p, per_page=2).rows]
    assert pages == [c.id for c in reversed(made)]
    assert [r.case_id for r in lists.my_reports(svc, staff_id(svc, "qiuyun")).rows] == []  # not hers
    stmt, params = seen[0]
    inner = stmt[stmt.index("(SELECT") + 1:stmt.index(") AS")]  # the window: the reporter's newest, no path
    assert "reporter_id" in inner and "LIMIT" in inner and "unit_path" not in inner, stmt
    text = plan(svc, stmt, params)
    assert_indexed(svc, text, "ix_dispute_case_reporter_id")
    if svc.db.dialect == "postgresql":
        assert "Index Scan Backward using ix_dispute_case_reporter_id" in text or \
            "Index Only Scan Backward using ix_dispute_case_reporter_id" in text, text
    else:
        assert "USE TEMP B-TREE FOR ORDER BY" not in text.split("ix_dispute_case_reporter_id")[0], text
