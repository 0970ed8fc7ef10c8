"""The registry for leaders in a browser, the parts a finger uses (issue 14): a row of the tree is
tappable as a whole (a tap in its corner drills down), the trail back up has 44 px tap targets,
a unit is found by name, and a cut list's notice sits above the list, on a 390 px phone and a
1366 px desktop. Screenshots: test-artifacts/screenshots/14-registry-find-*.png,
14-registry-township-cut-*.png."""
from __future__ import annotations

import pytest

from grid.org import demo
from grid.registry import demo as registry_demo
from tests.browser.test_staff_pages import DESKTOP, PHONE_390, SMALL_TARGETS_JS, check_phone_page, open_page

pytestmark = pytest.mark.browser


@pytest.fixture(scope="module")
def households(live_app):
    base, svc = live_app
    registry_demo.fill(svc, "small")
    return base


@pytest.mark.parametrize("view", ["desktop", "phone"])
def test_a_leader_taps_rows_finds_units_and_sees_the_cut(households, browser, shots, monkeypatch, view):
    from web.registry import pages as web_pages

    base, phone = households, view == "phone"
    ctx, page, errors = open_page(browser, base, "sup.420600000000", PHONE_390 if phone else DESKTOP, phone=phone)
    try:
        page.goto(base + f"/registry/?unit={demo.SEED_COUNTY}")
        row = page.locator(".registry-tree > .items > .item", has_text="真武山街道")
        row.evaluate("e => e.scrollIntoView({block: 'center'})")  # clear of the phone's bottom tab bar
        b = row.bounding_box()  # in the viewport's coordinates, once scrolled to
        page.mouse.click(b["x"] + b["width"] - 10, b["y"] + b["height"] - 8)  # a corner, away from the name
        page.wait_for_url(f"**unit={demo.SEED_TOWNSHIP}")
        assert page.locator(".crumbs").inner_text().startswith("襄阳市")
        assert not page.evaluate(SMALL_TARGETS_JS, ".crumbs a"), "trail links under 44x44"
        page.fill("#find", "檀溪")
        page.click(".find-unit button")
        page.wait_for_load_state("load")
        found = page.locator("section[aria-labelledby=units-h] .item", has_text="檀溪社区")
        assert found.count() == 1
        assert page.locator(".registry-tree > .items .item", has_text="职能部门").count() == 0  # territory only
        shots(page, f"14-registry-find-{view}")
        if phone:
            check_phone_page(page, PHONE_390["width"])
        found.locator("a").click()
        page.wait_for_url(f"**unit={demo.SEED_VILLAGE}")
        monkeypatch.setattr(web_pages, "UNITS_PER_PAGE", 1)  # the small township has two villages: cut at one
        page.goto(base + f"/registry/?unit={demo.SEED_TOWNSHIP}")
        notice, first = page.locator(".registry-tree .cut-notice"), page.locator(".registry-tree > .items").first
        assert notice.inner_text().startswith("显示 1 / 2")
        assert notice.bounding_box()["y"] < first.bounding_box()["y"]  # said before the list, not after it
        shots(page, f"14-registry-township-cut-{view}", full_page=not phone)
        if phone:
            check_phone_page(page, PHONE_390["width"])
        assert not errors, errors
    finally:
        ctx.close()
