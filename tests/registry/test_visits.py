"""Special populations and their visit schedule (workflows/special_visit.bpmn) under a fake clock:
the first visit, the recurring schedule, the overdue warning to the grid head, unflagging, moving
to another grid, the risk level, renewal, and a visit that opens a dispute case."""
from __future__ import annotations

from datetime import date, timedelta
from pathlib import Path
from types import SimpleNamespace

import pytest
from SpiffWorkflow.spiff.parser.process import VALIDATOR, SpiffBpmnParser
from sqlalchemy import select

from engine import dmncheck
from engine.deploy import Bundle, parse_bundle
from engine.errors import Conflict, DeployError, InvalidData, NotFound
from engine.models import Instance, WorkItem
from engine.sandbox import SandboxedScriptEngine
from grid.cases import parties
from grid.cases import service as cases
from grid.cases.models import DisputeCase
from grid.errors import Forbidden
from grid.org import demo
from grid.registry import households, visits
from grid.registry import pages as registry_pages
from grid.registry.models import CATEGORIES, RISK_LEVELS, ResidentEvent, SpecialFlag
from tests.query_helpers import rows
from tests.registry_helpers import (
    FAR_GRID,
    OTHER_GRID,
    SEED_GRID,
    first_with_role,
    household,
    make_id,
    open_items,
    sid,
)

VISIT = {"met": True, "condition": "stable", "notes": "在家，情绪稳定", "follow_up": False, "open_case": False}
DAY = timedelta(days=1)
ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def flagged(reg):
    """A resident of the seed grid flagged 社区矫正人员 / high risk: visits every 7 days, 2 days' lead."""
    gw = sid(reg, "jiangranran")
    hid = household(reg, gw, SEED_GRID, "檀溪路3号", "1-201")
    rid = households.move_in(reg, gw, hid, name="赵六", id_number=make_id("420602", date(1985, 6, 1), 51),
                             relation="head", phone="13900001111")
    fid = visits.flag(reg, gw, rid, "community_correction", "high", note="判处缓刑")
    return {"gw": gw, "head": sid(reg, "qiuyun"), "rid": rid, "fid": fid, "hid": hid}


def flag_row(svc, fid: int) -> SpecialFlag:
    with svc.db.read() as s:
        return s.get(SpecialFlag, fid)


def open_visits(svc, fid: int) -> list[WorkItem]:
    return open_items(svc, flag_row(svc, fid).instance_id, "visit")


def do_visit(svc, who: str, fid: int, data: dict | None = None):
    (wi,) = open_visits(svc, fid)
    return cases.complete_task(svc, who, wi.task_guid, data or VISIT)


def resident_events(svc, rid: int, kind: str | None = None) -> list[ResidentEvent]:
    return rows(svc, ResidentEvent, ResidentEvent.id, kind, resident_id=rid)


def test_flagging_opens_the_first_visit_for_the_grid_worker(reg, flagged, fake_clock):
    f = flag_row(reg, flagged["fid"])
    assert f.active and f.instance_id and f.category == "community_correction" and f.visits == 0
    (wi,) = open_visits(reg, flagged["fid"])
    assert (wi.unit_id, wi.role, wi.user_id, wi.form) == (SEED_GRID, "grid_worker", None, "visit.json")
    assert wi.due_at == fake_clock.current + 2 * DAY == f.next_due_at  # the first visit: within lead_days
    with reg.db.read() as s:
        assert cases.can_act(s, flagged["gw"], wi) and not cases.can_act(s, flagged["head"], wi)
    with pytest.raises(Forbidden):
        cases.complete_task(reg, flagged["head"], wi.task_guid, VISIT)
    assert [e.kind for e in resident_events(reg, flagged["rid"])] == ["move_in", "flag"]
    ctx = visits.visit_context(reg, [wi.instance_id])[wi.instance_id]
    assert ctx["resident_name"] == "赵六" and ctx["category_name"] == "社区矫正人员"


def test_the_schedule_fires_with_the_clock(reg, flagged, fake_clock):
    fid, gw = flagged["fid"], flagged["gw"]
    t0 = fake_clock.current
    do_visit(reg, gw, fid, {**VISIT, "follow_up": True, "follow_up_note": "下周回访", "photos": ["att-1"]})
    f = flag_row(reg, fid)
    assert (f.visits, f.last_visit_at, f.next_due_at) == (1, t0, t0 + 7 * DAY)
    assert open_visits(reg, fid) == []
    (ev,) = resident_events(reg, flagged["rid"], "visit")
    assert ev.actor == gw and ev.after["condition"] == "stable" and ev.after["follow_up_note"] == "下周回访"
    assert ev.after["visit_no"] == 1 and ev.after["photos"] == ["att-1"]
    fake_clock.advance(5 * DAY - timedelta(minutes=1))  # the next visit opens 2 days before it is due
    reg.runtime.sweep()
    assert open_visits(reg, fid) == []
    fake_clock.advance(2 * timedelta(minutes=1))
    reg.runtime.sweep()
    (wi,) = open_visits(reg, fid)
    assert wi.due_at == t0 + 7 * DAY and wi.unit_id == SEED_GRID
    view = registry_pages.grid_overview(reg, gw, SEED_GRID)
    assert [(v["name"], v["due_at"], v["overdue"]) for v in view.due_visits] == [("赵六", t0 + 7 * DAY, False)]
    do_visit(reg, gw, fid)
    assert flag_row(reg, fid).visits == 2 and flag_row(reg, fid).next_due_at == fake_clock.current + 7 * DAY


