"""Maps in the browser (issue 13): the report page's map on a phone with the pin in her grid and the
warning once it is dragged out, the case page's map, the dispatcher's map of open cases with the
overdue ones in red (clustered, then zoomed in, then clicked through), the dashboard choropleth, and
an operator taking a hotline call. No tile server: outlines and pins on the plain background.
Screenshots: test-artifacts/screenshots/13-*.png."""
from __future__ import annotations

import re
from datetime import timedelta

import pytest
from sqlalchemy import select, update

from engine import clock
from engine.models import WorkItem
from grid.cases.models import DisputeCase
from grid.org import boundaries, demo
from grid.org.models import OrgUnit
from tests.browser.test_staff_pages import DESKTOP, PHONE_390, open_page
from tests.web_helpers import report_case

pytestmark = pytest.mark.browser
SEED_LAT, SEED_LNG = boundaries.SEED_POINT


def _ready(page, selector: str) -> None:
    page.wait_for_selector(f"{selector}[data-ready='1']", state="attached")
    page.wait_for_timeout(300)  # let Leaflet finish fitting the view before a screenshot


def test_report_page_map_on_a_phone(live_app, browser, shots):
    base, _svc = live_app
    ctx, p, errors = open_page(browser, base, "jiangranran", PHONE_390)
    p.goto(base + "/report")
    _ready(p, "[data-map=report]")
    p.fill("[name='location.lat']", str(SEED_LAT))
    p.fill("[name='location.lng']", str(SEED_LNG))
    p.wait_for_selector("[data-map=report][data-inside='1']", state="attached")
    warning = p.locator("[data-map-warning]")
    assert warning.is_hidden(), "the seed point lies in her grid"
    p.locator("[data-map=report]").scroll_into_view_if_needed()
    shots(p, "13-report-map-phone-inside", full_page=False)

    pin = p.locator("[data-map=report] .leaflet-marker-icon").first
    box = pin.bounding_box()
    x, y = box["x"] + box["width"] / 2, box["y"] + box["height"] - 4
    p.mouse.move(x, y)
    p.mouse.down()
    for k in range(1, 11):  # drag well past the grid's edge, in steps as a finger would
        p.mouse.move(x + 14 * k, y - 9 * k)
    p.mouse.up()
    p.wait_for_selector("[data-map=report][data-inside='0']", state="attached")
    assert warning.is_visible()
    lat, lng = float(p.input_value("[name='location.lat']")), float(p.input_value("[name='location.lng']"))
    assert (lat, lng) != (SEED_LAT, SEED_LNG) and lat > SEED_LAT and lng > SEED_LNG, "the inputs follow the pin"
    shots(p, "13-report-map-phone-outside", full_page=False)
    assert p.evaluate("document.documentElement.scrollWidth") <= PHONE_390["width"]
    assert not [e for e in errors if "favicon" not in e], errors
    ctx.close()


def test_case_page_map(live_app, browser, shots):
    base, svc = live_app
    c = report_case(svc, {"description": "南山家属院门前路面塌陷，两户争执"})
    for viewport, phone, tag in ((DESKTOP, False, "1366px"), (PHONE_390, True, "390px")):
        ctx, p, errors = open_page(browser, base, "qiuyun", viewport, phone)
        p.goto(f"{base}/cases/{c.id}")
        if p.locator("[data-map=case]").count() == 0:  # the case page's include not added yet
            p.goto(f"{base}/map/case/{c.id}")
        _ready(p, "[data-map=case]")
        assert p.locator("[data-map=case] .leaflet-marker-icon").count() == 1
        assert p.locator("[data-map=case] path.leaflet-interactive").count() >= 1, "the grid's outline"
        assert p.locator("[data-map-outside]").is_hidden()
        p.locator("[data-map=case]").scroll_into_view_if_needed()
        shots(p, f"13-case-map-{tag}", full_page=False)
        assert not errors, errors
        ctx.close()


def _spread_cases(svc, n: int) -> list[DisputeCase]:
    """n cases in 襄城区's grids, each at its grid's point; the first third overdue, the next third past warning."""
    with svc.db.read() as s:
        grids = list(s.execute(select(OrgUnit.code, OrgUnit.lat, OrgUnit.lng)
                               .where(OrgUnit.level == "grid", OrgUnit.path.like(f"%{demo.SEED_COUNTY}/%"))
                               .order_by(OrgUnit.code)))
        workers = dict(s.execute(select(OrgUnit.code, OrgUnit.name)).all())
    assert grids and workers
    from grid.cases import service as cases
    from tests.web_helpers import staff_id

    made = []
    now = clock.now()
    for i in range(n):
        code, lat, lng = grids[i % len(grids)]
        with svc.db.read() as s:
            from grid.org import service as org

            worker = org.current_grid_worker(s, code).id
        data = {"category": "neighbour", "description": f"地图测试纠纷第{i + 1}件", "settled_on_spot": False,
                "location": {"text": "测试地点", "lat": round(lat + 0.0003 * (i % 3), 6), "lng": round(lng, 6)},
                "parties": []}
        c = cases.report(svc, worker, data, grid_code=code)
        if i % 3 != 2:
            late = {"warn_at": now - timedelta(hours=10), "due_at": now - timedelta(hours=2)} if i % 3 == 0 else \
                {"warn_at": now - timedelta(hours=2), "due_at": now + timedelta(days=3)}
            with svc.db.write() as s:
                s.execute(update(WorkItem).where(WorkItem.instance_id == c.instance_id, WorkItem.state == "open")
                          .values(**late))
        made.append(c)
    assert staff_id
    return made


