"""Browser: a county supervisor signs in, opens the dashboard, drills down to a township and a
village, opens the 在办件 list filtered to overdue and exports it; a grid worker finds her own
open report under 我上报的. Screenshots on a phone (390 px) and a desktop (1366 px)."""
from __future__ import annotations

from datetime import timedelta

from sqlalchemy import update

from engine import clock
from engine.models import WorkItem
from tests.browser_helpers import VIEWPORTS, sign_in
from tests.web_helpers import report_case


def test_supervisor_dashboard_drill_down_and_export(live_app, browser, shots, tmp_path):
    base, svc = live_app
    c = report_case(svc, {"description": "浏览器测试：楼道堆物超期未处理"})
    now = clock.now()
    with svc.db.write() as s:
        s.execute(update(WorkItem).where(WorkItem.instance_id == c.instance_id, WorkItem.state == "open")
                  .values(warn_at=now - timedelta(days=2), due_at=now - timedelta(days=1)))
    for name, vp in VIEWPORTS.items():
        ctx = browser.new_context(viewport=vp, accept_downloads=True, locale="zh-CN")
        page = ctx.new_page()
        errors: list[str] = []
        page.on("pageerror", lambda e, errors=errors: errors.append(str(e)))
        sign_in(page, base, "sup.420602000000")
        page.goto(f"{base}/dashboard")
        page.wait_for_selector("#chart-rates svg")
        assert "襄城区" in page.inner_text("h1")
        shots(page, f"dashboard-county-{name}")
        page.click("a.drill:has-text('真武山街道')")
        page.wait_for_selector("#chart-rates svg")
        assert "真武山街道" in page.inner_text("h1")
        page.click("a.drill:has-text('檀溪社区')")
        page.wait_for_selector("#chart-rates svg")
        assert "檀溪社区" in page.inner_text("h1")
        shots(page, f"dashboard-village-{name}")
        page.click(".dash-actions a:has-text('在办')")
        page.select_option("#state", "overdue")
        page.click("form[role=search] button[type=submit]")
        page.wait_for_load_state()
        assert c.case_no in page.inner_text("main")
        assert "state=overdue" in page.url
        shots(page, f"open-cases-overdue-{name}")
        with page.expect_download() as dl:
            page.click("a[href*='/cases/open/export.xlsx']")
        path = tmp_path / f"open-{name}.xlsx"
        dl.value.save_as(path)
        from openpyxl import load_workbook

        wb = load_workbook(path)
        assert len(wb.sheetnames) == 2
        assert c.case_no in [cell.value for row in wb.worksheets[0].iter_rows() for cell in row]
        page.goto(f"{base}/dashboard/wall")
        page.wait_for_selector("#chart-rates svg")
        shots(page, f"dashboard-wall-{name}", full_page=False)
        page.goto(f"{base}/dashboard/420602003005/report")
        shots(page, f"dashboard-report-{name}")
        assert not errors, errors
        ctx.close()


def test_grid_worker_finds_her_open_report(live_app, browser, shots):
    base, svc = live_app
    c = report_case(svc, {"description": "浏览器测试：我上报的纠纷"})
    for name, vp in VIEWPORTS.items():
        ctx = browser.new_context(viewport=vp, locale="zh-CN")
        page = ctx.new_page()
        sign_in(page, base, "jiangranran")
        page.goto(f"{base}/cases/mine")
        page.click(".status-filter a[href$='status=open']")
        page.wait_for_load_state()
        assert c.case_no in page.inner_text("main")
        shots(page, f"my-reports-{name}")
        ctx.close()
