"""Media in the browser (Chromium with a fake microphone): a voice note recorded on a phone with
the report form's record button (MediaRecorder) and sent with the form, played back on the case
page; and the case page showing a photo's thumbnail, never the 4 MB original."""
from __future__ import annotations

import pytest
from sqlalchemy import select

from grid.cases.models import Attachment
from tests.browser.conftest import ARGS, CHROMIUM, _require_browser
from tests.browser.test_staff_pages import check_phone_page
from tests.browser_helpers import DESKTOP, PHONE_390, open_page
from tests.media import helpers as h

PHONE = PHONE_390
MEDIA_ARGS = ["--use-fake-device-for-media-stream", "--use-fake-ui-for-media-stream", "--autoplay-policy=no-user-gesture-required"]


@pytest.fixture(scope="module")
def media_browser():
    _require_browser()
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=ARGS + MEDIA_ARGS)
        try:
            yield b
        finally:
            b.close()


def signed_in(browser, base: str, viewport: dict, phone: bool):
    return open_page(browser, base, "jiangranran", viewport, phone, timeout=20_000, permissions=["microphone"])


def fill_report(page, description: str) -> None:
    page.select_option("#f-category", "neighbour")
    page.fill("#f-description", description)
    page.fill("#f-location-text", "襄城区檀溪社区南山家属院3栋")


def test_record_and_upload_a_voice_note_on_a_phone(live_app, media_browser, shots):
    base, svc = live_app
    ctx, p, errors = signed_in(media_browser, base, PHONE, phone=True)
    p.goto(base + "/report")
    fill_report(p, "楼上漏水到楼下，双方争执，录了当事人陈述。")
    box = p.locator('.recorder[data-recorder-for="f-recordings"]')
    assert box.is_visible()  # the browser can record: the button is offered
    box.locator("[data-record]").click()
    p.wait_for_selector('.recorder[data-state="recording"]')
    assert box.locator("[data-stop]").is_visible() and not box.locator("[data-record]").is_visible()
    p.wait_for_timeout(2500)  # two and a half seconds of the fake microphone's tone
    shots(p, "12-media-recording-390px", full_page=False)
    box.locator("[data-stop]").click()
    p.wait_for_selector('.recorder[data-recorded="1"]')
    assert box.locator("[data-record]").is_visible() and not box.locator("[data-stop]").is_visible()
    assert box.locator("audio[data-playback]").is_visible()
    assert p.evaluate("document.getElementById('f-recordings').files.length") == 1
    name = p.evaluate("document.getElementById('f-recordings').files[0].name")
    assert name.startswith("voice-") and name.endswith(".webm"), name
    assert "voice-" in p.locator("#f-recordings-preview").inner_text()
    box.scroll_into_view_if_needed()
    shots(p, "12-media-recorded-390px", full_page=False)
    check_phone_page(p, PHONE["width"])  # no sideways scrolling, the record buttons 44 px at least

    p.click("form[data-once] button[type=submit]")
    p.wait_for_url("**/cases/*")
    audio = p.locator("audio[src^='/attachments/']")
    assert audio.count() == 1
    src = audio.get_attribute("src")
    p.wait_for_function("() => document.querySelector(\"audio[src^='/attachments/']\").readyState >= 1")
    with svc.db.read() as s:
        a = s.get(Attachment, src.rsplit("/", 1)[1])
        assert a.content_type == "audio/webm" and a.size > 1000 and a.case_id and not a.pending
    audio.scroll_into_view_if_needed()
    shots(p, "12-media-voice-note-case-390px", full_page=False)
    assert p.evaluate("document.documentElement.scrollWidth") <= PHONE["width"]
    assert not errors, errors
    ctx.close()


@pytest.mark.parametrize("viewport, phone, tag", [(DESKTOP, False, "1366px"), (PHONE, True, "390px")])
def test_case_page_shows_the_thumbnail_not_the_original(live_app, media_browser, shots, tmp_path, viewport, phone, tag):
    base, svc = live_app
    photo = tmp_path / "IMG_0001.jpg"
    photo.write_bytes(h.noisy_jpeg())
    ctx, p, errors = signed_in(media_browser, base, viewport, phone)
    p.goto(base + "/report")
    fill_report(p, "小区门口占道施工，居民通行困难，附现场照片。")
    p.set_input_files("#f-photos", str(photo))
    p.click("form[data-once] button[type=submit]")
    p.wait_for_url("**/cases/*")
    loaded: list[tuple[str, int]] = []
    p.on("response", lambda r: loaded.append((r.url, len(r.body()))) if "/attachments/" in r.url else None)
    p.reload()
    p.wait_for_load_state("networkidle")
    thumb = p.locator("img.thumb").first
    assert thumb.get_attribute("src").endswith("/thumb")
    assert p.evaluate("() => [...document.querySelectorAll('img.thumb')].every(i => i.complete && i.naturalWidth > 0)")
    natural = p.evaluate("() => document.querySelector('img.thumb').naturalWidth")
    assert 0 < natural <= 320
    assert loaded and all(url.endswith("/thumb") for url, _n in loaded), loaded
    assert sum(n for _u, n in loaded) < 100_000 < photo.stat().st_size
    with svc.db.read() as s:
        assert s.scalars(select(Attachment).where(Attachment.filename == "IMG_0001.jpg")).first() is not None
    shots(p, f"12-media-case-thumbnail-{tag}")
    if phone:
        assert p.evaluate("document.documentElement.scrollWidth") <= PHONE["width"]
    assert not errors, errors
    ctx.close()