def test_an_overdue_visit_warns_the_grid_head(reg, flagged, fake_clock):
    fid, gw, head = flagged["fid"], flagged["gw"], flagged["head"]
    fake_clock.advance(2 * DAY + timedelta(minutes=1))
    reg.runtime.sweep()
    f = flag_row(reg, fid)
    assert f.overdue_since == fake_clock.current and f.overdue_count == 1
    iid = f.instance_id
    (urge,) = open_items(reg, iid, "urge_visit")
    assert (urge.role, urge.unit_id) == ("grid_head", demo.SEED_VILLAGE)
    with reg.db.read() as s:
        assert cases.can_act(s, head, urge) and not cases.can_act(s, gw, urge)
    assert len(open_visits(reg, fid)) == 1, "the visit stays with the grid worker"
    inbox = cases.inbox(reg, head)
    assert [i.task for i in inbox["items"]] == ["urge_visit"] and inbox["by_state"]["normal"] == 1
    assert registry_pages.grid_overview(reg, gw, SEED_GRID).counts["overdue_visits"] == 1
    cases.complete_task(reg, head, urge.task_guid, {"comment": "请今天内完成走访"})
    assert [e.data.get("comment") for e in reg.runtime.history(iid) if e.kind == "visit_urged"] == ["请今天内完成走访"]
    do_visit(reg, gw, fid)
    assert flag_row(reg, fid).overdue_since is None

    # the next round is late too, and the visit finishing first cancels the grid head's task
    fake_clock.advance(8 * DAY)
    reg.runtime.sweep()
    (urge2,) = open_items(reg, iid, "urge_visit")
    do_visit(reg, gw, fid)
    with reg.db.read() as s:
        assert s.scalar(select(WorkItem.state).where(WorkItem.task_guid == urge2.task_guid)) == "cancelled"
    assert flag_row(reg, fid).overdue_count == 2


def test_unflagging_ends_the_schedule(reg, flagged, fake_clock):
    fid, gw = flagged["fid"], flagged["gw"]
    (wi,) = open_visits(reg, fid)
    mediator = first_with_role(reg, demo.SEED_VILLAGE, "mediator")
    with pytest.raises(Forbidden):
        visits.unflag(reg, mediator, fid, "矫正期满")
    visits.unflag(reg, gw, fid, "矫正期满解除")
    f = flag_row(reg, fid)
    assert (f.active, f.end_reason, f.ended_by, f.ended_at) == (False, "矫正期满解除", gw, fake_clock.current)
    with reg.db.read() as s:
        assert s.get(Instance, f.instance_id).status == "completed"
        assert s.scalar(select(WorkItem.state).where(WorkItem.task_guid == wi.task_guid)) == "cancelled"
    ev = resident_events(reg, flagged["rid"], "unflag")[-1]
    assert ev.after == {"active": False, "reason": "矫正期满解除"} and ev.actor == gw
    fake_clock.advance(30 * DAY)
    assert reg.runtime.sweep() == 0
    assert registry_pages.grid_overview(reg, gw, SEED_GRID).due_visits == []
    with pytest.raises(Conflict):
        visits.unflag(reg, gw, fid, "again")
    assert visits.flag(reg, gw, flagged["rid"], "community_correction", "low") != fid  # may be flagged again


def test_moving_to_another_grid_reassigns_the_visits(reg, flagged, fake_clock):
    fid, head = flagged["fid"], flagged["head"]
    (old,) = open_visits(reg, fid)
    due = old.due_at
    target = household(reg, head, OTHER_GRID, "檀溪路8号", "3-302")
    households.transfer(reg, head, flagged["rid"], target)
    with reg.db.read() as s:
        assert s.scalar(select(WorkItem.state).where(WorkItem.task_guid == old.task_guid)) == "cancelled"
    (new,) = open_visits(reg, fid)
    assert (new.unit_id, new.role, new.due_at) == (OTHER_GRID, "grid_worker", due)
    assert flag_row(reg, fid).grid_code == OTHER_GRID
    new_worker = first_with_role(reg, OTHER_GRID, "grid_worker")
    with pytest.raises(Forbidden):
        cases.complete_task(reg, flagged["gw"], new.task_guid, VISIT)
    do_visit(reg, new_worker, fid)
    assert flag_row(reg, fid).visits == 1
    fake_clock.advance(5 * DAY + timedelta(minutes=1))
    reg.runtime.sweep()
    assert [w.unit_id for w in open_visits(reg, fid)] == [OTHER_GRID]


