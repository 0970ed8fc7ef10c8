"""Importing the city's own org tree and staff: the fixture city in one call (CSV and XLSX), a bad
row imports nothing and is named (line, column, reason), a re-import changes nothing."""
from __future__ import annotations

import csv
import shutil
from pathlib import Path

import pytest
from sqlalchemy import func, select

from grid.org import audit, importer
from grid.org.models import OrgUnit, PasswordHistory, SecurityEvent, Staff, StaffRole
from grid.org.passwords import verify_password
from grid.services import Services
from tests.conftest import FIXTURES

CITY = FIXTURES / "org"


@pytest.fixture
def osvc(db):
    return Services.build(db=db)


def _counts(svc) -> dict:
    with svc.db.read() as s:
        units = dict(s.execute(select(OrgUnit.level, func.count()).group_by(OrgUnit.level)).all())
        return {"units": units, "staff": s.scalar(select(func.count()).select_from(Staff)),
                "roles": s.scalar(select(func.count()).select_from(StaffRole)),
                "events": s.scalar(select(func.count()).select_from(SecurityEvent)),
                "history": s.scalar(select(func.count()).select_from(PasswordHistory))}


def test_fixture_city_imports_from_csv_and_reimport_changes_nothing(osvc):
    seen = []
    report = importer.import_org(osvc, CITY / "units.csv", CITY / "staff.csv", progress=lambda d, t, n="": seen.append(d))
    after = _counts(osvc)
    assert after["units"] == {"city": 1, "county": 3, "township": 10, "village": 50, "grid": 200}
    assert after["staff"] == 500 and len(report.staff_added) == 500 and len(report.initial_passwords) == 500
    assert seen[-1] == 264 + 500
    with osvc.db.read() as s:
        grid = s.get(OrgUnit, "429901001001001")
        assert grid.level == "grid" and '"Polygon"' in grid.boundary and grid.path.count("/") == 5
        st = s.scalar(select(Staff).where(Staff.username == report.initial_passwords[0][0]))
        assert st.must_change_password
        assert verify_password(st.password_hash, report.initial_passwords[0][2])
        kinds = dict(s.execute(select(SecurityEvent.kind, func.count()).group_by(SecurityEvent.kind)).all())
    assert kinds == {audit.ACCOUNT_CREATED: 500, audit.ORG_IMPORT: 1}

    again = importer.import_org(osvc, CITY / "units.csv", CITY / "staff.csv")
    assert not again.changed and again.units_unchanged == 264 and again.staff_unchanged == 500
    assert _counts(osvc) == after


def test_fixture_city_imports_from_one_xlsx(osvc):
    report = importer.import_org(osvc, CITY / "city.xlsx")
    assert len(report.units_added) == 264 and len(report.staff_added) == 500
    assert not importer.import_org(osvc, CITY / "units.csv", CITY / "staff.csv").changed  # same city either way


def _with_row_changed(tmp_path: Path, name: str, line: int, column: str, value: str) -> Path:
    rows = list(csv.reader(open(CITY / name, encoding="utf-8")))
    rows[line - 1][rows[0].index(column)] = value
    out = tmp_path / name
    with open(out, "w", encoding="utf-8", newline="") as f:
        csv.writer(f).writerows(rows)
    return out


@pytest.mark.parametrize(("name", "line", "column", "value", "reason"), [
    ("units.csv", 40, "code", "42990100100", "12-digit"),
    ("units.csv", 41, "parent_code", "429909000000", "unknown parent"),
    ("units.csv", 42, "level", "hamlet", "unknown level"),
    ("units.csv", 43, "boundary", "{not json", "not valid JSON"),
    ("staff.csv", 301, "role", "grid_head", "cannot be held on a grid"),
    ("staff.csv", 300, "phone", "12345", "mobile"),
    ("staff.csv", 302, "unit_code", "429999999999", "unknown unit"),
])
def test_a_bad_row_imports_nothing_and_is_named(osvc, tmp_path, name, line, column, value, reason):
    units = CITY / "units.csv"
    staff = CITY / "staff.csv"
    bad = _with_row_changed(tmp_path, name, line, column, value)
    units, staff = (bad, staff) if name == "units.csv" else (units, bad)
    before = _counts(osvc)
    with pytest.raises(importer.ImportRefused) as e:
        importer.import_org(osvc, units, staff)
    assert _counts(osvc) == before
    mine = [p for p in e.value.problems if p.line == line and p.file == name]
    assert mine and mine[0].column == column and reason in mine[0].reason, e.value.problems


def test_duplicate_codes_and_moves_are_refused(osvc, tmp_path):
    importer.import_org(osvc, CITY / "units.csv")
    rows = list(csv.reader(open(CITY / "units.csv", encoding="utf-8")))
    moved = [r[:] for r in rows]
    village = next(r for r in moved if r[3] == "village")
    village[1] = next(r[0] for r in moved if r[3] == "township" and r[0] != village[1])  # another township
    village[0] = village[0]
    path = tmp_path / "moved.csv"
    with open(path, "w", encoding="utf-8", newline="") as f:
        csv.writer(f).writerows(moved + [rows[5]])
    with pytest.raises(importer.ImportRefused) as e:
        importer.import_org(osvc, path)
    reasons = " | ".join(p.reason for p in e.value.problems)
    assert "appears twice" in reasons and ("does not lie under" in reasons or "does not move" in reasons)


def test_rename_by_reimport_is_audited_and_export_round_trips(osvc, tmp_path):
    importer.import_org(osvc, CITY / "units.csv", CITY / "staff.csv")
    renamed = _with_row_changed(tmp_path, "units.csv", 3, "name", "新东湖区")
    report = importer.import_org(osvc, renamed)
    assert report.units_renamed == ["429901000000"]
    page = audit.query(osvc, kind=audit.UNIT_RENAMED)
    assert page.total == 1 and page.events[0].detail["after"] == {"name": "新东湖区"}
    units, staff = importer.export_rows(osvc)
    out = tmp_path / "export.xlsx"
    importer.write_table(out, units, "units")
    importer.write_table(out, staff, "staff")
    assert not importer.import_org(osvc, out).changed
    shutil.rmtree(tmp_path / "none", ignore_errors=True)
