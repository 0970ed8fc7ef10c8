"""The case data checks (issue 12, item 5), on SQLite and PostgreSQL: a 重复件 names an existing
case in the dispatcher's jurisdiction and is linked both ways; a party's resident id names a
registered resident; repeat disputes are found by party and by distance and counted; the
现场化解情况 text is stored on the case and found by the archive search."""
from __future__ import annotations

from datetime import date, timedelta

import pytest
from sqlalchemy import func, select

from engine.errors import InvalidData, NotFound
from engine.models import WorkItem
from grid.cases import checks, rollup
from grid.cases import service as cases
from grid.cases.indicators import indicators
from grid.cases.models import CaseLink, CaseRecord, DisputeCase
from grid.org import demo
from tests.registry_helpers import FAR_GRID, SEED_GRID, household, person, sid

REPORTER, DISPATCHER, MEDIATOR = "jiangranran", "qiuyun", "med1.420602003005"
FAR_WORKER = f"gw.{FAR_GRID}"
DAY = date(2026, 1, 5)  # the fake clock's Monday


def report(svc, who: str = REPORTER, **data) -> DisputeCase:
    body = {"category": "neighbour", "description": "两户因房屋漏水赔偿争执", "location": {"text": "檀溪社区7栋"},
            "settled_on_spot": False, **data}
    return cases.report(svc, sid(svc, who), body)


def dispatch_item(svc, c: DisputeCase) -> WorkItem:
    with svc.db.read() as s:
        return s.scalar(select(WorkItem).where(WorkItem.instance_id == c.instance_id, WorkItem.state == "open",
                                               WorkItem.task_spec == "dispatch"))


def dispatch(svc, c: DisputeCase, **data) -> None:
    body = data or {"action": "dispatch", "assignees": [sid(svc, MEDIATOR)]}
    cases.complete_task(svc, sid(svc, DISPATCHER), dispatch_item(svc, c).task_guid, body)


def snapshot(svc, c: DisputeCase) -> tuple:
    with svc.db.read() as s:
        row = s.get(DisputeCase, c.id)
        return (row.status, row.result, row.duplicate_of, s.scalar(select(func.count()).select_from(CaseRecord)),
                s.scalar(select(func.count()).select_from(CaseLink)), dispatch_item(svc, c).task_guid)


def refused_on(excinfo, path: str) -> str:
    assert [e["path"] for e in excinfo.value.errors] == [path]
    return excinfo.value.errors[0]["message"]


# ---- 重复件 ------------------------------------------------------------------------------------
def test_a_duplicate_of_a_case_that_does_not_exist_is_refused_and_nothing_changes(fake_clock, svc):
    c = report(svc)
    before = snapshot(svc, c)
    with pytest.raises(InvalidData) as e:
        dispatch(svc, c, action="duplicate", duplicate_of="MD20260105999999")
    assert refused_on(e, "duplicate_of") == checks.NO_SUCH_CASE
    assert snapshot(svc, c) == before
    with pytest.raises(InvalidData) as e:
        dispatch(svc, c, action="duplicate", duplicate_of=c.case_no)  # itself
    refused_on(e, "duplicate_of")
    assert snapshot(svc, c) == before


def test_an_outsiders_case_is_refused_with_the_same_message(fake_clock, svc):
    far = report(svc, FAR_WORKER, description="樊城区某小区施工围挡占道", location={"text": "樊城区某小区"})
    c = report(svc)
    before = snapshot(svc, c)
    with pytest.raises(InvalidData) as outside:
        dispatch(svc, c, action="duplicate", duplicate_of=far.case_no)
    with pytest.raises(InvalidData) as missing:
        dispatch(svc, c, action="duplicate", duplicate_of="MD20260105999999")
    assert refused_on(outside, "duplicate_of") == refused_on(missing, "duplicate_of") == checks.NO_SUCH_CASE
    assert str(outside.value) == str(missing.value)
    assert snapshot(svc, c) == before
    with pytest.raises(InvalidData) as preview:  # the preview is no oracle either
        checks.duplicate_preview(svc, sid(svc, DISPATCHER), far.case_no)
    assert refused_on(preview, "duplicate_of") == checks.NO_SUCH_CASE


