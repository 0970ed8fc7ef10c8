"""The registry for leaders (issue 14): the counts per grid the database keeps (`registry_count`,
triggers), the hierarchy a leader drills (city → county → township → village → grids) with the
counts below each unit, paged with a visible "显示 … / …" notice, and the household page with
its members' special-population tags. Both databases."""
from __future__ import annotations

import re
from datetime import date

import pytest
from sqlalchemy import select, text

from engine.errors import NotFound
from grid.org import demo
from grid.registry import aggregates, counts, households, visits
from grid.registry import demo as registry_demo
from grid.registry.counts import RegistryCount
from grid.registry.models import Building, Household, Resident, SpecialFlag
from tests.registry_helpers import OTHER_GRID, SEED_GRID, household, make_id, sid
from tests.web_helpers import login


@pytest.fixture
def city(app, fake_clock):
    svc = app.extensions["gridflow"]
    registry_demo.fill(svc, "small")
    return svc


def _table(svc) -> dict[str, tuple]:
    with svc.db.read() as s:
        return {g: tuple(v) for g, *v in s.execute(select(
            RegistryCount.grid_code, RegistryCount.buildings, RegistryCount.households, RegistryCount.residents,
            RegistryCount.flags)) if any(v)}


def _recount(svc) -> dict[str, tuple]:
    """The counts from the tables themselves (what the triggers must agree with)."""
    out: dict[str, list] = {}
    with svc.db.read() as s:
        for g, in s.execute(select(Building.grid_code)):
            out.setdefault(g, [0, 0, 0, 0])[0] += 1
        for g, in s.execute(select(Building.grid_code).join(Household, Household.building_id == Building.id)):
            out.setdefault(g, [0, 0, 0, 0])[1] += 1
        for g, in s.execute(select(Resident.grid_code).where(Resident.status == "living")):
            out.setdefault(g, [0, 0, 0, 0])[2] += 1
        for g, in s.execute(select(SpecialFlag.grid_code).where(SpecialFlag.active.is_(True))):
            out.setdefault(g, [0, 0, 0, 0])[3] += 1
    return {g: tuple(v) for g, v in out.items() if any(v)}


def test_the_database_keeps_the_counts_through_every_kind_of_write(city):
    svc = city
    assert _table(svc) == _recount(svc) and len(_table(svc)) == 16  # bulk Core inserts of the demo
    assert _table(svc)[SEED_GRID][3] == 8  # the seed grid's flags (visits.flag, ORM)
    gw, head = sid(svc, "jiangranran"), sid(svc, "qiuyun")
    before = _table(svc)[SEED_GRID]
    hid = household(svc, gw, SEED_GRID, "檀溪路99号", "1-101")
    rid = households.move_in(svc, gw, hid, name="张建国", id_number=make_id("420602", date(1970, 5, 1), 11),
                             relation="head", phone="13812341234")
    kid = households.register_birth(svc, gw, hid, name="张小宝", birth_date="2026-01-03", sex="M")
    assert _table(svc)[SEED_GRID] == (before[0] + 1, before[1] + 1, before[2] + 2, before[3])
    fid = visits.flag(svc, gw, rid, "elderly_alone", "high")
    households.register_death(svc, gw, kid, died_on="2026-01-04")
    assert _table(svc)[SEED_GRID] == (before[0] + 1, before[1] + 1, before[2] + 1, before[3] + 1)
    visits.unflag(svc, gw, fid, "迁居")
    other = household(svc, head, OTHER_GRID, "檀溪路100号", "2-201")
    moved = _table(svc)
    households.transfer(svc, head, rid, other, relation="head")  # to another grid of the village
    after = _table(svc)
    assert after[SEED_GRID][2] == moved[SEED_GRID][2] - 1 and after[OTHER_GRID][2] == moved[OTHER_GRID][2] + 1
    households.move_out(svc, head, rid, destination="武汉")
    assert _table(svc) == _recount(svc)
    with svc.db.write() as s:  # a repair by hand goes through the triggers too
        s.execute(text("UPDATE resident SET status = 'moved_out' WHERE grid_code = :g"), {"g": OTHER_GRID})
    assert _table(svc) == _recount(svc)
    with svc.db.write() as s:
        counts.rebuild(s)
    assert _table(svc) == _recount(svc)


