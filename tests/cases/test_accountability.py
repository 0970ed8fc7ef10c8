"""The accountability and supervision registers, on SQLite and PostgreSQL: entries written in the
step, filters and jurisdiction, the rollup rebuilt from the records equal to the incremental one,
the pages (review, explanation, decision through the entry page, CSRF and 4xx on bad input) and
the XLSX exports (hierarchy, period, definitions sheet, formula-escaped text)."""
from __future__ import annotations

import io
import re
from datetime import datetime
from pathlib import Path

import pytest
import yaml
from openpyxl import load_workbook
from sqlalchemy import func, select

from engine import clock
from grid.cases import accountability_register as reg
from grid.cases import rollup
from grid.cases.accountability_models import AccountabilityEntry
from grid.cases.scenario import Runner
from grid.errors import Forbidden
from grid.org.models import OrgUnit, Staff, StaffRole
from tests.web_helpers import TOKEN, login, make_app, staff_id

ROOT = Path(__file__).resolve().parents[2]
TWO_LEVELS = ROOT / "workflows" / "scenarios" / "32_accountability_two_levels.yaml"


def _run(svc, path: Path, **replace) -> Runner:
    text = path.read_text(encoding="utf-8")
    for old, new in replace.items():
        text = text.replace(old, new)
    runner = Runner(svc, yaml.safe_load(text), str(path))
    result = runner.run()
    assert result.passed, str(result)
    return runner


def _at(day: str) -> datetime:
    return datetime.fromisoformat(day).replace(tzinfo=clock.SHANGHAI)


def test_register_filters_jurisdiction_and_rebuild(svc):
    _run(svc, TWO_LEVELS)
    county = staff_id(svc, "sup.420602000000")
    township = staff_id(svc, "sup.420602003000")
    all_rows = reg.entries(svc, county).rows
    assert [(r.level, r.unit_name, r.outcome) for r in all_rows] == [
        ("township", "真武山街道", "accountable"), ("village", "檀溪社区", "exempt")]
    assert all_rows[1].staff == [] or all_rows[1].staff  # names resolved, never raw ids
    assert all_rows[0].hierarchy[-1] == "真武山街道" and all_rows[1].hierarchy[-1] == "檀溪社区"
    assert [r.outcome for r in reg.entries(svc, county, outcome="exempt").rows] == ["exempt"]
    assert [r.level for r in reg.entries(svc, county, unit="420602003005").rows] == ["village"]
    assert reg.entries(svc, county, state="open").rows == []
    assert len(reg.entries(svc, county, state="closed").rows) == 2
    assert [r.level for r in reg.entries(svc, county, date_from=_at("2026-03-10")).rows] == ["township"]
    assert [r.level for r in reg.entries(svc, county, date_to=_at("2026-03-10")).rows] == ["village"]
    page1 = reg.entries(svc, county, per_page=1)
    assert page1.has_next and len(page1.rows) == 1
    assert not reg.entries(svc, county, per_page=1, page=2).has_next
    # the street's supervisor sees its own subtree's entries only; another county's unit is refused
    assert {r.level for r in reg.entries(svc, township).rows} == {"village", "township"}
    with pytest.raises(Forbidden):
        reg.entries(svc, staff_id(svc, "sup.420602003005"), unit="420602000000")
    assert reg.entries(svc, staff_id(svc, "sup.420602003005")).rows[0].unit_name == "檀溪社区"
    sups = reg.supervisions(svc, county).rows
    assert [(r.state, r.response_minutes is not None) for r in sups] == [("urged", True), ("ended", False)]
    assert [r.state for r in reg.supervisions(svc, county, state="closed").rows] == ["urged", "ended"]
    # the outcomes are case records: rebuilding the rollup from the records changes nothing
    with svc.db.write() as s:
        assert rollup.rebuild(s, svc.runtime.calendar, check=True) == []


def _form(client, path: str) -> tuple[str, str, str]:
    html = client.get(path).get_data(as_text=True)
    action = re.search(r'action="(/accountability/\d+/tasks/[0-9a-f-]+)"', html)
    return html, TOKEN.search(html).group(1), action.group(1) if action else ""


