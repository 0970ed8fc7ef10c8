"""Issue 17 G: export cells that a spreadsheet would run as a formula get a leading quote (OWASP
CSV injection); other values pass unchanged."""
from __future__ import annotations

import csv
import io
from datetime import date

import pytest

from grid.exports import escape_formula


@pytest.mark.parametrize("value", ['=HYPERLINK("http://evil.example","点击")', "+1+1", "-2+3", "@SUM(A1)",
                                   "\t=1", "\r=1", "=", "=张三"])
def test_formula_starts_are_quoted(value):
    assert escape_formula(value) == "'" + value


@pytest.mark.parametrize("value", ["张三", "", " =1", "a=b", "13800000001", "'=already", "襄城区 1-2-301"])
def test_plain_text_is_unchanged(value):
    assert escape_formula(value) == value


@pytest.mark.parametrize("value", [None, -3, -32.5, 0, 112.1432, date(2026, 1, 5), True])
def test_non_text_values_pass_as_they_are(value):
    assert escape_formula(value) is value


def test_a_csv_row_carries_the_text_not_a_formula():
    buf = io.StringIO()
    csv.writer(buf).writerow([escape_formula(v) for v in ["=HYPERLINK(\"x\")", "李四", -1.5]])
    assert buf.getvalue() == "'=HYPERLINK(\"\"x\"\")\",李四,-1.5\r\n".replace("'=HYPERLINK(\"\"x\"\")\"",
                                                                             "\"'=HYPERLINK(\"\"x\"\")\"")


def test_openpyxl_stores_the_escaped_value_as_text():
    openpyxl = pytest.importorskip("openpyxl")
    wb = openpyxl.Workbook()
    ws = wb.active
    ws.append([escape_formula('=HYPERLINK("http://evil.example")'), escape_formula("王五")])
    assert ws["A1"].data_type == "s" and ws["A1"].value == "'=HYPERLINK(\"http://evil.example\")"
    assert ws["B1"].value == "王五"


def test_a_registry_export_escapes_formulas_and_reads_back_as_typed(svc, tmp_path):
    """A resident named like a formula: the CSV export carries it inert, and a re-import of that
    file finds the resident unchanged (the quote is taken back off)."""
    from datetime import date

    from grid.registry import export, writer
    from grid.registry.models import Resident
    from tests.registry_helpers import SEED_GRID, household, person, sid

    worker = sid(svc, "jiangranran")
    hh = household(svc, worker, SEED_GRID, "檀溪路1号")
    evil = '=HYPERLINK("http://evil.example","点击")'
    person(svc, worker, hh, evil, date(1980, 1, 1), 7)
    out = tmp_path / "grid.csv"
    export.export_file(svc, out, "csv", staff_id=worker, grid_code=SEED_GRID)
    text = out.read_text(encoding="utf-8-sig")
    assert "'" + evil.replace('"', '""') in text and ',=HYPERLINK' not in text
    res = writer.import_file(svc, out, staff_id=worker, actor="t")
    assert not res.errors
    with svc.db.read() as s:
        from sqlalchemy import func, select
        assert s.scalar(select(func.count()).where(Resident.name == evil)) == 1
        assert s.scalar(select(func.count()).where(Resident.name.like("'%"))) == 0
