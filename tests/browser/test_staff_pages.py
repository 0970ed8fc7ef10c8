"""Staff pages as people use them (issue 14): the late list paged forward and back over 48 late
cases, and the phone navigation at 360 px (bottom tab bar reaching every tab and sign-out, tap
targets at least 44 x 44 px, no sideways scrolling). Screenshots go to test-artifacts/screenshots/."""
from __future__ import annotations

from datetime import timedelta
from urllib.parse import urlsplit

import pytest
from sqlalchemy import update

from engine import clock
from engine.models import WorkItem
from tests.browser_helpers import DESKTOP, PHONE_390, open_page
from tests.web_helpers import report_case

pytestmark = pytest.mark.browser

PHONE = {"width": 360, "height": 740}

# what must be at least 44 x 44 px on a phone: buttons, tabs, menu entries, chips, form controls
TARGETS = ("button, .btn, .tab, .tabbar summary, .more-menu a, .chips a, select, textarea, "
           "input[type=text], input[type=search], input[type=date], input[type=password], .late-item .pick, "
           ".items > .item:not(.late-item)")
SMALL_TARGETS_JS = """(sel) => Array.from(document.querySelectorAll(sel)).filter(e => {
  const r = e.getBoundingClientRect(); const st = getComputedStyle(e);
  if (r.width === 0 && r.height === 0) return false;          // not shown
  if (st.visibility === 'hidden' || e.closest('[hidden]')) return false;
  return r.width < 44 || r.height < 44;
}).map(e => e.tagName + '.' + e.className + ' ' + (e.innerText || e.name || '').slice(0, 20) + ' '
        + Math.round(e.getBoundingClientRect().width) + 'x' + Math.round(e.getBoundingClientRect().height))"""


def check_phone_page(page, width: int) -> None:
    """No sideways scrolling, and every tap target at least 44 x 44 px."""
    assert page.evaluate("document.documentElement.scrollWidth") <= width, f"{page.url} scrolls sideways"
    small = page.evaluate(SMALL_TARGETS_JS, TARGETS)
    assert not small, f"{page.url}: tap targets under 44x44: {small}"


def test_late_list_pages_forward_and_back(live_app, browser, shots):
    base, svc = live_app
    now = clock.now()
    made = []
    for i in range(48):
        c = report_case(svc, {"description": f"超期纠纷第{i + 1}件：楼道堆物"})
        with svc.db.write() as s:
            s.execute(update(WorkItem).where(WorkItem.instance_id == c.instance_id, WorkItem.state == "open")
                      .values(warn_at=now - timedelta(hours=200 - i), due_at=now - timedelta(hours=100 - i)))
        made.append(c.case_no)
    for viewport, phone, tag in ((PHONE_390, True, "390px"), (DESKTOP, False, "1366px")):
        ctx, p, errors = open_page(browser, base, "sup.420602003000", viewport, phone)
        p.goto(base + "/late")
        nos = p.locator(".late-item .item-title a").all_inner_texts()
        assert nos == made[:40]
        assert p.locator(".late-item textarea:visible").count() == 0  # urge forms fold away
        height = p.evaluate("document.documentElement.scrollHeight")
        assert height < 40 * 260, height  # compact rows, not 12,300 px of textareas
        assert p.locator(".late-item .handler").count() == 40
        shots(p, f"14-late-list-page1-{tag}")
        p.locator('.pager a[rel="next"]').click()
        p.wait_for_load_state("load")
        assert p.locator(".late-item .item-title a").all_inner_texts() == made[40:]
        assert p.locator('.pager a[rel="next"]').count() == 0
        shots(p, f"14-late-list-page2-{tag}")
        p.locator('.pager a[rel="prev"]').click()
        p.wait_for_load_state("load")
        assert p.locator(".late-item .item-title a").all_inner_texts() == made[:40]
        # one case's urge form, opened on demand
        first = p.locator(".late-item").first
        first.locator("summary").click()
        assert first.locator("textarea").is_visible()
        shots(p, f"14-late-list-urge-open-{tag}", full_page=False)
        if phone:
            check_phone_page(p, viewport["width"])
        assert not errors, errors
        ctx.close()


TAB_USERS = ("jiangranran", "qiuyun", "sup.420602003000", "admin")


@pytest.mark.parametrize("username", TAB_USERS)
def test_phone_tab_bar_reaches_every_tab_and_sign_out(live_app, browser, shots, username):
    base, _svc = live_app
    ctx, p, errors = open_page(browser, base, username, PHONE)
    assert not p.locator("nav.nav").is_visible()  # the wide top menu gives way to the tab bar
    bar = p.locator("nav.tabbar")
    assert bar.is_visible()
    box = bar.bounding_box()
    assert box["y"] + box["height"] <= PHONE["height"] + 1 and box["width"] <= PHONE["width"]
    tabs = bar.locator("a.tab")
    hrefs = [tabs.nth(i).get_attribute("href") for i in range(tabs.count())]
    assert 3 <= len(hrefs) + 1 <= 5, hrefs
    for i, href in enumerate(hrefs):
        bar.locator(f'a.tab[href="{href}"]').click()
        p.wait_for_load_state("load")
        assert urlsplit(p.url).path.startswith(href), (p.url, href)  # the registry may redirect deeper
        assert bar.locator(f'a.tab[href="{href}"]').get_attribute("aria-current") == "page"
        check_phone_page(p, PHONE["width"])
        shots(p, f"14-phone-{username}-tab{i + 1}-360px", full_page=False)
    bar.locator("details.more > summary").click()
    menu = bar.locator(".more-menu")
    assert menu.is_visible()
    for link in menu.locator("a").all():
        b = link.bounding_box()
        assert b["width"] >= 44 and b["height"] >= 44 and b["x"] >= 0 and b["x"] + b["width"] <= PHONE["width"]
    check_phone_page(p, PHONE["width"])
    shots(p, f"14-phone-{username}-more-360px", full_page=False)
    menu.locator('a[href="/settings"]').click()
    p.wait_for_load_state("load")
    check_phone_page(p, PHONE["width"])
    bar.locator("details.more > summary").click()
    sign_out = bar.locator(".more-menu button[type=submit]")
    b = sign_out.bounding_box()
    assert b["x"] + b["width"] <= PHONE["width"] and b["height"] >= 44
    sign_out.click()
    p.wait_for_url(base + "/login*")
    assert not errors, errors
    ctx.close()


