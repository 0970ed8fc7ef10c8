"""Issue 17 B, C, D: what the form layer lets through to the database.

B: NUL and other control characters are refused with 422 before anything is stored (tab, LF
and CR are kept). C: no string field of a form may be longer than the column it is stored in.
D: NaN and infinities are not numbers a bound can check, so they are refused.
"""
from __future__ import annotations

import json
from pathlib import Path

import pytest
from sqlalchemy import func, select

from grid.cases.models import DisputeCase
from tests.web_helpers import TaskForm, csrf, fingerprint, login, report_case

ROOT = Path(__file__).resolve().parents[2]
FORM = {"grid": "420602003005015", "category": "municipal",
        "description": "南山家属院雨污分流改造，居民担心雨水倒灌。", "location.text": "襄城区檀溪社区南山家属院",
        "location.lat": "32.0213", "location.lng": "112.1432",
        "parties.0.name": "南山家属院居民代表", "parties.0.phone": "13800000001"}


def _cases(svc) -> int:
    with svc.db.read() as s:
        return s.scalar(select(func.count()).select_from(DisputeCase))


def _report(client, **changes):
    return client.post("/report", data={**FORM, **changes, "csrf_token": csrf(client, "/report")})


# ---- B: control characters -----------------------------------------------------------------------
@pytest.mark.parametrize("changes", [
    {"description": "南山家属院雨污分流\x00改造纠纷"},
    {"description": "响铃字符\x07也不是文字内容"},
    {"location.text": "襄城区\x1b[31m檀溪社区"},
    {"parties.0.name": "居民\x00代表"},
    {"grid": "420602003005015\x00"},
])
def test_control_characters_are_refused_and_nothing_is_stored(app, svc, changes):
    client = login(app, "jiangranran")
    before = _cases(svc)
    r = _report(client, **changes)
    assert r.status_code == 422
    html = r.get_data(as_text=True)
    assert "格式不正确" in html
    assert _cases(svc) == before


def test_tabs_and_line_breaks_are_text(app, svc):
    client = login(app, "jiangranran")
    r = _report(client, description="第一行：楼上漏水\r\n第二行：\t邻里纠纷")
    assert r.status_code == 302
    case_id = int(r.headers["Location"].rsplit("/", 1)[1])
    with svc.db.read() as s:
        assert s.get(DisputeCase, case_id).description == "第一行：楼上漏水\n第二行：\t邻里纠纷"


def test_control_characters_in_a_task_form_change_nothing(app, svc):
    c = report_case(svc)
    before = fingerprint(svc, c.id)
    r = TaskForm(app, svc, c.id).post(action="duplicate", duplicate_of="MD2026\x00")
    assert r.status_code == 422
    assert fingerprint(svc, c.id) == before


# ---- C: lengths match the columns ----------------------------------------------------------------
# (form file, field path) -> the column the value is stored in
STORED_IN = {
    ("dispatch.json", "duplicate_of"): DisputeCase.__table__.c.duplicate_of,
    ("report.json", "category"): DisputeCase.__table__.c.category,
    ("report.json", "description"): DisputeCase.__table__.c.description,
    ("report.json", "location.text"): DisputeCase.__table__.c.location_text,
    ("final_disposition.json", "disposition"): DisputeCase.__table__.c.disposition,
}


def _node(schema: dict, path: str) -> dict:
    for key in path.split("."):
        schema = schema["properties"][key]
    return schema


@pytest.mark.parametrize("forms_dir", [ROOT / "forms", ROOT / "tests" / "fixtures" / "v2" / "forms"])
def test_stored_string_fields_fit_their_columns(forms_dir):
    for (name, path), column in STORED_IN.items():
        node = _node(json.loads((forms_dir / name).read_text(encoding="utf-8")), path)
        assert node.get("type") == "string", (name, path)
        length = getattr(column.type, "length", None)
        if length is None:  # Text: no limit to respect
            continue
        longest = max(len(v) for v in node["enum"]) if "enum" in node else node.get("maxLength")
        assert longest is not None and longest <= length, (name, path, longest, length)


def test_a_duplicate_of_longer_than_the_column_is_refused(app, svc):
    c = report_case(svc)
    before = fingerprint(svc, c.id)
    form = TaskForm(app, svc, c.id)
    r = form.post(action="duplicate", duplicate_of="M" * 41)
    assert r.status_code == 422
    assert "最多" in r.get_data(as_text=True)
    assert fingerprint(svc, c.id) == before
    # a confirmation does not get an over-long number past the form's check
    r = form.post(action="duplicate", duplicate_of="M" * 41, duplicate_confirm="M" * 41)
    assert r.status_code == 422
    assert "最多" in r.get_data(as_text=True)
    assert fingerprint(svc, c.id) == before
    # 40 characters fit the column, but no such case exists: a field error, not a 500, nothing stored
    r = form.post(action="duplicate", duplicate_of="M" * 40)
    assert r.status_code == 422
    assert "辖区内没有这个编号的案件" in r.get_data(as_text=True)
    assert fingerprint(svc, c.id) == before
    r = form.post(action="duplicate", duplicate_of="M" * 40, duplicate_confirm="M" * 40)
    assert r.status_code == 422
    assert fingerprint(svc, c.id) == before
    original = report_case(svc)  # a real earlier case: its number is stored on the duplicate
    # first the named case is shown with its summary, and nothing is stored yet ...
    r = form.post(action="duplicate", duplicate_of=original.case_no)
    assert r.status_code == 200
    html = r.get_data(as_text=True)
    assert f'data-case-no="{original.case_no}"' in html
    assert f'name="duplicate_confirm" value="{original.case_no}"' in html
    assert fingerprint(svc, c.id) == before
    # ... then the form comes back confirming that case, and the duplicate is recorded
    r = form.post(action="duplicate", duplicate_of=original.case_no, duplicate_confirm=original.case_no)
    assert r.status_code == 302
    with svc.db.read() as s:
        assert s.get(DisputeCase, c.id).duplicate_of == original.case_no


# ---- D: NaN and infinities -----------------------------------------------------------------------
@pytest.mark.parametrize("value", ["NaN", "nan", "inf", "-Infinity", "1e999"])
def test_nan_and_infinity_are_not_coordinates(app, svc, value):
    client = login(app, "jiangranran")
    before = _cases(svc)
    for field in ("location.lat", "location.lng"):
        r = _report(client, **{field: value})
        assert r.status_code == 422, (field, value)
        assert "请输入数字" in r.get_data(as_text=True)
    assert _cases(svc) == before
