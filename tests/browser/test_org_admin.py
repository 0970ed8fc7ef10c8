"""The organisation admin pages in a real browser, as an administrator: add a staff member, reset a
password, deactivate someone with open tasks and hand them over; the new person changes the
initial password at first sign-in. Screenshots on a phone (390 px) and a desktop (1366 px)."""
from __future__ import annotations

import pytest

from grid.org import accounts
from grid.org.passwords import DEMO_PASSWORD
from tests.web_helpers import SEED_GRID, dispatch, open_items, report_case

pytestmark = pytest.mark.browser

PHONE = {"width": 390, "height": 844}
DESKTOP = {"width": 1366, "height": 900}


class Person:
    def __init__(self, browser, base: str, username: str, password: str = DEMO_PASSWORD, phone: bool = False,
                 expect: str | None = None):
        opts = {"viewport": PHONE if phone else DESKTOP, "locale": "zh-CN", "timezone_id": "Asia/Shanghai"}
        if phone:
            opts.update(is_mobile=True, has_touch=True, device_scale_factor=2)
        self.ctx = browser.new_context(**opts)
        self.ctx.set_default_timeout(30_000)
        self.page = self.ctx.new_page()
        self.base = base
        self.errors: list[str] = []
        self.page.on("pageerror", lambda e: self.errors.append(f"pageerror: {e}"))
        self.page.on("console", self._console)
        p = self.page
        p.goto(base + "/login")
        p.fill("#username", username)
        p.fill("#password", password)
        p.click("button[type=submit]")
        if expect:
            p.wait_for_url(base + expect)
        else:  # wherever the person lands (an administrator: the administration page)
            p.wait_for_url(lambda url: "/login" not in url)

    def _console(self, m) -> None:
        # a refused form answers 422 on purpose; anything else logged as an error fails the test
        if m.type == "error" and "status of 422" not in m.text:
            self.errors.append(f"console: {m.text}")

    def go(self, path: str) -> None:
        self.page.goto(self.base + path)

    def close(self) -> None:
        assert not self.errors, self.errors
        self.ctx.close()


def test_admin_adds_resets_deactivates_and_the_newcomer_sets_a_password(live_app, browser, shots):
    base, svc = live_app
    case = report_case(svc)
    dispatch(svc, case.id)
    med1, med2 = (w.user_id for w in open_items(svc, case.id, "mediate"))

    boss = Person(browser, base, "admin")
    phone_boss = Person(browser, base, "admin", phone=True)
    p = boss.page
    try:
        # browse and search the tree
        boss.go("/admin/org/?q=" + SEED_GRID[:12])
        assert p.locator("#h-found").count() == 1
        shots(p, "org-admin-tree-desktop")
        phone_boss.go("/admin/org/?q=" + SEED_GRID[:12])
        shots(phone_boss.page, "org-admin-tree-phone")

        # add a staff member on the seed grid
        boss.go(f"/admin/org/units/{SEED_GRID}")
        p.fill("#s-name", "新网格员")
        p.fill("#s-phone", "13955556666")
        p.select_option("#s-role", "grid_worker")
        p.fill("#s-title", "专职网格员")
        p.click("form[action$='/staff'] button[type=submit]")
        otp = p.locator("code.otp").inner_text().strip()
        assert len(otp) >= 10
        shots(p, "org-admin-staff-added-desktop")

        # the newcomer signs in with it and must choose a password first (phone)
        newbie = Person(browser, base, "13955556666", otp, phone=True, expect="/account/password")
        q = newbie.page
        shots(q, "org-admin-first-sign-in-phone")
        q.fill("#current_password", otp)
        q.fill("#new_password", "abcdefghij")
        q.fill("#confirm", "abcdefghij")
        q.click("form[action$='/account/password'] button[type=submit]")
        assert q.locator(".error-summary").count() == 1
        shots(q, "org-admin-first-sign-in-refused-phone")
        q.fill("#current_password", otp)
        q.fill("#new_password", "Wangge-2026-xin")
        q.fill("#confirm", "Wangge-2026-xin")
        q.click("form[action$='/account/password'] button[type=submit]")
        q.wait_for_url(base + "/")
        newbie_id = accounts.sign_in(svc, "13955556666", "Wangge-2026-xin")
        assert newbie_id and not accounts.must_change_password(svc, newbie_id)
        newbie.close()

        # reset a colleague's password
        victim = Person(browser, base, "jiangranran", phone=True)
        boss.go("/admin/org/?q=jiangranran")
        with svc.db.read() as s:
            from grid.org import service as org

            jiang = org.staff_by_username(s, "jiangranran").id
        boss.go(f"/admin/org/staff/{jiang}")
        p.click("#reset-password")
        assert p.locator("code.otp").count() == 1
        shots(p, "org-admin-reset-desktop")
        victim.go("/")
        victim.page.wait_for_url(lambda url: "/login" in url)  # signed out everywhere at once
        victim.close()

        # deactivate a mediator with an open task, handing it over
        boss.go(f"/admin/org/staff/{med1}")
        assert p.locator(".open-tasks li").count() == 1
        phone_boss.go(f"/admin/org/staff/{med1}")
        shots(phone_boss.page, "org-admin-deactivate-phone")
        shots(p, "org-admin-deactivate-desktop")
        p.select_option("#d-to", med2)
        p.click("#deactivate")
        assert p.locator(".flash .success").count() == 1
        shots(p, "org-admin-deactivated-desktop")
        assert {w.user_id for w in open_items(svc, case.id, "mediate")} == {med2}
        assert accounts.account(svc, med1) is None

        # the security audit shows it all
        boss.go("/admin/org/audit")
        assert p.locator(".security-audit li.item").count() >= 5
        shots(p, "org-admin-audit-desktop")
        phone_boss.go("/admin/org/audit")
        shots(phone_boss.page, "org-admin-audit-phone")
    finally:
        boss.close()
        phone_boss.close()
