"""The supervisors' late list: paging forward and back over 48 late cases, the handler and the
"already urged" mark on each case, the filter by unit, and the batch urge (one comment, many cases)."""
from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

from sqlalchemy import select, update

from engine.models import WorkItem
from grid.cases.models import CaseRecord, DisputeCase
from tests.web_helpers import csrf, login, report_case

NOW = datetime(2026, 1, 5, 8, 0, tzinfo=UTC)
SUP = "sup.420602003000"  # the street's supervisor


def make_late(svc, n: int) -> list[DisputeCase]:
    """n cases whose open work is overdue, the i-th by 100 - i hours (so the list order is known)."""
    out = []
    for i in range(n):
        c = report_case(svc, {"description": f"超期纠纷第{i + 1}件"})
        with svc.db.write() as s:
            s.execute(update(WorkItem).where(WorkItem.instance_id == c.instance_id, WorkItem.state == "open")
                      .values(warn_at=NOW - timedelta(hours=200 - i), due_at=NOW - timedelta(hours=100 - i)))
        out.append(c)
    return out


def case_nos(html: str) -> list[str]:
    return re.findall(r'<a href="/cases/\d+">(MD\d{14})</a>', html)


def test_late_list_pages_forward_and_back(app, svc, fake_clock):
    fake_clock.set(NOW)
    made = make_late(svc, 48)
    sup = login(app, SUP)
    first = sup.get("/late").get_data(as_text=True)
    assert case_nos(first) == [c.case_no for c in made[:40]]
    assert "下一页" in first and "上一页" not in first and "第 1 页，共 2 页" in first
    assert first.count("<textarea") == 41  # the batch comment and one per case, folded in <details>
    assert first.count('<details class="urge-one">') == 40
    second = sup.get("/late?page=2").get_data(as_text=True)
    assert case_nos(second) == [c.case_no for c in made[40:]]
    assert "上一页" in second and "下一页" not in second and 'href="/late"' in second
    assert "辖区内没有预警或超期的案件" not in second
    back = sup.get("/late").get_data(as_text=True)
    assert case_nos(back) == case_nos(first)


def test_late_list_handler_urged_mark_filter_and_batch_urge(app, svc, fake_clock):
    fake_clock.set(NOW)
    made = make_late(svc, 3)
    sup = login(app, SUP)
    html = sup.get("/late").get_data(as_text=True)
    handlers = re.findall(r'<span class="handler">承办：([^<]+)</span>', html)
    assert len(handlers) == 3 and not {"nobody", "无人"} & set(handlers), handlers
    assert "badge-urged" not in html
    # filter by unit: the one unit holding the late work, and a unit with none
    units = re.findall(r'<option value="(\d+)"', html)
    assert units, html
    assert case_nos(sup.get(f"/late?unit={units[0]}").get_data(as_text=True)) == [c.case_no for c in made]
    assert case_nos(sup.get("/late?unit=000000000000").get_data(as_text=True)) == []
    # batch urge: two cases, one comment; nothing without a comment or without a choice
    token = csrf(sup, "/late")
    r = sup.post("/late/urge", data={"csrf_token": token, "comment": "", "case_id": [made[0].id], "next": "/late"})
    assert r.status_code == 302
    r = sup.post("/late/urge", data={"csrf_token": token, "comment": "请今天处理", "next": "/late"})
    assert r.status_code == 302
    with svc.db.read() as s:
        assert not list(s.scalars(select(CaseRecord).where(CaseRecord.kind == "urge")))
    r = sup.post("/late/urge", data={"csrf_token": token, "comment": "请今天处理", "next": "/late",
                                     "case_id": [str(made[0].id), str(made[1].id)]})
    assert r.status_code == 302 and r.headers["Location"] == "/late"
    with svc.db.read() as s:
        urged = sorted(r.case_id for r in s.scalars(select(CaseRecord).where(CaseRecord.kind == "urge")))
    assert urged == sorted([made[0].id, made[1].id])
    html = sup.get("/late").get_data(as_text=True)
    assert html.count('class="badge badge-urged"') == 2
    # not for others
    head = login(app, "qiuyun")
    assert head.post("/late/urge", data={"csrf_token": csrf(head), "comment": "x",
                                         "case_id": made[2].id}).status_code == 403


def test_unit_counts_stop_at_their_cap_and_say_so(app, svc, fake_clock, monkeypatch):
    """Each unit's count in the picker reads at most UNIT_CAP index rows and shows "N+" past it;
    the total shows "+" past its own cap: the page costs the same for 100 late tasks or 100,000."""
    from grid.cases import late

    fake_clock.set(NOW)
    make_late(svc, 5)
    monkeypatch.setattr(late, "UNIT_CAP", 3)
    monkeypatch.setattr(late, "COUNT_CAP", 4)
    html = login(app, SUP).get("/late").get_data(as_text=True)
    assert re.search(r"（2\+）</option>", html), html
    assert "共 4+ 个预警或超期环节" in html
    monkeypatch.setattr(late, "UNIT_CAP", 100)
    monkeypatch.setattr(late, "COUNT_CAP", 1000)
    html = login(app, SUP).get("/late").get_data(as_text=True)
    assert re.search(r"（5）</option>", html) and "共 5 个预警或超期环节" in html, html


def test_the_late_list_reads_the_same_statements_for_one_unit_or_many(app, svc, fake_clock):
    """The picker's counts, the total and the handlers' names are one statement each, however many
    units below hold late work and however many pools the rows wait in: the page does not add a
    round trip per unit or per pool (a county has ~10 streets, the city 12 counties)."""
    from tests.web.test_request_statements import Statements

    fake_clock.set(NOW)
    made = make_late(svc, 2)  # 檀溪社区 (420602003005)
    other = report_case(svc, {"description": "另一个社区的超期纠纷"}, username="gw.420602003001001")
    with svc.db.write() as s:
        s.execute(update(WorkItem).where(WorkItem.instance_id == other.instance_id, WorkItem.state == "open")
                  .values(warn_at=NOW - timedelta(hours=9), due_at=NOW - timedelta(hours=3)))
    sup = login(app, SUP)
    sup.get("/late")
    seen = Statements(svc.db.engine)(lambda: sup.get("/late"))
    html = sup.get("/late").get_data(as_text=True)
    assert set(case_nos(html)) == {c.case_no for c in [*made, other]}
    assert len(re.findall(r'<option value="4206020030\d\d" >', html)) == 2, html  # two villages with late work
    assert len([x for x in seen if "FROM case_late" in x and "count(" in x]) == 2, seen  # picker, total
    pools = [x for x in seen if x.startswith("SELECT") and ("JOIN staff ON" in x or "JOIN staff_role ON" in x)]
    assert len(pools) == 1, pools  # two villages' grid heads, one read
