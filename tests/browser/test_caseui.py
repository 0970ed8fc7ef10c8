"""Issue 12 in the browser (items 5 and 6): signing the verify task by hand on a phone with touch
events, the case page with the signature, the dispatch page with a repeat-dispute warning and the
重复件 preview, the report page's party picker over the registry, and task cards with the 督办
badge and the urge. Screenshots: test-artifacts/screenshots/12-*.png."""
from __future__ import annotations

from datetime import date, timedelta

import pytest
from sqlalchemy import select

from engine import clock
from grid.cases import service as cases
from grid.cases.models import Attachment, CaseParty, DisputeCase
from tests.browser.test_staff_pages import DESKTOP, PHONE_390, check_phone_page, open_page
from tests.registry_helpers import SEED_GRID, household, person
from tests.web_helpers import dispatch, open_items, report_case, staff_id

pytestmark = pytest.mark.browser


def to_verify(svc, description: str):
    c = report_case(svc, {"description": description})
    dispatch(svc, c.id)
    for item in open_items(svc, c.id, "mediate"):
        cases.complete_task(svc, item.user_id, item.task_guid, {"outcome": "resolved", "notes": "双方达成协议"})
    return c, open_items(svc, c.id, "verify")[0].task_guid


def stroke(page, cdp, selector: str, points: list[tuple[float, float]]) -> None:
    """One finger stroke over an element, as touch events (fractions of its box)."""
    box = page.locator(selector).bounding_box()
    xy = [{"x": box["x"] + fx * box["width"], "y": box["y"] + fy * box["height"]} for fx, fy in points]
    cdp.send("Input.dispatchTouchEvent", {"type": "touchStart", "touchPoints": [xy[0]]})
    for a, b in zip(xy, xy[1:], strict=False):
        for i in range(1, 6):  # a few moves between points, as a finger does
            p = {"x": a["x"] + (b["x"] - a["x"]) * i / 5, "y": a["y"] + (b["y"] - a["y"]) * i / 5}
            cdp.send("Input.dispatchTouchEvent", {"type": "touchMove", "touchPoints": [p]})
    cdp.send("Input.dispatchTouchEvent", {"type": "touchEnd", "touchPoints": []})


def test_signing_the_verify_task_on_a_phone_with_touch(live_app, browser, shots):
    base, svc = live_app
    c, guid = to_verify(svc, "楼道堆物影响通行，已协调清理，待现场核查签字")
    ctx, p, errors = open_page(browser, base, "jiangranran", PHONE_390, phone=True)
    p.goto(f"{base}/tasks/{guid}")
    pad = p.locator('[data-signature="signature"]')
    assert pad.is_visible(), "the pad replaces nothing: it appears when JavaScript and a canvas exist"
    p.locator('label.choice:has(input[name="satisfied"][value="true"])').click()
    p.fill("#f-notes", "现场已清理干净，居民满意")
    canvas = '[data-signature="signature"] canvas'
    p.locator(canvas).scroll_into_view_if_needed()
    cdp = ctx.new_cdp_session(p)
    stroke(p, cdp, canvas, [(0.1, 0.7), (0.25, 0.25), (0.4, 0.75), (0.55, 0.3), (0.7, 0.7), (0.9, 0.35)])
    stroke(p, cdp, canvas, [(0.15, 0.5), (0.85, 0.55)])
    assert "signed" in pad.get_attribute("class")
    assert p.evaluate("() => { const c = document.querySelector('[data-signature=\"signature\"] canvas');"
                      " const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;"
                      " let n = 0; for (let i = 3; i < d.length; i += 4) if (d[i] > 0) n++; return n; }") > 200
    p.fill("#f-signature", "江冉冉")
    # the resident representative signs too
    res = '[data-signature="resident_signer"] canvas'
    p.locator(res).scroll_into_view_if_needed()
    stroke(p, cdp, res, [(0.1, 0.4), (0.3, 0.7), (0.5, 0.3), (0.8, 0.6)])
    p.fill("#f-resident_signer", "南山居民代表")
    p.locator(canvas).scroll_into_view_if_needed()
    check_phone_page(p, PHONE_390["width"])
    shots(p, "12-signature-phone-390px", full_page=False)
    shots(p, "12-signature-phone-390px-full")
    p.click('.form-submit button[type="submit"]')
    p.wait_for_url(base + "/")
    with svc.db.read() as s:
        sigs = list(s.scalars(select(Attachment).where(Attachment.case_id == c.id)))
        assert s.get(DisputeCase, c.id).status == "archived"
    assert len(sigs) == 2 and all(a.content_type == "image/png" for a in sigs)
    for viewport, phone, tag in ((PHONE_390, True, "390px"), (DESKTOP, False, "1366px")):
        if not phone:
            ctx.close()
            ctx, p, errors2 = open_page(browser, base, "jiangranran", viewport, phone=False)
            errors += errors2
        p.goto(f"{base}/cases/{c.id}")
        cards = p.locator("#h-signatures + ul .signature-card img")
        assert cards.count() == 2
        for i in range(2):
            cards.nth(i).scroll_into_view_if_needed()
            p.wait_for_function("(img) => img.complete && img.naturalWidth > 0", arg=cards.nth(i).element_handle())
        assert p.locator(".timeline .sig-img").count() == 2
        assert "南山居民代表" in p.locator("#h-signatures + ul").inner_text()
        p.locator("#h-signatures").scroll_into_view_if_needed()
        shots(p, f"12-case-signature-{tag}", full_page=False)
        if phone:
            check_phone_page(p, viewport["width"])
    assert not errors, errors
    ctx.close()