def test_moving_in_from_another_county_takes_the_visits_and_the_warnings_along(reg, flagged, fake_clock):
    fid = flagged["fid"]
    far_worker = first_with_role(reg, FAR_GRID, "grid_worker")
    far_village = FAR_GRID[:-3]
    bid = households.add_building(reg, far_worker, FAR_GRID, "樊城区长虹路1号")
    hid = households.add_household(reg, far_worker, bid, "101")
    idn = make_id("420602", date(1985, 6, 1), 51)
    with pytest.raises(Conflict):  # the far worker may not change the person's grid: no take-over (issue 17)
        households.move_in(reg, far_worker, hid, name="赵六", id_number=idn, relation="head")
    households.move_in(reg, None, hid, name="赵六", id_number=idn, relation="head")  # the system may (both ends)
    (wi,) = open_visits(reg, fid)
    assert wi.unit_id == FAR_GRID
    fake_clock.advance(3 * DAY)
    reg.runtime.sweep()
    (urge,) = open_items(reg, flag_row(reg, fid).instance_id, "urge_visit")
    assert (urge.unit_id, urge.role) == (far_village, "grid_head")
    with pytest.raises(NotFound):  # the old grid no longer sees the person
        registry_pages.resident_page(reg, flagged["gw"], flagged["rid"])


def test_death_and_moving_out_end_the_schedule_and_moving_back_restores_it(reg, flagged, fake_clock):
    gw, rid = flagged["gw"], flagged["rid"]
    households.move_out(reg, gw, rid, destination="外省")
    f = flag_row(reg, flagged["fid"])
    assert not f.active and f.end_reason == "moved_out" and open_visits(reg, flagged["fid"]) == []
    fake_clock.advance(DAY)
    households.move_in(reg, gw, flagged["hid"], name="赵六", id_number=make_id("420602", date(1985, 6, 1), 51),
                       relation="head")
    with reg.db.read() as s:
        (again,) = s.scalars(select(SpecialFlag).where(SpecialFlag.resident_id == rid, SpecialFlag.active.is_(True)))
    assert (again.category, again.risk_level) == ("community_correction", "high") and again.id != flagged["fid"]
    assert len(open_visits(reg, again.id)) == 1
    households.register_death(reg, gw, rid)
    assert not flag_row(reg, again.id).active and flag_row(reg, again.id).end_reason == "deceased"
    assert open_visits(reg, again.id) == []


def test_a_higher_risk_level_shortens_the_interval(reg, fake_clock):
    gw = sid(reg, "jiangranran")
    hid = household(reg, gw, SEED_GRID, "檀溪路5号", "1")
    rid = households.move_in(reg, gw, hid, name="钱七", id_number=make_id("420602", date(1950, 2, 2), 71),
                             relation="head")
    fid = visits.flag(reg, gw, rid, "elderly_alone", "low")  # 30 days, 5 days' lead
    do_visit(reg, gw, fid)
    t_visit = fake_clock.current
    assert flag_row(reg, fid).next_due_at == t_visit + 30 * DAY
    fake_clock.advance(3 * DAY)
    visits.change_risk(reg, gw, fid, "high")  # 7 days, 2 days' lead: from the last visit
    f = flag_row(reg, fid)
    assert (f.risk_level, f.next_due_at) == ("high", t_visit + 7 * DAY)
    fake_clock.advance(2 * DAY + timedelta(minutes=1))
    reg.runtime.sweep()
    assert [w.due_at for w in open_visits(reg, fid)] == [t_visit + 7 * DAY]
    ev = resident_events(reg, rid, "risk")[-1]
    assert ev.before["risk_level"] == "low" and ev.after == {"risk_level": "high"}


