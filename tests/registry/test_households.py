"""The grid registry: life events with their history, masking and audited reveals, jurisdiction,
search, "my grid" and the links to dispute cases. SQLite and PostgreSQL."""
from __future__ import annotations

from datetime import date

import pytest
from sqlalchemy import func, select

from engine.errors import Conflict, InvalidData, NotFound
from grid import masking
from grid.cases import parties
from grid.cases import service as cases
from grid.errors import Forbidden
from grid.org import demo
from grid.registry import households, rules, visits
from grid.registry import pages as registry_pages
from grid.registry.models import Household, Resident, ResidentEvent, RevealLog, SpecialFlag
from tests.registry_helpers import (
    FAR_GRID,
    OTHER_GRID,
    SEED_GRID,
    first_with_role,
    household,
    make_id,
    person,
    seed_family,
    sid,
)


@pytest.fixture
def people(reg):
    gw, hid, head, spouse = seed_family(reg, lat=32.03, lng=112.14)
    return {"gw": gw, "head_user": sid(reg, "qiuyun"), "hid": hid, "head": head, "spouse": spouse}


def events(svc, rid: int) -> list[ResidentEvent]:
    with svc.db.read() as s:
        return list(s.scalars(select(ResidentEvent).where(ResidentEvent.resident_id == rid).order_by(ResidentEvent.id)))


def resident(svc, rid: int) -> Resident:
    with svc.db.read() as s:
        return s.get(Resident, rid)


# ---- ID numbers and masking ------------------------------------------------------------------------
def test_id_numbers_are_checked():
    good = make_id("420602", date(1990, 1, 1), 123)
    assert rules.id_problem(good) is None
    assert rules.id_birth_date(good) == date(1990, 1, 1) and rules.id_sex(good) == "M"
    assert rules.id_problem(good[:17] + ("0" if good[17] != "0" else "1")) == "the check digit is wrong"
    assert "17 digits" in rules.id_problem("42060219900101123")
    assert "not a date" in rules.id_problem("420602199013011230")
    assert rules.id_problem("11010519491231002X") is None  # the standard's own example


def test_masking():
    assert masking.mask_id("420602199001011234") == "4206**********1234"
    assert masking.mask_phone("13812341234") == "138****1234"
    assert masking.mask_id(None) == "" and masking.mask_phone("") == ""
    assert masking.mask_phone("110") == "*10"


# ---- life events -------------------------------------------------------------------------------------
def test_birth_then_id_number_later(reg, people, fake_clock):
    rid = households.register_birth(reg, people["gw"], people["hid"], name="张小宝", birth_date="2026-01-03", sex="M")
    r = resident(reg, rid)
    assert (r.status, r.relation, r.id_number, r.grid_code) == ("living", "child", None, SEED_GRID)
    (ev,) = events(reg, rid)
    assert (ev.kind, ev.actor, ev.occurred_on, ev.after["birth_date"]) == ("birth", people["gw"], date(2026, 1, 3),
                                                                           "2026-01-03")
    idn = make_id("420602", date(2026, 1, 3), 1)
    before = households.update_resident(reg, people["gw"], rid, {"id_number": idn}, note="户口登记")
    assert before == {"id_number": None}
    ev = events(reg, rid)[-1]
    assert (ev.kind, ev.before, rules.opened(ev.after), ev.note) == ("update", {"id_number": None}, {"id_number": idn},
                                                                     "户口登记")
    assert idn not in str(ev.after)  # sealed in the history too
    with pytest.raises(InvalidData) as e:  # the ID number says someone born on another day
        households.register_birth(reg, people["gw"], people["hid"], name="错", birth_date="2026-01-02", sex="M",
                                  id_number=make_id("420602", date(2026, 1, 1), 3))
    assert [x["path"] for x in e.value.errors] == ["birth_date"]
    with pytest.raises(InvalidData):
        households.register_birth(reg, people["gw"], people["hid"], name="未来", birth_date="2027-01-01", sex="F")