def test_dispatch_page_warns_of_a_repeat_and_previews_the_duplicate(live_app, browser, shots):
    base, svc = live_app
    first = report_case(svc, {"description": "南山家属院门口施工围挡占道，居民出行不便"})
    second = report_case(svc, {"description": "南山家属院施工围挡又一次挡住出入口，居民再次反映"})
    guid = open_items(svc, second.id, "dispatch")[0].task_guid
    for viewport, phone, tag in ((PHONE_390, True, "390px"), (DESKTOP, False, "1366px")):
        ctx, p, errors = open_page(browser, base, "qiuyun", viewport, phone)
        p.goto(f"{base}/tasks/{guid}")
        warning = p.locator(".repeat-warning")
        assert warning.is_visible()
        assert warning.locator(f'[data-repeat="{first.case_no}"]').count() == 1
        assert "附近同类纠纷" in warning.inner_text()
        warning.locator(f'[data-dup-pick="{first.case_no}"]').click()
        found = p.locator('#f-duplicate_of-field .dup-found')
        found.wait_for()
        assert found.get_attribute("data-case-no") == first.case_no
        assert "南山家属院门口施工围挡占道" in found.inner_text()
        assert p.locator('input[name="duplicate_confirm"]').input_value() == first.case_no
        assert p.locator('input[name="action"][value="duplicate"]').is_checked()
        # a number that does not exist (or lies outside the jurisdiction) says so
        p.fill("#f-duplicate_of", "MD20990101999999")
        p.locator("#f-duplicate_of-field [data-dup-error]").wait_for()
        assert p.locator('input[name="duplicate_confirm"]').input_value() == ""
        p.fill("#f-duplicate_of", first.case_no)
        found.wait_for()
        if phone:
            check_phone_page(p, viewport["width"])
        warning.scroll_into_view_if_needed()
        shots(p, f"12-dispatch-repeat-warning-{tag}", full_page=False)
        p.locator("#f-duplicate_of").scroll_into_view_if_needed()
        shots(p, f"12-dispatch-duplicate-preview-{tag}", full_page=False)
        shots(p, f"12-dispatch-full-{tag}")
        if not phone:
            p.click('.form-submit button[type="submit"]')
            p.wait_for_url(base + "/")
            with svc.db.read() as s:
                assert s.get(DisputeCase, second.id).result == "duplicate"
            p.goto(f"{base}/cases/{first.id}")
            assert p.locator(f'[data-links="from"] a:has-text("{second.case_no}")').count() == 1
            shots(p, "12-case-linked-duplicate-1366px", full_page=False)
        assert not errors, errors
        ctx.close()


