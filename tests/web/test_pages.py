"""Inbox (due order, badges, filters with counts), late list and urging, case page (summary,
timeline, attachments, diagram), archive search, language and time zone."""
from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

from sqlalchemy import select, update

from engine.models import WorkItem
from grid.cases.models import CaseRecord, DisputeCase
from tests.web_helpers import csrf, dispatch, login, report_case

NOW = datetime(2026, 1, 5, 8, 0, tzinfo=UTC)  # Monday 16:00 in Beijing

def _set_times(svc, case_id: int, warn: timedelta | None, due: timedelta | None) -> None:
    """Move a case's open work items' warning/due times relative to now (the timers are not swept)."""
    with svc.db.write() as s:
        c = s.get(DisputeCase, case_id)
        s.execute(update(WorkItem).where(WorkItem.instance_id == c.instance_id, WorkItem.state == "open")
                  .values(warn_at=NOW + warn if warn is not None else None, due_at=NOW + due if due is not None else None))


def _inbox_case_order(html: str) -> list[str]:
    return re.findall(r"· (MD\d{14})</a>", html)


def test_inbox_sorted_by_due_with_badges_filters_and_counts(app, svc, fake_clock):
    fake_clock.set(NOW)
    late = report_case(svc, {"category": "neighbour", "description": "邻里噪音纠纷，已超期未办"})
    warned = report_case(svc, {"category": "municipal", "description": "市政施工纠纷，已过预警时间"})
    fine = report_case(svc, {"category": "municipal", "description": "市政施工纠纷，时间充裕"})
    _set_times(svc, late.id, timedelta(days=-3), timedelta(hours=-2))
    _set_times(svc, warned.id, timedelta(hours=-1), timedelta(days=1))
    _set_times(svc, fine.id, timedelta(days=2), timedelta(days=4))
    client = login(app, "qiuyun")
    html = client.get("/").get_data(as_text=True)
    assert _inbox_case_order(html) == [late.case_no, warned.case_no, fine.case_no]
    assert html.count("badge badge-overdue") >= 2 and html.count("badge badge-warning") >= 2  # chips + items
    assert re.search(r'<li class="item state-overdue">.*?' + late.case_no, html, re.S)
    assert "已超期 2小时" in html and "剩余 1天" in html
    assert "共 3 件待办" in html
    assert re.search(r'市政施工<span class="count">2</span>', html) and re.search(r'邻里纠纷<span class="count">1</span>', html)
    only = client.get("/?state=overdue").get_data(as_text=True)
    assert _inbox_case_order(only) == [late.case_no]
    cat = client.get("/?category=municipal").get_data(as_text=True)
    assert _inbox_case_order(cat) == [warned.case_no, fine.case_no]
    both = client.get("/?category=municipal&state=warning").get_data(as_text=True)
    assert _inbox_case_order(both) == [warned.case_no]
    # other people's inboxes: the grid worker has none of these, the community mediators neither
    assert not _inbox_case_order(login(app, "jiangranran").get("/").get_data(as_text=True))


def test_supervisor_late_list_and_urge(app, svc, fake_clock):
    fake_clock.set(NOW)
    late = report_case(svc, {"description": "超期未派件的纠纷"})
    fine = report_case(svc, {"description": "时间充裕的纠纷"})
    _set_times(svc, late.id, timedelta(days=-1), timedelta(hours=-1))
    sup = login(app, "sup.420602003000")  # the street's supervisor: the community is in the subtree
    html = sup.get("/late").get_data(as_text=True)
    assert late.case_no in html and fine.case_no not in html
    r = sup.post(f"/cases/{late.id}/urge", data={"comment": "", "csrf_token": csrf(sup), "next": "/late"})
    assert r.status_code == 302
    r = sup.post(f"/cases/{late.id}/urge", data={"comment": "请今天内派件", "csrf_token": csrf(sup), "next": "/late"})
    assert r.status_code == 302 and r.headers["Location"] == "/late"
    with svc.db.read() as s:
        urges = list(s.scalars(select(CaseRecord).where(CaseRecord.case_id == late.id, CaseRecord.kind == "urge")))
    assert [u.data["comment"] for u in urges] == ["请今天内派件"]
    page = sup.get(f"/cases/{late.id}").get_data(as_text=True)
    assert "请今天内派件" in page and "催办" in page
    # not for others: a grid head has no late list and cannot urge
    head = login(app, "qiuyun")
    assert head.get("/late").status_code == 403
    assert head.post(f"/cases/{late.id}/urge", data={"comment": "x", "csrf_token": csrf(head)}).status_code == 403
    other = login(app, "sup.420606000000")  # the other county's supervisor
    assert late.case_no not in other.get("/late").get_data(as_text=True)
    assert other.post(f"/cases/{late.id}/urge", data={"comment": "x", "csrf_token": csrf(other)}).status_code == 404


