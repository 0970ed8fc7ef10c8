"""The seed story through the UI (workflows/scenarios/03_seed_story.yaml), one screenshot per step:
report on a phone with photos and a location, dispatch, failed mediation and escalation, the
street centre resolves, the grid worker verifies and signs, the archive finds the case."""
from __future__ import annotations

import re
import struct
import zlib

import pytest

from grid.org.passwords import DEMO_PASSWORD

pytestmark = pytest.mark.browser

PHONE = {"width": 375, "height": 700}
DESKTOP = {"width": 1280, "height": 900}
LAT, LNG = 32.0213, 112.1432
DESCRIPTION = ("南山家属院雨污分流改造，施工方拟在原破旧路面上直接刷黑，居民担心外高内低、雨水倒灌进楼道；"
               "施工方表示施工方案已规划，无权更改。")


def png(width: int = 64, height: int = 48, rgb=(200, 60, 40)) -> bytes:
    """A small valid PNG, generated (no image library needed)."""
    row = b"\x00" + bytes(rgb) * width
    raw = row * height

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0))
            + chunk(b"IDAT", zlib.compress(raw)) + chunk(b"IEND", b""))


class Session:
    """One person in their own browser context; collects page errors (a CSP violation or a JS
    error fails the test)."""

    def __init__(self, browser, base: str, username: str, phone: bool = False):
        opts = {"viewport": PHONE if phone else DESKTOP, "locale": "zh-CN", "timezone_id": "Asia/Shanghai"}
        if phone:
            opts.update(is_mobile=True, has_touch=True, device_scale_factor=2,
                        geolocation={"latitude": LAT, "longitude": LNG, "accuracy": 12}, permissions=["geolocation"])
        self.ctx = browser.new_context(**opts)
        self.ctx.set_default_timeout(15_000)
        self.page = self.ctx.new_page()
        self.base = base
        self.errors: list[str] = []
        self.page.on("pageerror", lambda e: self.errors.append(f"pageerror: {e}"))
        self.page.on("console", lambda m: self.errors.append(f"console: {m.text}") if m.type == "error" else None)
        self.login(username)

    def login(self, username: str) -> None:
        p = self.page
        p.goto(self.base + "/login")
        p.fill("#username", username)
        p.fill("#password", DEMO_PASSWORD)
        p.click("button[type=submit]")
        p.wait_for_url(self.base + "/")

    def open_task(self, case_no: str, form_title: str) -> None:
        p = self.page
        p.goto(self.base + "/")
        link = p.locator(".item-title a", has_text=case_no).filter(has_text=form_title)
        link.first.click()
        p.wait_for_selector("form[data-once]")

    def submit(self) -> None:
        p = self.page
        p.click("form[data-once] button[type=submit]")
        p.wait_for_load_state("load")
        assert p.locator(".flash .success").count() == 1, p.content()[:3000]

    def close(self) -> None:
        assert not self.errors, self.errors
        self.ctx.close()