def test_report_page_picks_a_party_from_the_registry(live_app, browser, shots):
    base, svc = live_app
    hid = household(svc, None, SEED_GRID, "檀溪路88号")
    rid = person(svc, None, hid, "欧阳明月", date(1968, 3, 9), 31)
    ctx, p, errors = open_page(browser, base, "jiangranran", PHONE_390, phone=True)
    p.goto(f"{base}/report")
    search = p.locator("[data-party-q]")
    assert search.is_visible()
    assert p.locator('input[name="parties.0.resident_id"]').get_attribute("type") == "hidden"
    search.fill("欧阳明")
    result = p.locator(".party-result", has_text="欧阳明月")
    result.wait_for()
    assert "*" in result.inner_text(), "the lookup shows masked numbers only"
    p.evaluate("() => document.querySelector('.party-search').scrollIntoView({block: 'start'})")
    shots(p, "12-report-party-search-390px", full_page=False)
    result.click()
    assert p.locator('input[name="parties.0.name"]').input_value() == "欧阳明月"
    assert p.locator('input[name="parties.0.resident_id"]').input_value() == str(rid)
    assert p.locator('[data-row="0"] .party-linked').is_visible()
    p.click('[data-add-row="parties"]')
    assert not p.locator('[data-row="1"] .party-linked').is_visible(), "a new row starts unlinked"
    p.fill('input[name="parties.1.name"]', "未登记的租户")  # typed names stay possible
    p.fill('input[name="parties.1.phone"]', "13800000009")
    p.select_option("#f-category", "neighbour")
    p.fill("#f-description", "楼上漏水，与楼下住户争执")
    p.fill("#f-location-text", "檀溪路88号")
    check_phone_page(p, PHONE_390["width"])
    p.locator(".party-search").scroll_into_view_if_needed()
    shots(p, "12-report-party-picker-390px", full_page=False)
    p.click('.form-submit button[type="submit"]')
    p.wait_for_url("**/cases/*")
    with svc.db.read() as s:
        c = s.scalar(select(DisputeCase).order_by(DisputeCase.id.desc()))
        assert [x["name"] for x in c.parties] == ["欧阳明月", "未登记的租户"]
        assert list(s.scalars(select(CaseParty.resident_id).where(CaseParty.case_id == c.id))) == [rid]
    assert not errors, errors
    ctx.close()


def test_task_cards_show_the_supervision_badge_and_the_urge(live_app, browser, shots):
    base, svc = live_app
    c = report_case(svc, {"description": "小区停车位纠纷，调解中被督办"})
    dispatch(svc, c.id)
    try:  # run the timers a day at a time until the 督办 task opens (past the warning, before due)
        for days in range(1, 12):
            clock.install_shift(timedelta(days=days))
            svc.runtime.sweep()
            if open_items(svc, c.id, "supervise"):
                break
    finally:
        clock.set_source(None)
    assert open_items(svc, c.id, "supervise")
    sup = "sup.420602003005"
    ctx, p, errors = open_page(browser, base, sup, DESKTOP, phone=False)
    card = p.locator(".items > .item", has_text=c.case_no).first
    assert card.locator(".badge-supervised").is_visible()
    assert card.locator(".badge-normal").count() == 0
    shots(p, "12-task-card-supervised-1366px", full_page=False)
    ctx.close()
    assert cases.urge(svc, staff_id(svc, sup), c.id, "请今天务必上门调解并回复") == "completed"
    for viewport, phone, tag in ((PHONE_390, True, "390px"), (DESKTOP, False, "1366px")):
        ctx, p, errors = open_page(browser, base, "med1.420602003005", viewport, phone)
        card = p.locator(".items > .item", has_text=c.case_no).first
        assert card.locator(".badge-supervised").is_visible()
        assert card.locator(".badge-normal").count() == 0
        assert "请今天务必上门调解并回复" in card.locator(".urges").inner_text()
        card.scroll_into_view_if_needed()
        if phone:
            check_phone_page(p, viewport["width"])
        shots(p, f"12-task-card-urge-{tag}", full_page=False)
        assert not errors, errors
        ctx.close()