def test_case_page(app, svc, fake_clock):
    fake_clock.set(NOW)
    c = report_case(svc)
    fake_clock.advance(timedelta(hours=1))
    dispatch(svc, c.id)
    client = login(app, "sup.420602003000")
    html = client.get(f"/cases/{c.id}").get_data(as_text=True)
    # summary: level, handler, due times (Beijing time)
    assert "村（社区）级 · 檀溪社区" in html
    assert html.count("承办: ") == 2 and "预警时间" in html and "办理时限" in html
    assert "2026-01-05 16:00 · 江冉冉" in html  # reported at 08:00 UTC = 16:00 in Beijing
    # timeline: who, when, what
    assert re.search(r"2026-01-05 17:00</time> · 邱云</div>\s*<div class=\"what\">派件</div>", html)
    assert "上报立案" in html and "进入村（社区）级办理：檀溪社区" in html and "派件给 " in html
    # parties masked for a supervisor, who only follows the case
    assert "138****0001" in html and "13800000001" not in html
    assert f'data-src="/cases/{c.id}/diagram.json"' in html
    assert "/static/vendor/bpmn-js/bpmn-navigated-viewer.production.min.js" in html
    diagram = client.get(f"/cases/{c.id}/diagram.json").get_json()["diagrams"]
    assert [d["process_id"] for d in diagram] == ["dispute_case", "handle_level"]
    assert diagram[0]["xml"].startswith("<?xml") and 'id="dispute_case"' in diagram[0]["xml"]
    assert diagram[1]["states"]["mediate"] == "READY" and diagram[1]["states"]["dispatch"] == "COMPLETED"
    assert diagram[0]["states"]["call_handle_level"] == "STARTED"
    assert "mediate" not in diagram[0]["states"]


def test_archive_search(app, svc, fake_clock):
    fake_clock.set(NOW)
    settled = {"settled_on_spot": True, "spot_result": "当场调解成功"}
    a = report_case(svc, {**settled, "category": "neighbour", "description": "楼上漏水引发邻里纠纷"})
    fake_clock.advance(timedelta(days=3))
    b = report_case(svc, {**settled, "category": "municipal", "description": "路灯施工扰民纠纷"})
    open_case = report_case(svc, {"description": "尚未办结的漏水纠纷"})
    client = login(app, "qiuyun")

    def found(**q) -> list[str]:
        return re.findall(r'<a href="/cases/\d+">(MD\d{14})</a>', client.get("/archive", query_string=q).get_data(as_text=True))

    assert sorted(found()) == sorted([a.case_no, b.case_no])
    assert found(q="漏水") == [a.case_no]  # the open case is not in the archive
    assert found(category="municipal") == [b.case_no]
    assert sorted(found(unit="420602003005")) == sorted([a.case_no, b.case_no])
    assert found(unit="420602003001") == []
    assert found(**{"from": "2026-01-06"}) == [b.case_no]
    assert found(to="2026-01-05") == [a.case_no]
    assert found(q=a.case_no) == [a.case_no]
    assert open_case.case_no not in client.get("/archive").get_data(as_text=True)
    html = client.get("/archive").get_data(as_text=True)
    assert "共找到 2 件已归档案件" in html and "现场化解" in html


def test_archive_paginates(app, svc):
    settled = {"settled_on_spot": True, "spot_result": "当场调解成功"}
    numbers = [report_case(svc, {**settled, "description": f"第{i}件现场化解的纠纷"}).case_no for i in range(23)]
    client = login(app, "qiuyun")
    p1 = client.get("/archive?q=现场化解").get_data(as_text=True)
    p2 = client.get("/archive?q=现场化解&page=2").get_data(as_text=True)
    got = re.findall(r'<a href="/cases/\d+">(MD\d{14})</a>', p1) + re.findall(r'<a href="/cases/\d+">(MD\d{14})</a>', p2)
    assert len(re.findall(r"MD\d{14}</a>", p1)) == 20 and sorted(got) == sorted(numbers)
    assert "第 1 页，共 2 页" in p1 and "page=2" in p1 and "q=%E7%8E%B0" in p1


def test_language_setting(app, svc):
    client = login(app, "jiangranran")
    assert "我的待办" in client.get("/").get_data(as_text=True)
    r = client.post("/settings", data={"locale": "en", "csrf_token": csrf(client)})
    assert r.status_code == 302
    html = client.get("/").get_data(as_text=True)
    assert "My tasks" in html and "我的待办" not in html and '<html lang="en">' in html
    c = report_case(svc)
    case_html = client.get(f"/cases/{c.id}").get_data(as_text=True)
    assert "Municipal works" in case_html and "Case reported" in case_html  # form titles in English too
    assert client.post("/settings", data={"locale": "fr", "csrf_token": csrf(client)}).status_code == 422
    client.post("/settings", data={"locale": "zh_CN", "csrf_token": csrf(client)})
    assert "我的待办" in client.get("/").get_data(as_text=True)
    # the login page can switch language before signing in
    anon = app.test_client()
    assert "Sign in" in anon.get("/login?lang=en").get_data(as_text=True)


def test_navigation_follows_roles(app):
    gw = login(app, "jiangranran").get("/").get_data(as_text=True)
    assert 'href="/report"' in gw and 'href="/late"' not in gw and 'href="/admin/versions"' not in gw
    sup = login(app, "sup.420602003000").get("/").get_data(as_text=True)
    assert 'href="/late"' in sup and 'href="/report"' not in sup and 'href="/admin/versions"' not in sup
    assert 'href="/archive"' in sup and 'href="/settings"' in sup


def test_not_found_and_forbidden_pages(app, svc):
    client = login(app, "jiangranran")
    r = client.get("/cases/999999")
    assert r.status_code == 404 and "不在您的管辖范围内" in r.get_data(as_text=True)
    assert client.get("/tasks/no-such-task").status_code == 404
    assert client.get("/attachments/no-such-file").status_code == 404
    assert login(app, "qiuyun").get("/late").status_code == 403