def test_entry_pages_review_explain_decide_and_export(svc, tmp_path):
    _run(svc, ROOT / "workflows" / "scenarios" / "30_accountability_notice.yaml")
    app = make_app(svc, tmp_path)
    # a second entry, left at its review: driven through the pages below
    doc = {"start": "2026-05-11T10:00:00+08:00", "steps": [
        {"report": {"as": "jiangranran", "data": {"category": "neighbour", "description": "楼道堆物引发邻里争执",
                                                  "location": {"text": "檀溪社区"}, "settled_on_spot": False}}},
        {"advance": {"to": "2026-05-18T10:01:00+08:00"}},
        {"expect_entries": {"count": 1, "entries": [{"state": "review"}]}}]}
    result = Runner(svc, doc).run()
    assert result.passed, str(result)
    with svc.db.read() as s:
        entry_id = s.scalar(select(func.max(AccountabilityEntry.id)))
    with svc.db.read() as s:  # a supervisor of another street of the county
        other = s.scalar(select(Staff.username).join(StaffRole, StaffRole.staff_id == Staff.id)
                         .join(OrgUnit, OrgUnit.code == StaffRole.unit_code)
                         .where(StaffRole.role == "supervisor", OrgUnit.level == "township",
                                OrgUnit.code != "420602003000").limit(1))
    assert other, "the small demo city has a second street"
    outsider = login(app, other)
    assert outsider.get(f"/accountability/{entry_id}").status_code == 404
    assert "檀溪社区" not in outsider.get("/accountability").get_data(as_text=True)
    street = login(app, "sup.420602003000")
    html = street.get("/accountability").get_data(as_text=True)
    assert "通报" in html and "檀溪社区" in html
    html, token, action = _form(street, f"/accountability/{entry_id}")
    assert "审查问责" in html and action
    before = street.post(action, data={"action": "explain", "comment": "请说明"})  # no CSRF token
    assert before.status_code == 400
    bad = street.post(action, data={"csrf_token": token, "action": "nonsense", "comment": "请说明"})
    assert bad.status_code == 422
    with svc.db.read() as s:
        assert s.get(AccountabilityEntry, entry_id).state == "review"
    ok = street.post(action, data={"csrf_token": token, "action": "explain", "comment": "请说明未派件原因"})
    assert ok.status_code == 302
    grid_head = login(app, "qiuyun")
    html, token, action = _form(grid_head, f"/accountability/{entry_id}")
    assert "情况说明" in html
    street_token = _form(street, f"/accountability/{entry_id}")[1]  # the street sees it, but may not explain
    assert street.post(action, data={"csrf_token": street_token, "text": "我不是承办单位"}).status_code == 403
    assert grid_head.post(action, data={"csrf_token": token, "text": "=HYPERLINK(\"http://x\")网格长外出培训",
                                        "measures": "已安排代班"}).status_code == 302
    html, token, action = _form(street, f"/accountability/{entry_id}")
    assert "问责决定" in html
    assert street.post(action, data={"csrf_token": token, "outcome": "exempt", "note": "+外出培训，予以免责"}
                       ).status_code == 302
    assert street.post(action, data={"csrf_token": token, "outcome": "notice", "note": "again"}).status_code == 409
    with svc.db.read() as s:
        e = s.get(AccountabilityEntry, entry_id)
        assert (e.state, e.outcome, e.explained_by, e.decided_by) == (
            "closed", "exempt", staff_id(svc, "qiuyun"), staff_id(svc, "sup.420602003000"))
    county = login(app, "sup.420602000000")
    r = county.get("/accountability/export.xlsx?unit=420602003000&from=2026-03-01&to=2026-05-31&state=closed")
    assert r.status_code == 200
    wb = load_workbook(io.BytesIO(r.data))
    assert len(wb.sheetnames) == 2
    cells = [c.value for row in wb.worksheets[0].iter_rows() for c in row if c.value is not None]
    assert "襄城区 / 真武山街道" in cells and "2026-03-01 – 2026-05-31" in cells
    assert "'=HYPERLINK(\"http://x\")网格长外出培训" in cells and "'+外出培训，予以免责" in cells
    assert "通报 (notice)" not in cells and any("通报" in str(c) for c in cells)
    r = county.get("/supervision/export.xlsx")
    assert r.status_code == 200 and len(load_workbook(io.BytesIO(r.data)).sheetnames) == 2
    assert "檀溪社区" in county.get("/supervision?state=ended").get_data(as_text=True)
    assert county.get("/accountability?unit=999999999999").status_code == 403
    assert county.get("/accountability?state=bogus&from=not-a-date&page=x").status_code == 200
    assert county.get("/accountability/999999").status_code == 404