def test_a_city_leader_drills_from_the_city_to_a_grid(city):
    svc = city
    boss = sid(svc, "sup.420600000000")
    top = aggregates.unit_page(svc, boss)
    assert top.unit.code == demo.CITY_CODE and top.trail == [(demo.CITY_CODE, "襄阳市")]
    assert top.unit.grids == 16 and top.total == len(top.children) == 2  # the small city's two counties
    table = _recount(svc)
    assert top.unit.residents == sum(v[2] for v in table.values())
    assert top.unit.flags == sum(v[3] for v in table.values()) == 10
    assert sum(c.residents for c in top.children) == top.unit.residents
    county = next(c for c in top.children if c.code == demo.SEED_COUNTY)
    township = aggregates.unit_page(svc, boss, county.code).children
    assert sum(t.households for t in township) == county.households
    village = aggregates.unit_page(svc, boss, demo.SEED_VILLAGE)
    assert [c for c, _n in village.trail] == [demo.CITY_CODE, demo.SEED_COUNTY, demo.SEED_TOWNSHIP,
                                              demo.SEED_VILLAGE]
    grids = {g.code: g for g in village.children}
    assert all(g.level == "grid" for g in grids.values())
    assert (grids[SEED_GRID].buildings, grids[SEED_GRID].households, grids[SEED_GRID].residents,
            grids[SEED_GRID].flags) == table[SEED_GRID]
    page2 = aggregates.unit_page(svc, boss, demo.SEED_VILLAGE, limit=1, offset=1)
    assert page2.total == len(grids) and [g.code for g in page2.children] == sorted(grids)[1:2]
    street = sid(svc, "sup.420602003000")  # a township leader starts at the township, sees no higher
    mine = aggregates.unit_page(svc, street)
    assert mine.unit.code == demo.SEED_TOWNSHIP and mine.trail == [(demo.SEED_TOWNSHIP, "真武山街道")]
    assert [c for c, _n in aggregates.unit_page(svc, street, demo.SEED_VILLAGE).trail] == [
        demo.SEED_TOWNSHIP, demo.SEED_VILLAGE]
    for outside in (demo.CITY_CODE, demo.SEED_COUNTY, "420606000000", "nope"):
        with pytest.raises(NotFound):
            aggregates.unit_page(svc, street, outside)


def test_the_registry_pages_for_a_leader(app, city, monkeypatch):
    c = login(app, "sup.420600000000")
    page = c.get("/registry/").get_data(as_text=True)
    assert "襄阳市" in page and "襄城区" in page and "樊城区" in page and "显示" not in page
    village = c.get(f"/registry/?unit={demo.SEED_VILLAGE}").get_data(as_text=True)
    assert "檀溪社区" in village and "第十五网格" in village and f"/registry/grid/{SEED_GRID}" in village
    assert 'href="/registry/?unit=420602003000"' in village  # the trail back up
    assert c.get(f"/registry/?unit={SEED_GRID}").headers["Location"].endswith(f"/registry/grid/{SEED_GRID}")
    from web.registry import pages as web_pages

    monkeypatch.setattr(web_pages, "UNITS_PER_PAGE", 1)  # the small city has few units: cut at 1
    with app.extensions["gridflow"].db.read() as s:
        total = s.scalar(text("SELECT count(*) FROM org_unit WHERE parent_code = :v AND level = 'grid'"), {"v": demo.SEED_VILLAGE})
    assert total >= 2
    first = c.get(f"/registry/?unit={demo.SEED_VILLAGE}").get_data(as_text=True)
    assert len(re.findall(r'href="/registry/grid/\d+"', first)) == 1
    assert f"显示 1 / {total}" in first and "下一页" in first and "上一页" not in first
    last = c.get(f"/registry/?unit={demo.SEED_VILLAGE}&page={total}").get_data(as_text=True)
    assert f"显示 {total} / {total}" in last and "上一页" in last and "下一页" not in last
    monkeypatch.setattr(web_pages, "UNITS_PER_PAGE", 50)
    city_page = c.get("/registry/").get_data(as_text=True)
    assert "显示" not in city_page  # nothing cut, no notice
    street = login(app, "sup.420602003000")
    assert street.get("/registry/?unit=420606000000").status_code == 404  # another county
    assert street.get(f"/registry/?unit={demo.CITY_CODE}").status_code == 404


def test_the_household_page_shows_the_members_tags(app, city):
    svc = city
    with svc.db.read() as s:
        hid, cat = s.execute(select(Resident.household_id, SpecialFlag.category)
                             .join(SpecialFlag, SpecialFlag.resident_id == Resident.id)
                             .where(SpecialFlag.grid_code == SEED_GRID, SpecialFlag.category == "community_correction")
                             ).first()
    page = login(app, "jiangranran").get(f"/registry/household/{hid}").get_data(as_text=True)
    assert "社区矫正人员" in page and 'class="badge' in page
