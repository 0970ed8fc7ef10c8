"""The registry for leaders over real HTTP (a werkzeug server on 127.0.0.1, SQLite and PostgreSQL):
the city supervisor walks city → county → township → village → grid by the links on the pages,
every row's buildings / households / residents / flags equal what the registry tables hold below
that unit (counted here from the tables, not from `registry_count`); a cut list says "显示 … / …"
and its pages reach every child, forward and back; a unit is found by name; the household page
tags each member with their own special-population flags; leaders get no import list of grids
they may not change. Every page is in Chinese (no raw identifiers or English words).

Set GRIDFLOW_TEST_TRANSLATIONS=<dir> to render with pending translations (see test_walk_pages)."""
from __future__ import annotations

import html
import os
import re
from urllib.parse import quote

import pytest
from sqlalchemy import select

from grid.org import demo
from grid.org.models import DEPARTMENT, LEVELS, OrgUnit
from grid.org.passwords import DEMO_PASSWORD
from grid.registry import demo as registry_demo
from grid.registry.models import CATEGORIES, Building, Household, Resident, SpecialFlag
from tests.server_helpers import Client, serve_in_thread
from tests.web.test_walk_pages import raw_words, visible_text

ROW = re.compile(r'<li class="item[^"]*">\s*<div class="item-head"><span class="item-title"><a href="([^"]+)">([^<]+)</a>'
                 r'.*?<div class="meta">(.*?)</div>', re.S)
NUM = re.compile(r"<span>([^<\d]+?) ([\d,]+)</span>")
WORDS = {"网格": 0, "楼栋": 1, "住户": 2, "在住人口": 3, "特殊人群": 4}  # the row's labels in zh_CN


@pytest.fixture
def app_config() -> dict:
    extra = os.environ.get("GRIDFLOW_TEST_TRANSLATIONS")  # pending translations, checked before a merge
    return {"BABEL_TRANSLATION_DIRECTORIES": extra} if extra else {}


@pytest.fixture
def served(app, svc, fake_clock):
    """The small demo city with its households, the shared `app` on a real HTTP server in a thread."""
    registry_demo.fill(svc, "small")
    with serve_in_thread(app) as port:
        yield port


def signed_in(port: int, username: str) -> Client:
    """A client signed in as `username` (leaders land on the dashboard, workers on the inbox)."""
    c = Client(port)
    page = c.post("/login", {"username": username, "password": DEMO_PASSWORD, "csrf_token": c.get("/login").token()})
    assert page.status == 200 and page.path in ("/", "/dashboard"), (page.status, page.url)
    return c


def expected(svc) -> dict[str, list[int]]:
    """{unit path: [grids, buildings, households, living residents, active flags]} for every unit,
    counted from the registry tables themselves."""
    with svc.db.read() as s:
        paths = dict(s.execute(select(OrgUnit.code, OrgUnit.path)).all())
        grids = [c for c, in s.execute(select(OrgUnit.code).where(OrgUnit.level == "grid"))]
        per: dict[str, list[int]] = {g: [1, 0, 0, 0, 0] for g in grids}
        for g, in s.execute(select(Building.grid_code)):
            per[g][1] += 1
        for g, in s.execute(select(Building.grid_code).join(Household, Household.building_id == Building.id)):
            per[g][2] += 1
        for g, in s.execute(select(Resident.grid_code).where(Resident.status == "living")):
            per[g][3] += 1
        for g, in s.execute(select(SpecialFlag.grid_code).where(SpecialFlag.active.is_(True))):
            per[g][4] += 1
    out = {p: [0] * 5 for p in paths.values()}
    for g, nums in per.items():
        for p in out:
            if paths[g].startswith(p):
                out[p] = [a + b for a, b in zip(out[p], nums, strict=True)]
    return {code: out[p] for code, p in paths.items()}


def rows(page_html: str) -> list[tuple[str, str, list[int | None]]]:
    """(href, name, [grids, buildings, households, residents, flags]) of each row of the tree."""
    out = []
    for href, name, meta in ROW.findall(page_html):
        nums: list[int | None] = [None] * 5
        for label, n in NUM.findall(meta):
            nums[WORDS[label.strip()]] = int(n.replace(",", ""))
        out.append((html.unescape(href), name.strip(), nums))
    return out