def test_death_is_recorded_and_final(reg, people):
    households.register_death(reg, people["gw"], people["spouse"], died_on="2026-01-02", note="病故")
    r = resident(reg, people["spouse"])
    assert r.status == "deceased" and r.household_id == people["hid"]  # stays on the household: history
    ev = events(reg, people["spouse"])[-1]
    assert (ev.kind, ev.before, ev.after, ev.occurred_on, ev.note) == (
        "death", {"status": "living"}, {"status": "deceased"}, date(2026, 1, 2), "病故")
    with pytest.raises(Conflict):
        households.register_death(reg, people["gw"], people["spouse"])
    with pytest.raises(Conflict, match="deceased"):
        households.move_in(reg, people["gw"], people["hid"], name="李秀英", relation="spouse",
                           id_number=make_id("420602", date(1972, 3, 8), 22))


def test_move_out_and_back_in_keeps_one_record(reg, people, fake_clock):
    gw, rid = people["gw"], people["head"]
    households.move_out(reg, gw, rid, moved_on="2026-01-04", destination="武汉市洪山区")
    assert resident(reg, rid).status == "moved_out"
    other_hid = household(reg, gw, SEED_GRID, "檀溪路1号2栋", "2-301")
    idn = make_id("420602", date(1970, 5, 1), 11)
    again = households.move_in(reg, gw, other_hid, name="张建国", id_number=idn, relation="head", phone="13900000000",
                               came_from="武汉市洪山区")
    assert again == rid
    r = resident(reg, rid)
    assert (r.status, r.household_id, r.phone) == ("living", other_hid, "13900000000")
    kinds = [e.kind for e in events(reg, rid)]
    assert kinds == ["move_in", "move_out", "move_in"]
    last = events(reg, rid)[-1]
    assert last.before["status"] == "moved_out" and rules.opened(last.before)["phone"] == "13812341234"
    assert last.after["household_id"] == other_hid and last.after["came_from"] == "武汉市洪山区"
    with pytest.raises(Conflict, match="already lives"):
        households.move_in(reg, gw, other_hid, name="张建国", id_number=idn, relation="head")


def test_transfer_to_another_grid_of_the_village(reg, people):
    target = household(reg, people["head_user"], OTHER_GRID, "檀溪路9号", "1")
    with pytest.raises(NotFound):  # the other grid is outside the grid worker's jurisdiction
        households.transfer(reg, people["gw"], people["spouse"], target)
    households.transfer(reg, people["head_user"], people["spouse"], target, relation="head")
    r = resident(reg, people["spouse"])
    assert (r.household_id, r.grid_code, r.relation) == (target, OTHER_GRID, "head")
    ev = events(reg, people["spouse"])[-1]
    assert ev.kind == "transfer" and ev.before == {"household_id": people["hid"], "grid_code": SEED_GRID,
                                                   "relation": "spouse"}
    assert ev.after["grid_code"] == OTHER_GRID and ev.actor == people["head_user"]


def test_corrections_record_before_and_after(reg, people):
    assert households.update_resident(reg, people["gw"], people["head"], {"phone": "13812341234"}) == {}
    n = len(events(reg, people["head"]))
    households.update_resident(reg, people["gw"], people["head"], {"phone": "15912345678", "name": "张健国"})
    assert len(events(reg, people["head"])) == n + 1
    ev = events(reg, people["head"])[-1]
    assert rules.opened(ev.before) == {"name": "张建国", "phone": "13812341234"}
    assert rules.opened(ev.after) == {"name": "张健国", "phone": "15912345678"}
    assert "13812341234" not in str(ev.before) and "15912345678" not in str(ev.after)
    with pytest.raises(InvalidData) as e:
        households.update_resident(reg, people["gw"], people["head"], {"phone": "12345", "sex": "F"})
    assert {x["path"] for x in e.value.errors} == {"phone", "sex"}
    with pytest.raises(InvalidData):
        households.update_resident(reg, people["gw"], people["head"], {"status": "deceased"})


def test_one_head_per_household(reg, people):
    with pytest.raises(Conflict, match="already has a head"):
        person(reg, people["gw"], people["hid"], "王二", date(1990, 1, 1), 31, "head")
    with pytest.raises(Conflict, match="already has a head"):
        households.update_resident(reg, people["gw"], people["spouse"], {"relation": "head"})
    households.set_head(reg, people["gw"], people["hid"], people["spouse"], old_head_relation="spouse")
    assert resident(reg, people["spouse"]).relation == "head"
    assert resident(reg, people["head"]).relation == "spouse"
    assert [e.kind for e in events(reg, people["head"])][-1] == "head"