def test_inbox_cards_tappable_as_a_whole(live_app, browser, shots):
    base, svc = live_app
    report_case(svc, {"description": "整卡可点的待办"})
    ctx, p, errors = open_page(browser, base, "qiuyun", PHONE)
    card = p.locator(".items > .item").first
    b = card.bounding_box()
    check_phone_page(p, PHONE["width"])
    shots(p, "14-phone-inbox-360px", full_page=False)
    p.mouse.click(b["x"] + b["width"] - 12, b["y"] + b["height"] - 8)  # a corner, far from the title text
    p.wait_for_url("**/tasks/**")
    assert not errors, errors
    ctx.close()


def escalate_to_street(svc):
    """A case dispatched at the community, both mediators failing: it moves to the street."""
    from grid.cases import service as cases
    from tests.web_helpers import dispatch, open_items, staff_id

    c = report_case(svc, {"description": "雨污分流施工纠纷，社区调解未果"})
    dispatch(svc, c.id)
    for item in open_items(svc, c.id, "mediate"):
        cases.complete_task(svc, item.user_id or staff_id(svc, "med1.420602003005"), item.task_guid,
                            {"outcome": "cannot_resolve", "notes": "协调无果"})
    return c


def test_level_progress_after_escalation(live_app, browser, shots):
    base, svc = live_app
    c = escalate_to_street(svc)
    for viewport, phone, tag in ((PHONE_390, True, "390px"), (DESKTOP, False, "1366px")):
        ctx, p, errors = open_page(browser, base, "disp1.420602003000", viewport, phone)
        p.goto(f"{base}/cases/{c.id}")
        steps = p.locator("ol.progress > li.step")
        assert steps.count() == 5
        assert [steps.nth(i).get_attribute("data-level") for i in range(5)] == [
            "grid", "village", "township", "county", "city"]
        assert "step-done" in steps.nth(0).get_attribute("class")
        village = steps.nth(1)
        assert "step-done" in village.get_attribute("class")
        assert village.locator(".mark-escalation").count() == 1
        street = steps.nth(2)
        assert street.get_attribute("aria-current") == "step"
        assert "真武山街道" in street.locator(".step-unit").inner_text()
        assert street.locator(".step-handler").count() == 1
        assert street.locator(".step-due").count() == 1
        assert "step-todo" in steps.nth(3).get_attribute("class")
        # the diagram: folded until opened, then only the street's run of the level process
        assert not p.locator("#diagrams").is_visible()
        p.click("#diagram-box > summary")
        p.wait_for_selector('.diagram[data-process="handle_level"][data-ready="1"]')
        assert p.locator('.diagram[data-process="dispute_case"]').count() == 0
        assert p.locator('.diagram[data-process="handle_level"] .gf-current').count() >= 1  # the street's 派件
        done = p.evaluate("""() => Array.from(document.querySelectorAll('.diagram .gf-done'))
                              .map(e => e.getAttribute('data-element-id'))""")
        assert not any("mediate" in (d or "") for d in done), done  # the village's 调解 is not shown as done
        if phone:
            check_phone_page(p, viewport["width"])
        p.locator("#h-progress").scroll_into_view_if_needed()
        shots(p, f"14-level-progress-escalated-{tag}")
        assert not errors, errors
        ctx.close()


def test_report_form_conditional_box_and_error_summary(live_app, browser, shots):
    base, _svc = live_app
    ctx, p, errors = open_page(browser, base, "jiangranran", PHONE_390)
    p.goto(base + "/report")
    spot = p.locator('[data-field="spot_result"]')
    assert not spot.is_visible()  # 现场化解情况 only when settled on the spot
    p.locator("#f-settled_on_spot").check()
    assert spot.is_visible()
    p.locator("#f-settled_on_spot").uncheck()
    assert not spot.is_visible()
    p.click("form[data-once] button[type=submit]")
    p.wait_for_load_state("load")
    summary = p.locator("#error-summary")
    links = summary.locator("a")
    assert links.count() >= 2  # the fields in error, by name, linked
    hrefs = [links.nth(i).get_attribute("href") for i in range(links.count())]
    assert "#f-location-text" in hrefs and "#f-description" in hrefs, hrefs
    # the location's 此项必填 sits under the address box, not under the coordinates; groups stay plain
    loc = p.locator('[data-field="location"]')
    assert loc.locator("#f-location-text[aria-invalid=true]").count() == 1
    assert loc.locator(".geo-coords .error-text").count() == 0
    assert p.evaluate("""() => getComputedStyle(document.querySelector('#f-location-lat')).borderColor""") \
        != p.evaluate("""() => getComputedStyle(document.querySelector('#f-location-text')).borderColor""")
    check_phone_page(p, PHONE_390["width"])
    shots(p, "14-report-errors-390px")
    assert [e for e in errors if "422" not in e] == [], errors  # the refused form answers 422, on purpose
    ctx.close()