def totals(page_html: str) -> list[int]:
    """The unit's own totals, from its chips."""
    chips = re.search(r'<ul class="chips totals".*?</ul>', page_html, re.S).group(0)
    found = re.findall(r'<span class="chip">([^<]+)<span class="count">([\d,]+)</span>', chips)
    return [int(n.replace(",", "")) for _label, n in sorted(found, key=lambda x: WORDS[x[0].strip()])]


def chinese(page, username: str = "") -> None:
    assert page.status == 200, (page.url, page.status)
    words = raw_words(visible_text(page.text), username)
    assert not words, f"raw or English words on {page.url}: {words}"


def test_a_city_leader_walks_city_county_township_village_grid(served, svc):
    want = expected(svc)
    c = signed_in(served, "sup.420600000000")
    page = c.get("/registry/")
    chinese(page, "sup.420600000000")
    assert "显示" not in page.text  # two counties: nothing is cut
    assert totals(page.text) == want[demo.CITY_CODE]
    trail = [demo.CITY_CODE]
    for name in ("襄城区", "真武山街道", "檀溪社区"):
        shown = rows(page.text)
        assert shown, page.url
        for href, _name, nums in shown:  # every row: what the tables hold below that unit
            code = href.rsplit("=", 1)[-1] if "unit=" in href else href.rsplit("/", 1)[-1]
            w = want[code]
            assert nums[1:] == w[1:], (page.url, _name, nums, w)
            assert nums[0] in (None, w[0])  # grids are not counted on a grid's own row
        assert [sum(n[i] for _h, _n, n in shown) for i in (1, 2, 3, 4)] == totals(page.text)[1:]
        href = next(h for h, n, _x in shown if n == name)
        page = c.get(href)
        chinese(page, "sup.420600000000")
        trail.append(href.rsplit("=", 1)[-1])
        crumbs = re.search(r'<nav class="crumbs".*?</nav>', page.text, re.S).group(0)
        assert re.findall(r'href="/registry/\?unit=(\d+)"', crumbs) == trail[:-1]  # the way back up
        assert totals(page.text) == want[trail[-1]]
    grid = next(h for h, n, _x in rows(page.text) if n == "第十五网格")
    assert grid == f"/registry/grid/{demo.SEED_GRID}"
    page = c.get(grid)
    chinese(page, "sup.420600000000")
    assert "第十五网格" in page.text
    up = c.get(re.search(r'href="(/registry/\?unit=' + demo.SEED_TOWNSHIP + ')"', c.get(
        f"/registry/?unit={demo.SEED_VILLAGE}").text).group(1))
    assert totals(up.text) == want[demo.SEED_TOWNSHIP]


def test_a_cut_list_says_so_and_its_pages_reach_every_child(served, svc, monkeypatch):
    from web.registry import pages as web_pages

    with svc.db.read() as s:
        children = list(s.scalars(select(OrgUnit.name).where(OrgUnit.parent_code == demo.SEED_COUNTY,
                                                             OrgUnit.level.in_(LEVELS)).order_by(OrgUnit.code)))
        departments = list(s.scalars(select(OrgUnit.name).where(OrgUnit.parent_code == demo.SEED_TOWNSHIP,
                                                                OrgUnit.level == DEPARTMENT)))
    assert len(children) >= 2 and departments
    monkeypatch.setattr(web_pages, "UNITS_PER_PAGE", 1)  # the small city has few units: cut at one
    c = signed_in(served, "sup.420600000000")
    page, seen, n = c.get(f"/registry/?unit={demo.SEED_COUNTY}"), [], len(children)
    while True:
        chinese(page, "sup.420600000000")
        seen += [name for _h, name, _x in rows(page.text)]
        k = len(seen)
        assert f"显示 {k} / {n}" in page.text and f"第 {k} 页，共 {n} 页" in page.text
        assert ("上一页" in page.text) == (k > 1)
        nxt = re.search(r'href="([^"]+)">下一页<', page.text)
        if nxt is None:
            break
        page = c.get(html.unescape(nxt.group(1)))
    assert seen == children  # every township once, in order
    while (prev := re.search(r'href="([^"]+)">上一页<', page.text)) is not None:
        page = c.get(html.unescape(prev.group(1)))
        k -= 1
        assert f"显示 {k} / {n}" in page.text and rows(page.text)[0][1] == children[k - 1]
    assert k == 1
    monkeypatch.setattr(web_pages, "UNITS_PER_PAGE", 50)
    assert "显示" not in c.get(f"/registry/?unit={demo.SEED_COUNTY}").text
    township = [name for _h, name, _x in rows(c.get(f"/registry/?unit={demo.SEED_TOWNSHIP}").text)]
    assert township and not set(departments) & set(township)  # the territory only, not 职能部门


