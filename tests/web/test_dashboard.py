"""Dashboard pages and exports: a county supervisor and a village head see their units, drill
down, rank and cross-tab; the XLSX exports open with openpyxl, have the data and definitions
sheets, and never let a resident's text become a formula."""
from __future__ import annotations

import io
from datetime import UTC, datetime, timedelta

from openpyxl import load_workbook
from sqlalchemy import update

from engine.models import WorkItem
from tests.web_helpers import dispatch, login, report_case

COUNTY_SUP = "sup.420602000000"  # 襄城区
VILLAGE_HEAD = "qiuyun"  # 邱云, 檀溪社区
NOW = datetime(2026, 3, 10, 2, 0, tzinfo=UTC)


def test_county_supervisor_dashboard_drills_down(app, svc, fake_clock):
    fake_clock.set(NOW)
    c = report_case(svc)
    dispatch(svc, c.id)
    sup = login(app, COUNTY_SUP)
    home = sup.get("/dashboard")
    html = home.get_data(as_text=True)
    assert home.status_code == 200
    assert "襄城区" in html and "结案率" in html and "满意率" in html and "超期率" in html
    assert 'id="dash-data"' in html and "vendor/echarts/echarts.min.js" in html and "js/dashboard.js" in html
    assert "<script>" not in html  # CSP: no inline script
    assert "/dashboard/420602003000" in html  # the street, to drill into
    town = sup.get("/dashboard/420602003000?rank=reported").get_data(as_text=True)
    assert "真武山街道" in town and "/dashboard/420602003005" in town
    village = sup.get("/dashboard/420602003005").get_data(as_text=True)
    assert "檀溪社区" in village and "/dashboard/420602003005015" in village
    grid = sup.get("/dashboard/420602003005015").get_data(as_text=True)
    assert "上报数" in grid
    assert sup.get("/dashboard/420602003005/report?month=2026-03").status_code == 200
    assert sup.get("/dashboard/wall").status_code == 200
    assert sup.get("/dashboard/420600000000").status_code == 403  # the city is above the county


def test_village_head_sees_village_and_grids(app, svc, fake_clock):
    fake_clock.set(NOW)
    head = login(app, VILLAGE_HEAD)
    html = head.get("/dashboard").get_data(as_text=True)
    assert "檀溪社区" in html and "/dashboard/420602003005015" in html
    assert head.get("/dashboard/420602003000").status_code == 403
    assert head.get("/dashboard/420602003005015").status_code == 200


def test_indicator_export_has_two_sheets(app, svc, fake_clock):
    fake_clock.set(NOW)
    report_case(svc)
    sup = login(app, COUNTY_SUP)
    r = sup.get("/dashboard/420602000000/export.xlsx?period=month&date=2026-03-01")
    assert r.status_code == 200 and r.mimetype.endswith("spreadsheetml.sheet")
    wb = load_workbook(io.BytesIO(r.data))
    assert len(wb.sheetnames) == 3 and wb.sheetnames[1] in ("定义", "Definitions")
    main, defs = wb.worksheets[0], wb.worksheets[1]
    cells = [c.value for row in main.iter_rows() for c in row]
    assert "2026-03-01 – 2026-03-31" in cells and "襄城区" in cells
    assert any(isinstance(v, str) and "真武山街道" in v for v in cells)
    keys = [row[0].value for row in defs.iter_rows()]
    assert "closure_rate" in keys and "satisfaction_rate" in keys


def test_open_list_export_escapes_formulas(app, svc, fake_clock):
    fake_clock.set(NOW)
    c = report_case(svc, {"description": '=HYPERLINK("http://evil.example","点击")'})
    with svc.db.write() as s:
        s.execute(update(WorkItem).where(WorkItem.instance_id == c.instance_id, WorkItem.state == "open")
                  .values(warn_at=NOW - timedelta(days=2), due_at=NOW - timedelta(days=1)))
    sup = login(app, COUNTY_SUP)
    page = sup.get("/cases/open?state=overdue").get_data(as_text=True)
    assert c.case_no in page
    r = sup.get("/cases/open/export.xlsx?state=overdue")
    wb = load_workbook(io.BytesIO(r.data))
    assert len(wb.sheetnames) == 2
    values = [cell.value for row in wb.worksheets[0].iter_rows() for cell in row]
    assert c.case_no in values
    assert "'=HYPERLINK(\"http://evil.example\",\"点击\")" in values
    assert not any(isinstance(v, str) and v.startswith("=") for v in values)
    assert "state=overdue" in " ".join(str(v) for v in values)
    assert any(isinstance(v, str) and "襄城区" in v for v in values)  # the case's unit hierarchy
    mine = login(app, "jiangranran").get("/cases/mine?status=open").get_data(as_text=True)
    assert c.case_no in mine
    r = login(app, "jiangranran").get("/cases/mine/export.xlsx")
    assert load_workbook(io.BytesIO(r.data)).sheetnames[1] in ("定义", "Definitions")


def test_lists_refuse_an_outside_unit(app, svc):
    sup = login(app, COUNTY_SUP)
    assert sup.get("/cases/open?unit=420600000000").status_code == 403
    assert sup.get("/cases/open?unit=nonsense").status_code == 403
    assert sup.get("/cases/handled").status_code == 200