def test_a_real_duplicate_is_previewed_archived_and_linked_both_ways(fake_clock, svc):
    first = report(svc, description="小区门口施工围挡占道")
    second = report(svc, description="北门施工围挡影响通行（重复反映）")
    disp = sid(svc, DISPATCHER)
    shown = checks.duplicate_preview(svc, disp, f" {first.case_no} ", case_id=second.id)
    assert (shown["case_no"], shown["description"], shown["status"]) == (first.case_no, "小区门口施工围挡占道", "open")
    assert "parties" not in shown
    dispatch(svc, second, action="duplicate", duplicate_of=first.case_no)
    with svc.db.read() as s:
        assert s.get(DisputeCase, second.id).result == "duplicate"
    to = checks.links(svc, disp, second.id)
    back = checks.links(svc, disp, first.id)
    assert [(x["kind"], x["direction"], x["case_no"]) for x in to] == [("duplicate", "to", first.case_no)]
    assert [(x["kind"], x["direction"], x["case_no"]) for x in back] == [("duplicate", "from", second.case_no)]
    assert [x["case_no"] for x in cases.case_detail(svc, disp, first.id)["links"]] == [second.case_no]
    with pytest.raises(NotFound):  # an outsider sees neither case nor its links
        checks.links(svc, sid(svc, FAR_WORKER), first.id)


# ---- parties -----------------------------------------------------------------------------------
def _resident(svc, grid: str, address: str, name: str, seq: int) -> int:
    hid = household(svc, None, grid, address)
    return person(svc, None, hid, name, date(1970, 1, 1), seq)


def test_a_party_resident_id_must_exist_in_the_reporters_jurisdiction(fake_clock, svc):
    here = _resident(svc, SEED_GRID, "檀溪路1号", "张三", 11)
    far = _resident(svc, FAR_GRID, "樊城路1号", "李四", 13)
    with svc.db.read() as s:
        count = s.scalar(select(func.count()).select_from(DisputeCase))
    for bad in (here + far + 1000, far, 2**40):
        with pytest.raises(InvalidData) as e:
            report(svc, parties=[{"name": "王五"}, {"name": "某人", "resident_id": bad}])
        assert refused_on(e, "parties/1/resident_id") == checks.NO_SUCH_RESIDENT
    with svc.db.read() as s:
        assert s.scalar(select(func.count()).select_from(DisputeCase)) == count  # nothing was created
    c = report(svc, parties=[{"name": "张三", "resident_id": here}, {"name": "王五"}])
    assert c.parties[0]["resident_id"] == here


# ---- repeat disputes ---------------------------------------------------------------------------
def _repeat_records(svc, c: DisputeCase) -> list[CaseRecord]:
    with svc.db.read() as s:
        return list(s.scalars(select(CaseRecord).where(CaseRecord.case_id == c.id, CaseRecord.kind == "repeat")))


def test_repeats_by_party_and_by_distance_are_counted_and_the_rebuild_agrees(fake_clock, svc):
    rid = _resident(svc, SEED_GRID, "檀溪路2号", "赵六", 15)
    disp = sid(svc, DISPATCHER)
    a = report(svc, parties=[{"name": "赵六", "resident_id": rid}])
    dispatch(svc, a)
    fake_clock.advance(timedelta(hours=1))
    b = report(svc, category="family", description="赵六家中再起争执", parties=[{"name": "赵六", "resident_id": rid}])
    assert [(x["case_no"], x["reasons"]) for x in checks.repeats(svc, disp, b.id)] == [(a.case_no, ["party"])]
    dispatch(svc, b)
    assert len(_repeat_records(svc, b)) == 1 and _repeat_records(svc, a) == []
    assert _repeat_records(svc, b)[0].data["of"] == [a.case_no]

    near = {"text": "檀溪社区北门", "lat": 32.0, "lng": 112.1}
    c = report(svc, category="municipal", description="施工噪音扰民", location=near)
    dispatch(svc, c)
    close = {"text": "檀溪社区北门东侧", "lat": 32.0009, "lng": 112.1}  # about 100 m north
    far = {"text": "檀溪社区南门", "lat": 32.005, "lng": 112.1}  # about 550 m
    d = report(svc, category="municipal", description="施工噪音仍未停止", location=close)
    e = report(svc, category="municipal", description="另一处施工噪音", location=far)
    f = report(svc, category="labour", description="施工队拖欠工资", location=close)  # same place, other category
    assert [(x["case_no"], x["reasons"]) for x in checks.repeats(svc, disp, d.id)] == [(c.case_no, ["nearby"])]
    assert checks.repeats(svc, disp, e.id) == [] and checks.repeats(svc, disp, f.id) == []
    for x in (d, e, f):
        dispatch(svc, x)
    assert [len(_repeat_records(svc, x)) for x in (c, d, e, f)] == [0, 1, 0, 0]
    # settled on the spot is accepted too: a repeat then
    g = report(svc, category="municipal", description="施工噪音又起", location=close, settled_on_spot=True,
               spot_result="与施工方协商调整作业时间")
    assert len(_repeat_records(svc, g)) == 1
    # a 重复件 is never accepted, so it is not a repeat dispute
    h = report(svc, category="municipal", description="施工噪音（重复反映）", location=close)
    dispatch(svc, h, action="duplicate", duplicate_of=d.case_no)
    assert _repeat_records(svc, h) == []
    # outside the window of GRIDFLOW_REPEAT_DAYS an earlier case is no repeat
    fake_clock.advance(timedelta(days=91))
    late = report(svc, category="municipal", description="施工噪音又来了", location=close)
    assert checks.repeats(svc, disp, late.id) == []

    v = indicators(svc, disp, demo.SEED_VILLAGE, DAY, DAY)
    assert v["repeats"] == 3  # b (party), d (nearby), g (settled on the spot, nearby)
    with svc.db.write() as s:
        assert rollup.rebuild(s, svc.runtime.calendar, check=True) == []