def found(page) -> str:
    """The "units named like …" section of a page ('' when there is none)."""
    m = re.search(r'<section class="card" aria-labelledby="units-h">.*?</section>', page.text, re.S)
    return m.group(0) if m else ""


def test_a_leader_finds_a_unit_by_name(served, svc):
    c = signed_in(served, "sup.420600000000")
    page = c.get(f"/registry/?find={quote('檀溪')}")
    chinese(page, "sup.420600000000")
    assert (f"/registry/?unit={demo.SEED_VILLAGE}", "檀溪社区", [None] * 5) in rows(found(page))
    grids = found(c.get(f"/registry/?unit={demo.SEED_TOWNSHIP}&find={quote('第十五')}"))
    assert f'href="/registry/grid/{demo.SEED_GRID}"' in grids and "<span>檀溪社区</span>" in grids  # and its village
    with svc.db.read() as s:
        other = s.scalar(select(OrgUnit.code).where(OrgUnit.parent_code == demo.CITY_CODE,
                                                    OrgUnit.code != demo.SEED_COUNTY))
    elsewhere = found(c.get(f"/registry/?unit={other}&find={quote('檀溪')}"))
    assert elsewhere and "檀溪社区" not in elsewhere  # only below the unit
    street = signed_in(served, "sup.420602003000")
    assert street.get(f"/registry/?unit={other}&find={quote('檀溪')}").status == 404  # outside: as if missing
    assert f"unit={demo.SEED_VILLAGE}" in found(street.get(f"/registry/?find={quote('檀溪')}"))
    assert rows(found(street.get("/registry/?find=%25"))) == []  # "%" is a character, not a wildcard


def test_the_household_page_tags_each_member_with_their_flags(served, svc):
    with svc.db.read() as s:
        hid = s.scalar(select(Resident.household_id).join(SpecialFlag, SpecialFlag.resident_id == Resident.id)
                       .where(SpecialFlag.active.is_(True), SpecialFlag.grid_code == demo.SEED_GRID))
        members = {name: sorted(CATEGORIES[cat] for cat, in s.execute(
            select(SpecialFlag.category).where(SpecialFlag.resident_id == rid, SpecialFlag.active.is_(True))))
            for rid, name in s.execute(select(Resident.id, Resident.name).where(Resident.household_id == hid))}
    assert any(members.values())
    for username in ("jiangranran", "sup.420600000000"):
        page = signed_in(served, username).get(f"/registry/household/{hid}")
        chinese(page, username)
        items = re.findall(r'<li class="party">(.*?)</li>', page.text, re.S)
        shown = {}
        for li in items:
            name = re.search(r'<a href="/registry/resident/\d+">([^<]+)</a>', li).group(1)
            shown[name] = sorted(re.sub(r"\s*▲", "", t).strip()
                                 for t in re.findall(r'<span class="badge[^"]*"[^>]*>([^<]+)</span>', li))
        assert shown == members, (username, shown, members)


def test_leaders_get_no_list_of_grids_they_may_not_import_into(served, svc):
    boss = signed_in(served, "sup.420600000000")
    index = boss.get("/registry/").text
    assert "/registry/import" not in index  # import and export are for grid workers and heads
    imp = boss.get("/registry/import")
    chinese(imp, "sup.420600000000")
    assert "/registry/export?grid=" not in imp.text and "显示" not in imp.text
    worker = signed_in(served, "jiangranran").get("/registry/import").text
    assert f"/registry/export?grid={demo.SEED_GRID}" in worker