# ---- privacy -----------------------------------------------------------------------------------------
def test_overview_and_pages_are_masked(reg, people):
    view = registry_pages.grid_overview(reg, people["gw"], SEED_GRID)
    (b,) = view.buildings
    (h,) = b.households
    assert h.head.name == "张建国"
    assert [m.id_number for m in h.members] == ["4206**********" + make_id("420602", date(1970, 5, 1), 11)[-4:],
                                                "4206**********" + make_id("420602", date(1972, 3, 8), 22)[-4:]]
    assert h.members[0].phone == "138****1234" and h.members[1].phone == ""
    page = registry_pages.resident_page(reg, people["gw"], people["head"])
    assert page["resident"].id_number.startswith("4206****") and page["resident"].phone == "138****1234"
    text = repr(view) + repr(page["resident"]) + repr(page["members"])
    assert "13812341234" not in text and make_id("420602", date(1970, 5, 1), 11) not in text
    found = registry_pages.search(reg, people["gw"], "张")
    assert found and all("*" in f["id_number"] for f in found) and found[0]["phone"] == "138****1234"


def test_reveal_is_audited_and_limited_to_grid_worker_and_grid_head(reg, people):
    rid = people["head"]
    idn = make_id("420602", date(1970, 5, 1), 11)
    assert registry_pages.reveal(reg, people["gw"], rid, "id_number", reason="核实身份") == idn
    assert registry_pages.reveal(reg, people["head_user"], rid, "phone") == "13812341234"
    mediator = first_with_role(reg, demo.SEED_VILLAGE, "mediator")
    supervisor = first_with_role(reg, demo.SEED_VILLAGE, "supervisor")
    for who in (mediator, supervisor):
        with pytest.raises(Forbidden):
            registry_pages.reveal(reg, who, rid, "id_number")
    outsider = first_with_role(reg, FAR_GRID, "grid_worker")
    with pytest.raises(NotFound):
        registry_pages.reveal(reg, outsider, rid, "phone")
    with pytest.raises(InvalidData):
        registry_pages.reveal(reg, people["gw"], rid, "name")
    with reg.db.read() as s:
        log = [(x.staff_id, x.field, x.granted, x.reason) for x in
               s.scalars(select(RevealLog).where(RevealLog.resident_id == rid).order_by(RevealLog.id))]
    assert log == [(people["gw"], "id_number", True, "核实身份"), (people["head_user"], "phone", True, None),
                   (mediator, "id_number", False, None), (supervisor, "id_number", False, None),
                   (outsider, "phone", False, None)]
    seen = registry_pages.reveals(reg, people["gw"], rid)
    assert [x["granted"] for x in seen] == [False, False, False, True, True]
    with pytest.raises(Forbidden):
        registry_pages.reveals(reg, mediator, rid)


# ---- jurisdiction ------------------------------------------------------------------------------------
def test_jurisdiction(reg, people):
    outsider = first_with_role(reg, FAR_GRID, "grid_worker")
    for call in (lambda: registry_pages.grid_overview(reg, outsider, SEED_GRID),
                 lambda: registry_pages.resident_page(reg, outsider, people["head"]),
                 lambda: households.register_death(reg, outsider, people["head"]),
                 lambda: registry_pages.party(reg, outsider, people["head"])):
        with pytest.raises(NotFound):
            call()
    assert registry_pages.search(reg, outsider, "张") == []
    with pytest.raises(NotFound):
        households.add_building(reg, outsider, SEED_GRID, "檀溪路99号")
    mediator = first_with_role(reg, demo.SEED_VILLAGE, "mediator")
    view = registry_pages.grid_overview(reg, mediator, SEED_GRID)  # sees, masked, may not change
    assert view.counts["residents"] == 2 and view.can_edit is False
    with pytest.raises(Forbidden):
        households.register_death(reg, mediator, people["head"])
    with pytest.raises(Forbidden):
        visits.flag(reg, mediator, people["head"], "released", "low")
    township_sup = first_with_role(reg, demo.SEED_TOWNSHIP, "supervisor")
    assert registry_pages.grid_overview(reg, township_sup, SEED_GRID).counts["households"] == 1
    assert [g[0] for g in registry_pages.my_grids(reg, people["gw"])] == [SEED_GRID]
    assert {g[0] for g in registry_pages.my_grids(reg, people["head_user"])} == {SEED_GRID, OTHER_GRID}
    other_worker = first_with_role(reg, OTHER_GRID, "grid_worker")  # same village, other grid: sees nothing
    with pytest.raises(NotFound):
        registry_pages.resident_page(reg, other_worker, people["head"])