def test_the_repeat_distance_and_window_are_configurable(fake_clock, svc, monkeypatch):
    disp = sid(svc, DISPATCHER)
    c = report(svc, category="municipal", location={"text": "北门", "lat": 32.0, "lng": 112.1})
    fake_clock.advance(timedelta(days=10))
    d = report(svc, category="municipal", location={"text": "北门东侧", "lat": 32.0009, "lng": 112.1})
    assert len(checks.repeats(svc, disp, d.id)) == 1
    monkeypatch.setenv("GRIDFLOW_REPEAT_METERS", "50")
    assert checks.repeats(svc, disp, d.id) == []
    monkeypatch.setenv("GRIDFLOW_REPEAT_METERS", "200")
    monkeypatch.setenv("GRIDFLOW_REPEAT_DAYS", "7")
    assert checks.repeats(svc, disp, d.id) == []
    assert c.id != d.id


# ---- 现场化解情况 --------------------------------------------------------------------------------
def test_the_settlement_text_is_stored_shown_and_found_by_the_archive_search(fake_clock, svc):
    c = report(svc, description="楼上楼下因噪音争吵", settled_on_spot=True, spot_result="双方握手言和，约定晚十点后不再装修")
    disp = sid(svc, DISPATCHER)
    detail = cases.case_detail(svc, disp, c.id)
    assert detail["case"].status == "archived"
    assert detail["settlement"] == detail["case"].settlement == "双方握手言和，约定晚十点后不再装修"
    found = cases.search_archive(svc, disp, text="握手言和")
    assert [x.id for x in found["items"]] == [c.id]
    assert cases.search_archive(svc, disp, text="握手言欢")["items"] == []
    plain = report(svc, description="另一起邻里争执")
    with svc.db.read() as s:
        assert s.get(DisputeCase, plain.id).settlement is None


def test_a_busy_corner_lists_only_the_newest_repeats(fake_clock, svc, monkeypatch):
    """Years of reports at one market corner: the repeat list and the `repeat` record name the
    newest earlier cases, cut at the limit, whichever map cell each lies in."""
    monkeypatch.setattr(checks, "REPEAT_LIMIT", 4)
    disp = sid(svc, DISPATCHER)
    spots = [{"text": "菜市场西口", "lat": 32.0249, "lng": 112.1449},  # the cell edges run at 0.005°
             {"text": "菜市场东口", "lat": 32.0251, "lng": 112.1451}]
    made = []
    for i in range(7):
        made.append(report(svc, category="municipal", description=f"占道经营第{i + 1}次", location=spots[i % 2]))
        fake_clock.advance(timedelta(hours=1))
    assert checks.geo_cell(32.0249, 112.1449) != checks.geo_cell(32.0251, 112.1451)
    last = report(svc, category="municipal", description="占道经营又起", location=spots[0])
    got = checks.repeats(svc, disp, last.id)
    assert [x["case_no"] for x in got] == [c.case_no for c in made[-4:]]  # the newest four, oldest first
    assert all(x["reasons"] == ["nearby"] for x in got)
    dispatch(svc, last)
    assert _repeat_records(svc, last)[0].data["of"] == [c.case_no for c in made[-4:]]
