"""A bad row in the fixture city's XLSX (units and staff sheets in one file) imports nothing and is
named by file, sheet, line and column, like a CSV's (tests/org/test_org_import.py covers the CSVs)."""
from __future__ import annotations

import shutil

import pytest
from openpyxl import load_workbook
from sqlalchemy import func, select

from grid.org import importer
from grid.org.models import OrgUnit, Staff
from grid.services import Services
from tests.conftest import FIXTURES


@pytest.fixture
def osvc(db):
    return Services.build(db=db)


def _counts(svc) -> tuple[int, int]:
    with svc.db.read() as s:
        return (s.scalar(select(func.count()).select_from(OrgUnit)), s.scalar(select(func.count()).select_from(Staff)))


@pytest.mark.parametrize(("sheet", "line", "column", "value", "reason"), [
    ("units", 42, "level", "hamlet", "unknown level"),
    ("staff", 300, "phone", "12345", "mobile"),
])
def test_a_bad_xlsx_row_imports_nothing_and_is_named(osvc, tmp_path, sheet, line, column, value, reason):
    city = tmp_path / "city.xlsx"
    shutil.copyfile(FIXTURES / "org" / "city.xlsx", city)
    wb = load_workbook(city)
    ws = wb[sheet]
    header = [c.value for c in ws[1]]
    ws.cell(row=line, column=header.index(column) + 1, value=value)
    wb.save(city)
    before = _counts(osvc)
    with pytest.raises(importer.ImportRefused) as e:
        importer.import_org(osvc, city)
    assert _counts(osvc) == before
    # a problem names the workbook and its sheet: "city.xlsx[units]", "city.xlsx[staff]"
    mine = [p for p in e.value.problems if p.line == line and p.file == f"city.xlsx[{sheet}]"]
    assert mine and mine[0].column == column and reason in mine[0].reason, e.value.problems
    assert f"{mine[0].file} line {line}, column {column}" in str(mine[0])