def test_dispatcher_map_of_open_cases_overdue_in_red(live_app, browser, shots):
    base, svc = live_app
    made = _spread_cases(svc, 12)
    ctx, p, errors = open_page(browser, base, f"disp1.{demo.SEED_COUNTY}", DESKTOP, phone=False)
    p.goto(base + "/")
    p.click("nav.nav a[href='/map']")
    _ready(p, "[data-map=cases]")
    n = int(p.get_attribute("[data-map=cases]", "data-count"))
    assert n >= len(made)
    # zoomed out: clusters, coloured by the worst case inside (a red one holds overdue cases)
    assert p.locator(".case-cluster").count() >= 1
    assert p.locator(".case-cluster.st-overdue").count() >= 1
    shots(p, "13-dispatcher-map-clusters", full_page=False)
    outline = p.locator("[data-map=cases] path.map-scope").first
    assert p.locator("[data-map=cases] path.map-child").count() >= 2, "the townships' outlines"
    w0 = outline.bounding_box()["width"]
    p.locator(".case-cluster.st-overdue").first.click()  # a click on a group zooms into it
    p.wait_for_timeout(900)
    for _ in range(5):
        if p.locator(".case-pin.st-overdue").count():
            break
        p.locator(".case-cluster").first.click()
        p.wait_for_timeout(700)
    assert outline.bounding_box()["width"] > w0 * 1.5, "the click zoomed in"
    red = p.locator(".case-pin.st-overdue")
    assert red.count() >= 1
    colour = red.first.evaluate("e => getComputedStyle(e).backgroundColor")
    assert colour == "rgb(211, 47, 47)", colour
    shots(p, "13-dispatcher-map-zoomed", full_page=False)
    no = red.first.get_attribute("data-case")
    red.first.click()
    p.locator(".leaflet-popup .case-pop a").click()
    p.wait_for_load_state("load")
    assert re.search(r"/cases/\d+$", p.url) and no in p.content()
    assert not errors, errors
    ctx.close()


def test_dashboard_choropleth(live_app, browser, shots):
    base, _svc = live_app
    ctx, p, errors = open_page(browser, base, f"sup.{demo.SEED_COUNTY}", DESKTOP, phone=False)
    p.goto(f"{base}/dashboard/{demo.SEED_COUNTY}")
    _ready(p, "[data-map=choropleth]")
    assert p.locator("[data-map=choropleth] path.leaflet-interactive").count() >= 2
    p.select_option("#choro-ind", "reported")
    p.wait_for_timeout(300)
    assert p.locator("[data-map-legend] .legend-item").count() == 5
    p.locator(".choropleth").scroll_into_view_if_needed()
    shots(p, "13-dashboard-choropleth", full_page=False)
    assert not errors, errors
    ctx.close()


def test_operator_takes_a_hotline_call(live_app, browser, shots):
    base, svc = live_app
    ctx, p, errors = open_page(browser, base, f"op.{demo.SEED_COUNTY}", PHONE_390)
    p.goto(base + "/intake")
    _ready(p, "[data-map=pick]")
    p.check("input[name=source][value=hotline]")
    p.fill("#caller_name", "王女士")
    p.fill("#caller_phone", "13912345678")
    p.select_option("#category", "neighbour")
    p.fill("#description", "来电反映：楼上装修噪音扰民，多次协商无果。")
    p.fill("#location_text", "檀溪路南山家属院3栋")
    m = p.locator("[data-map=pick]")
    m.scroll_into_view_if_needed()
    box = m.bounding_box()
    p.mouse.click(box["x"] + box["width"] / 2, box["y"] + box["height"] / 2)  # tap where it happened
    assert p.input_value("#lat") and p.input_value("#lng")
    shots(p, "13-operator-hotline-form", full_page=True)
    p.click("form[action='/intake'] button[type=submit]")
    p.wait_for_load_state("load")
    made = p.get_attribute("[data-made]", "data-made")
    text = p.inner_text("[data-made]")
    assert made and "139****5678" in text and "13912345678" not in p.content()
    shots(p, "13-operator-hotline-created", full_page=False)
    with svc.db.read() as s:
        c = s.scalar(select(DisputeCase).where(DisputeCase.case_no == made))
    assert c.source == "hotline" and c.unit_path.startswith(f"{demo.CITY_CODE}/{demo.SEED_COUNTY}/")
    assert not errors, errors
    ctx.close()