# ---- search, parties and cases -----------------------------------------------------------------------
def test_search_and_party_picking(reg, people):
    idn = make_id("420602", date(1970, 5, 1), 11)
    by = {q: [r["resident_id"] for r in registry_pages.search(reg, people["gw"], q)]
          for q in ("张建", idn, idn[-4:], "13812341234", "王")}
    assert by == {"张建": [people["head"]], idn: [people["head"]], idn[-4:]: [people["head"]],
                  "13812341234": [people["head"]], "王": []}
    assert registry_pages.search(reg, people["gw"], "%") == []
    assert registry_pages.party(reg, people["gw"], people["head"]) == {"name": "张建国", "resident_id": people["head"]}


def test_the_cases_that_name_a_resident(reg, people):
    """grid.cases.parties lists them, in the person's jurisdiction; the registry's page data has no
    cases (the web layer adds them: tests/test_registry_web.py)."""
    gw = people["gw"]
    data = {"category": "neighbour", "description": "楼上漏水到楼下，协商未果", "location": {"text": "檀溪路1号1栋"},
            "parties": [registry_pages.party(reg, gw, people["head"]), {"name": "楼上住户"}], "settled_on_spot": False}
    c = cases.report(reg, gw, data)
    other = cases.report(reg, gw, {**data, "parties": [{"name": "别人"}]})
    assert [x.id for x in parties.resident_cases(reg, gw, people["head"])] == [c.id]
    assert parties.resident_cases(reg, gw, people["spouse"]) == []
    assert other.id != c.id and [x.id for x in parties.resident_cases(reg, None, people["head"])] == [c.id]
    outsider = first_with_role(reg, FAR_GRID, "grid_worker")
    assert parties.resident_cases(reg, outsider, people["head"]) == []
    assert "cases" not in registry_pages.resident_page(reg, gw, people["head"])


def test_every_registry_write_checks_jurisdiction(reg, people):
    """An outsider (another county's grid worker) and a mediator of the village change nothing,
    whichever write they try."""
    outsider = first_with_role(reg, FAR_GRID, "grid_worker")
    mediator = first_with_role(reg, demo.SEED_VILLAGE, "mediator")
    fid = visits.flag(reg, people["gw"], people["head"], "released", "low")
    with reg.db.read() as s:
        building_id = s.get(Household, people["hid"]).building_id

    def snapshot():
        with reg.db.read() as s:
            return (sorted((r.id, r.name, r.status, r.household_id, r.phone) for r in s.scalars(select(Resident))),
                    s.scalar(select(func.count()).select_from(ResidentEvent)),
                    s.scalar(select(func.count()).select_from(Household)),
                    [(f.id, f.active, f.risk_level) for f in s.scalars(select(SpecialFlag))])

    before = snapshot()
    writes = [
        lambda who: households.register_birth(reg, who, people["hid"], name="小明", birth_date="2026-01-01",
                                              sex="M", relation="child"),
        lambda who: households.move_in(reg, who, people["hid"], name="王五", relation="other",
                                       id_number=make_id("420602", date(1990, 1, 1), 55)),
        lambda who: households.move_out(reg, who, people["spouse"]),
        lambda who: households.update_resident(reg, who, people["spouse"], {"phone": "13900000000"}),
        lambda who: households.set_head(reg, who, people["hid"], people["spouse"]),
        lambda who: households.add_household(reg, who, building_id, "9-909"),
        lambda who: visits.unflag(reg, who, fid, "不再需要"),
        lambda who: visits.change_risk(reg, who, fid, "high"),
        lambda who: households.register_death(reg, who, people["head"]),
    ]
    for who, error in ((outsider, NotFound), (mediator, Forbidden)):
        for i, write in enumerate(writes):
            with pytest.raises((NotFound, Forbidden)) as ei:
                write(who)
            if who == outsider:
                assert isinstance(ei.value, error), (i, ei.value)
    assert snapshot() == before
    for i in (0, 1, 3, 5, 7):  # control: the grid worker may do the same writes (the calls are well-formed)
        writes[i](people["gw"])
    assert snapshot() != before
