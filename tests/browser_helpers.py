"""Helpers of the browser tests: the viewports, a sign-in on an open page, a new signed-in page."""
from __future__ import annotations

from grid.org.passwords import DEMO_PASSWORD

PHONE_390 = {"width": 390, "height": 844}
DESKTOP = {"width": 1366, "height": 900}
VIEWPORTS = {"phone": PHONE_390, "desktop": DESKTOP}


def sign_in(page, base: str, username: str) -> None:
    """Sign `page` in as `username` (signed out first)."""
    page.context.clear_cookies()
    page.goto(f"{base}/login")
    page.fill("input[name=username]", username)
    page.fill("input[name=password]", DEMO_PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_load_state()


def open_page(browser, base: str, username: str, viewport: dict, phone: bool = True, timeout: int = 15_000,
              permissions: list[str] | None = None):
    """(context, page, errors) of a new browser context (zh-CN, Asia/Shanghai; a touch screen if `phone`)
    signed in as `username`; `errors` collects the page's errors and console errors."""
    ctx = browser.new_context(viewport=viewport, locale="zh-CN", timezone_id="Asia/Shanghai",
                              is_mobile=phone, has_touch=phone, device_scale_factor=2 if phone else 1)
    if permissions:
        ctx.grant_permissions(permissions, origin=base)
    ctx.set_default_timeout(timeout)
    page = ctx.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda e: errors.append(f"pageerror: {e}"))
    page.on("console", lambda m: errors.append(f"console: {m.text}") if m.type == "error" else None)
    page.goto(base + "/login")
    page.fill("#username", username)
    page.fill("#password", DEMO_PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_load_state("load")
    return ctx, page, errors
