"""The registry for leaders in a browser (issue 14): the city supervisor drills city → county →
township → village → grid on a desktop and a 390 px phone, sees the counts below each unit and the
"显示 … / …" notice where a list is cut; the household page shows the members' special-population
tags. Screenshots: test-artifacts/screenshots/14-registry-*.png."""
from __future__ import annotations

import pytest
from sqlalchemy import select

from grid.org import demo
from grid.registry import demo as registry_demo
from grid.registry.models import Resident, SpecialFlag
from tests.browser.test_staff_pages import DESKTOP, PHONE_390, check_phone_page, open_page

pytestmark = pytest.mark.browser


@pytest.fixture(scope="module")
def filled(live_app):
    base, svc = live_app
    registry_demo.fill(svc, "small")
    with svc.db.read() as s:
        hid = s.scalar(select(Resident.household_id).join(SpecialFlag, SpecialFlag.resident_id == Resident.id)
                       .where(SpecialFlag.category == "community_correction"))
    return base, svc, hid


@pytest.mark.parametrize("view", ["desktop", "phone"])
def test_a_leader_drills_the_registry(filled, browser, shots, monkeypatch, view):
    from web.registry import pages as web_pages

    base, _svc, hid = filled
    phone = view == "phone"
    ctx, page, errors = open_page(browser, base, "sup.420600000000", PHONE_390 if phone else DESKTOP, phone=phone)
    try:
        page.goto(base + "/registry/")
        assert page.locator("h2#tree-h").inner_text().startswith("襄阳市")
        chips = page.locator(".registry-tree .chips").inner_text()
        assert "网格" in chips and "16" in chips and "户" in chips
        assert page.locator(".cut-notice").count() == 0
        shots(page, f"14-registry-city-{view}")
        if phone:
            check_phone_page(page, PHONE_390["width"])
        page.click("text=襄城区")
        page.wait_for_load_state("load")
        assert "unit=420602000000" in page.url and page.locator(".crumbs").inner_text().startswith("襄阳市")
        page.click("text=真武山街道")
        page.wait_for_load_state("load")
        monkeypatch.setattr(web_pages, "UNITS_PER_PAGE", 1)  # a village of the small city has 2 grids: cut at 1
        page.click("text=檀溪社区")
        page.wait_for_load_state("load")
        notice = page.locator(".cut-notice")
        assert notice.is_visible() and notice.inner_text().startswith("显示 1 / ")
        assert page.locator(".crumbs").inner_text().count("›") == 3
        shots(page, f"14-registry-village-{view}")
        if phone:
            check_phone_page(page, PHONE_390["width"])
        page.click("text=下一页")
        page.wait_for_load_state("load")
        assert page.locator(".cut-notice").inner_text().startswith("显示 2 / ")
        monkeypatch.setattr(web_pages, "UNITS_PER_PAGE", 50)
        page.goto(base + f"/registry/?unit={demo.SEED_VILLAGE}")
        page.click("text=第十五网格")
        page.wait_for_load_state("load")
        assert f"/registry/grid/{demo.SEED_GRID}" in page.url
        page.goto(base + f"/registry/household/{hid}")
        assert page.locator(".badge", has_text="社区矫正人员").count() >= 1
        shots(page, f"14-registry-household-{view}")
        if phone:
            check_phone_page(page, PHONE_390["width"])
        assert not errors, errors
    finally:
        ctx.close()