def test_seed_story(live_app, browser, shots):
    base, svc = live_app
    from playwright.sync_api import expect

    # 1. the grid worker reports on her phone, with two photos and her location
    gw = Session(browser, base, "jiangranran", phone=True)
    p = gw.page
    p.click('.tabbar a[href="/report"]')
    p.select_option("#f-category", "municipal")
    p.fill("#f-description", DESCRIPTION)
    p.fill("#f-location-text", "襄城区檀溪社区南山家属院")
    p.click('[data-geo="location"]')
    expect(p.locator("#f-location-lat")).to_have_value(re.compile(r"^32\.0213"))
    expect(p.locator("#f-location-lng")).to_have_value(re.compile(r"^112\.1432"))
    p.fill("#f-parties-0-name", "南山家属院居民代表")
    p.fill("#f-parties-0-phone", "13800000001")
    p.click('[data-add-row="parties"]')
    p.fill("#f-parties-1-name", "雨污分流改造施工方")
    p.fill("#f-parties-1-phone", "13800000002")
    p.set_input_files("#f-photos", files=[
        {"name": "现场照片1.png", "mimeType": "image/png", "buffer": png()},
        {"name": "现场照片2.png", "mimeType": "image/png", "buffer": png(rgb=(40, 90, 200))},
    ])
    expect(p.locator("#f-photos-preview li")).to_have_count(2)
    assert p.evaluate("document.documentElement.scrollWidth") <= PHONE["width"], "the report page scrolls sideways"
    assert not p.locator("#f-settled_on_spot").is_checked()
    shots(p, "01-report-form-375px")
    p.click("form[data-once] button[type=submit]")
    p.wait_for_url(re.compile(r"/cases/\d+$"))
    case_no = re.search(r"MD\d{14}", p.locator("h1").inner_text()).group(0)
    case_url = p.url
    expect(p.locator(".party")).to_have_count(2)
    expect(p.locator("#h-report ~ ul.files img.thumb")).to_have_count(2)
    assert "13800000001" in p.content()  # the reporter sees full numbers
    assert p.evaluate("document.documentElement.scrollWidth") <= PHONE["width"], "the case page scrolls sideways"
    shots(p, "01-reported-case-375px")

    # 2. the community grid head dispatches to both community mediators
    head = Session(browser, base, "qiuyun")
    hp = head.page
    expect(hp.locator(".item-title a", has_text=case_no)).to_have_count(1)
    head.open_task(case_no, "派件")
    assert "13800000001" in hp.content()  # the person handling the case sees full numbers
    expect(hp.locator('input[name="action"][value="dispatch"]')).to_be_checked()
    boxes = hp.locator('input[name="assignees"]')
    expect(boxes).to_have_count(2)
    boxes.nth(0).check()
    boxes.nth(1).check()
    hp.fill("#f-dispatch_note", "请综治主任、城管主任前往现场调解")
    shots(hp, "02-dispatch-form")
    head.submit()
    hp.goto(case_url)
    assert "138****0001" in hp.content() and "13800000001" not in hp.content()  # no longer handling: masked
    hp.click("#diagram-box > summary")  # the diagram folds away until opened
    hp.wait_for_selector('.diagram[data-process="handle_level"][data-ready="1"]')
    assert hp.locator('.diagram[data-process="handle_level"] .gf-current').count() >= 1  # mediate is current
    assert hp.locator('.diagram[data-process="handle_level"] .gf-done').count() >= 1  # dispatch is done
    shots(hp, "02-dispatched-case")
    head.close()

    # 3. both community mediators record failure: the case escalates to the street
    for username, notes in (("med1.420602003005", "多次协调，施工方坚持按规划方案施工"),
                            ("med2.420602003005", "双方各执一词，协调无果")):
        m = Session(browser, base, username)
        m.open_task(case_no, "调解")
        assert "13800000001" in m.page.content()  # handlers see full numbers
        m.page.check('input[name="outcome"][value="cannot_resolve"]')
        m.page.fill("#f-notes", notes)
        if username.startswith("med2"):
            shots(m.page, "03-mediation-failed-form")
        m.submit()
        m.close()
    disp = Session(browser, base, "disp1.420602003000")
    dp = disp.page
    dp.goto(case_url)
    expect(dp.locator(".timeline .ev-escalated")).to_have_count(1)
    expect(dp.locator("#h-summary ~ dl.facts")).to_contain_text("真武山街道")
    shots(dp, "03-escalated-case")

    # 4. the street (真武山街道) centre dispatches and its mediators resolve
    disp.open_task(case_no, "派件")
    boxes = dp.locator('input[name="assignees"]')
    expect(boxes).to_have_count(2)
    boxes.nth(0).check()
    boxes.nth(1).check()
    disp.submit()
    disp.close()
    for username, notes in (("med1.420602003000", "经街道办事处领导、城管办负责人多次沟通协商，施工方同意将原有沥青地面破除后再刷黑"),
                            ("med2.420602003000", "施工方同意破除后再刷黑")):
        m = Session(browser, base, username)
        m.open_task(case_no, "调解")
        m.page.check('input[name="outcome"][value="resolved"]')
        m.page.fill("#f-notes", notes)
        m.submit()
        if username.startswith("med2"):
            m.page.goto(case_url)
            expect(m.page.locator(".timeline .ev-resolved")).to_have_count(1)
            shots(m.page, "04-resolved-at-street")
        m.close()

    # 5. the grid worker verifies on site and signs (on her phone)
    gw.open_task(case_no, "现场核查签字")
    p.check('input[name="satisfied"][value="true"]')
    p.fill("#f-notes", "施工方已对原有沥青地面进行破除，居民表示满意")
    p.fill("#f-signature", "江冉冉")
    shots(p, "05-verify-form-375px")
    gw.submit()
    p.goto(case_url)
    expect(p.locator("h1 .badge")).to_have_text("已归档")
    p.click("#diagram-box > summary")  # folded until opened; a closed case shows its whole process
    p.wait_for_selector('.diagram[data-process="dispute_case"][data-ready="1"]')
    assert p.locator('.diagram[data-process="dispute_case"] .gf-done').count() >= 5
    assert p.locator('.diagram[data-process="dispute_case"] .gf-current').count() == 0
    shots(p, "05-archived-case-375px")

    # 6. the archive search finds the case
    p.click('.tabbar a[href="/archive"]')
    p.fill("#q", "南山家属院")
    p.select_option("#category", "municipal")
    p.click("form[role=search] button[type=submit]")
    expect(p.locator(".items .item-title a", has_text=case_no)).to_have_count(1)
    shots(p, "06-archive-search-375px")
    gw.close()
