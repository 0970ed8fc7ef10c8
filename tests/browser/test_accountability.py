"""Browser: a level runs past its time limit (the clock is moved and the timer sweep runs); the
street's supervisor finds the entry in the 问责台账, reviews it and asks for an explanation; the
community's grid head explains on the entry's page; the supervisor decides 通报 and the outcome
shows in the register. Screenshots on a phone (390 px) and a desktop (1366 px)."""
from __future__ import annotations

from datetime import timedelta

from sqlalchemy import select

from engine import clock
from grid.cases.accountability_models import AccountabilityEntry
from tests.browser_helpers import VIEWPORTS, sign_in
from tests.web_helpers import dispatch, report_case


def _overdue_entry(svc, description: str) -> AccountabilityEntry:
    c = report_case(svc, {"description": description})
    dispatch(svc, c.id)
    fake = clock.install_fake(clock.now())
    fake.advance(timedelta(days=30))  # past 5 working days whatever the holidays
    svc.runtime.sweep()
    with svc.db.read() as s:
        return s.scalar(select(AccountabilityEntry).where(AccountabilityEntry.case_id == c.id))


def test_supervisor_reviews_unit_explains_outcome_in_the_register(live_app, browser, shots):
    base, svc = live_app
    try:
        for name, vp in VIEWPORTS.items():
            e = _overdue_entry(svc, f"浏览器测试：问责台账（{name}）")
            assert e is not None and e.state == "review"
            ctx = browser.new_context(viewport=vp, locale="zh-CN")
            page = ctx.new_page()
            errors: list[str] = []
            page.on("pageerror", lambda err, errors=errors: errors.append(str(err)))
            sign_in(page, base, "sup.420602003000")
            page.goto(f"{base}/accountability")
            page.click(f"a:has-text('{e.entry_no}')")
            page.wait_for_selector("text=审查问责")
            assert "檀溪社区" in page.inner_text(".entry-facts")
            shots(page, f"11-accountability-review-{name}")
            page.check("input[name=action][value=explain]")
            page.fill("textarea[name=comment]", "请社区说明超期原因及整改措施")
            page.click("form[data-once] button[type=submit]")
            page.wait_for_selector(".entry-history :text('请社区说明超期原因')")
            sign_in(page, base, "qiuyun")
            page.goto(f"{base}/accountability/{e.id}")
            page.wait_for_selector("text=超期原因")
            page.fill("textarea[name=text]", "调解员同期承办三起征地纠纷，未能按期上门")
            page.fill("textarea[name=measures]", "已调整分工，每周核查在办件时限")
            shots(page, f"11-accountability-explain-{name}")
            page.click("form[data-once] button[type=submit]")
            page.wait_for_selector(".entry-explanation")
            sign_in(page, base, "sup.420602003000")
            page.goto(f"{base}/accountability/{e.id}")
            page.check("input[name=outcome][value=notice]")
            page.fill("textarea[name=note]", "情况属实，予以通报，限期整改")
            page.click("form[data-once] button[type=submit]")
            page.wait_for_selector(".entry-note")
            assert "通报" in page.inner_text(".entry-state")
            shots(page, f"11-accountability-decided-{name}")
            page.goto(f"{base}/accountability?outcome=notice")
            row = page.locator("li.case-row", has_text=e.entry_no)
            assert "通报" in row.inner_text()
            shots(page, f"11-accountability-list-{name}")
            page.goto(f"{base}/supervision")
            shots(page, f"11-accountability-supervision-{name}")
            assert not errors, errors
            ctx.close()
            with svc.db.read() as s:
                done = s.get(AccountabilityEntry, e.id)
                assert (done.state, done.outcome, done.explanation is not None) == ("closed", "notice", True)
    finally:
        clock.set_source(None)
