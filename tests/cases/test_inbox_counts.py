"""The inbox counts are capped (issue 16): one statement reads at most cap + 1 open items, so the
page costs the same whatever the backlog. Below the cap they are exact (equal to the uncapped
counts); past it the page says "99+" (here a cap of 3 over 5 open dispatch tasks) and shows no
per-state number. Both databases, no timing."""
from __future__ import annotations

import re

import pytest
from sqlalchemy import event

from grid.cases import service as cases
from tests.web_helpers import login, report_case, staff_id


@pytest.fixture
def backlog(app, fake_clock):
    svc = app.extensions["gridflow"]
    for i in range(5):
        report_case(svc, {"category": "municipal" if i < 3 else "neighbour"})
    return svc


def _counts(box: dict) -> tuple:
    return box["by_state"], box["by_category"], box["total"]


def test_below_the_cap_the_counts_are_exact(backlog):
    head = staff_id(backlog, "qiuyun")
    exact = cases.inbox(backlog, head)
    assert exact["total"] == 5 and exact["by_category"] == {"municipal": 3, "neighbour": 2}
    assert not exact["capped"]
    capped = cases.inbox(backlog, head, cap=5)
    assert _counts(capped) == _counts(exact) and not capped["capped"]
    for category, state in (("municipal", None), (None, "normal"), ("neighbour", "overdue")):
        a = cases.inbox(backlog, head, category=category, state=state)
        b = cases.inbox(backlog, head, category=category, state=state, cap=99)
        assert _counts(a) == _counts(b)


def test_past_the_cap_one_bounded_statement_counts(backlog):
    head = staff_id(backlog, "qiuyun")
    seen: list[str] = []

    def log(conn, cursor, statement, *a):
        seen.append(statement)

    event.listen(backlog.db.engine, "before_cursor_execute", log)
    try:
        box = cases.inbox(backlog, head, cap=3)
    finally:
        event.remove(backlog.db.engine, "before_cursor_execute", log)
    assert box["total"] == 4 and box["capped"] and box["cap"] == 3  # "3+"
    assert sum(box["by_state"].values()) == 4  # what was read: lower bounds
    assert len(box["items"]) == 5  # the list itself is paged, not capped
    counted = [x for x in seen if "count(" in x.lower()]
    assert len(counted) == 1 and len(re.findall(r"\bLIMIT\b", counted[0])) == 1
    inner = counted[0][counted[0].index("FROM (") + 6:]
    assert "ORDER BY" not in inner.split(") AS")[0]  # no sort: the database stops after cap + 1 rows


def test_the_inbox_page_says_99_plus_and_pages_without_a_total(app, backlog, monkeypatch):
    from web.ui import inbox

    monkeypatch.setattr(inbox, "COUNT_CAP", 3)
    monkeypatch.setattr(inbox, "PER_PAGE", 2)
    c = login(app, "qiuyun")
    page = c.get("/").get_data(as_text=True)
    assert '<span class="count">3+</span>' in page and "共 3+ 件待办" in page
    assert page.count('<span class="count">') == 1  # past the cap: no per-state or per-category number
    assert "第 1 页" in page and "第 1 页，共" not in page
    assert "?page=2" in page and "下一页" in page
    last = c.get("/?page=3").get_data(as_text=True)
    assert "第 3 页" in last and "下一页" not in last and "上一页" in last
    monkeypatch.setattr(inbox, "COUNT_CAP", 99)
    exact = c.get("/").get_data(as_text=True)
    assert "+</span>" not in exact and "第 1 页，共 3 页" in exact
    assert '<span class="count">5</span>' in exact and '<span class="count">3</span>' in exact  # all, municipal


def test_inbox_pages_are_cut_before_their_cases_are_read(backlog):
    """Five tasks reported at the same instant (equal due and creation times): pages of two cover
    them once each, in a fixed order (the id breaks ties), and a category filter still pages its
    own items only; the work items are sorted and cut to the page before their cases are joined."""
    head = staff_id(backlog, "qiuyun")
    whole = [r.task_guid for r in cases.inbox(backlog, head, limit=10)["items"]]
    paged = [r.task_guid for off in (0, 2, 4) for r in cases.inbox(backlog, head, limit=2, offset=off)["items"]]
    assert len(whole) == 5 and paged == whole
    municipal = [r for off in (0, 2) for r in cases.inbox(backlog, head, category="municipal", limit=2,
                                                              offset=off)["items"]]
    assert len(municipal) == 3 and {r.category for r in municipal} == {"municipal"}
    assert all(r.case_no for r in municipal)  # each row carries its case
    seen: list[str] = []
    listen = lambda conn, cur, st, *a: seen.append(" ".join(st.split()))  # noqa: E731
    event.listen(backlog.db.engine, "before_cursor_execute", listen)
    try:
        cases.inbox(backlog, head, limit=2)
    finally:
        event.remove(backlog.db.engine, "before_cursor_execute", listen)
    page = next(x for x in seen if x.startswith("SELECT work_item.task_guid"))
    inner = page[page.index("FROM (") + 6:]  # the ids subquery, cut to the page, reads no case
    assert "LIMIT" in inner[:inner.index(") AS")] and "dispute_case" not in inner[:inner.index(") AS")]