def test_a_long_schedule_renews_its_instance(reg, flagged, fake_clock, monkeypatch):
    monkeypatch.setattr(visits, "ROUNDS_PER_INSTANCE", 2)
    fid, gw = flagged["fid"], flagged["gw"]
    first = flag_row(reg, fid).instance_id  # started with max_rounds 6 before the patch
    for _ in range(8):
        do_visit(reg, gw, fid)
        fake_clock.advance(5 * DAY + timedelta(minutes=1))
        reg.runtime.sweep()
    f = flag_row(reg, fid)
    assert f.visits == 8 and f.active
    with reg.db.read() as s:
        runs = list(s.scalars(select(Instance).where(Instance.business_key == f"flag:{fid}").order_by(Instance.id)))
    assert [i.status for i in runs] == ["completed", "completed", "running"]  # 6 visits, then 2, then the rest
    assert runs[0].id == first and runs[-1].id == f.instance_id
    assert max(len(i.state_json) for i in runs) < 120_000
    (wi,) = open_visits(reg, fid)
    assert wi.due_at == f.next_due_at
    assert [e.after["visit_no"] for e in resident_events(reg, flagged["rid"], "visit")] == list(range(1, 9))


def test_a_visit_can_open_a_dispute_case(reg, flagged):
    gw, rid = flagged["gw"], flagged["rid"]
    bad = {**VISIT, "open_case": True}
    with pytest.raises(InvalidData):  # open_case needs the dispute
        do_visit(reg, gw, flagged["fid"], bad)
    data = {**VISIT, "open_case": True, "dispute": {"category": "family", "description": "与前妻因抚养费发生争吵"}}
    do_visit(reg, gw, flagged["fid"], data)
    (ev,) = resident_events(reg, rid, "visit")
    assert ev.after.get("case_no", "").startswith("MD"), ev.after
    with reg.db.read() as s:
        c = s.scalar(select(DisputeCase).where(DisputeCase.case_no == ev.after["case_no"]))
    assert (c.category, c.reporter_id, c.grid_code, c.status) == ("family", gw, SEED_GRID, "open")
    assert c.parties == [{"name": "赵六", "resident_id": rid}] and c.location_text == "檀溪路3号 1-201"
    assert [x.case_no for x in parties.resident_cases(reg, gw, rid)] == [c.case_no]
    assert visits.open_visit_case(reg, ev.id, gw) == c.case_no  # once only


def test_flag_rules(reg, flagged):
    gw, rid = flagged["gw"], flagged["rid"]
    with pytest.raises(Conflict):
        visits.flag(reg, gw, rid, "community_correction", "low")
    with pytest.raises(InvalidData):
        visits.flag(reg, gw, rid, "vip", "low")
    with pytest.raises(InvalidData):
        visits.flag(reg, gw, rid, "released", "extreme")
    second = visits.flag(reg, gw, rid, "drug_user", "medium")
    view = registry_pages.grid_overview(reg, gw, SEED_GRID)
    (member,) = [m for b in view.buildings for h in b.households for m in h.members]
    assert {f["category"] for f in member.flags} == {"community_correction", "drug_user"}
    assert view.counts["flagged"] == 1 and view.counts["due_visits"] == 2 and second


def test_the_interval_table_covers_every_category_and_risk_level():
    root = ROOT
    content = (root / "workflows" / "visit_intervals.dmn").read_bytes()
    domains = {"category": list(CATEGORIES), "risk_level": list(RISK_LEVELS)}
    assert list(dmncheck.gaps(content, "visit_intervals", domains)) == []
    assert visits.visit_dmn_coverage(Bundle(dmn={"visit_intervals.dmn": content}), None) == []
    text = content.decode()
    start = text.index('<rule id="rule_disabled_low">')
    broken = text[:start] + text[text.index("</rule>", start) + len("</rule>"):]
    problems = visits.visit_dmn_coverage(Bundle(dmn={"visit_intervals.dmn": broken.encode()}), None)
    assert [p.message for p in problems] == ["visit intervals do not cover category=disabled, risk_level=low"]
    visits.install(type("S", (), {"runtime": type("R", (), {"listeners": []})()})())  # registers the validator
    bundle = Bundle.from_dirs(root / "workflows", root / "forms")
    bundle.dmn["visit_intervals.dmn"] = broken.encode()
    with pytest.raises(DeployError, match="visit intervals do not cover"):
        parse_bundle(bundle)


def test_intervals_shorten_with_risk():
    """The table itself, evaluated by SpiffWorkflow: higher risk never means rarer visits."""
    parser = SpiffBpmnParser(validator=VALIDATOR)
    parser.add_dmn_files([str(ROOT / "workflows" / "visit_intervals.dmn")])
    dmn = parser.get_engine("visit_intervals", None)
    engine = SandboxedScriptEngine()
    table = {}
    for cat in CATEGORIES:
        for risk in ("high", "medium", "low"):
            task = SimpleNamespace(data={"category": cat, "risk_level": risk},
                                   workflow=SimpleNamespace(script_engine=engine))
            r = dmn.result(task)
            assert 0 < r["lead_days"] < r["interval_days"]
            table[cat, risk] = r["interval_days"]
        assert table[cat, "high"] <= table[cat, "medium"] <= table[cat, "low"], cat
    assert table["community_correction", "high"] == 7 and table["disabled", "low"] == 90
