"""Importing a city's own unit tree and staff from CSV or XLSX (and exporting them the same way).

Units: code, parent_code, name, level[, kind][, boundary]. Codes are 统计用区划代码: 12 digits
(2 province, 2 city, 2 county, 3 township, 3 village) for the city down to villages, a grid is
its village's code plus a 3-digit suffix; `boundary` is a grid's outline as GeoJSON text.
Staff: name, phone, unit_code, role[, title][, username] (username defaults to the phone).

Every row of both files is checked before anything is written; any problem imports nothing and
is reported with its line, column and reason. Importing is idempotent: a unit or account that is
already there as described is left alone, so a re-import changes nothing. New accounts get a
random one-time password (returned, for the administrator to hand out) that must be changed at
first sign-in.
"""
from __future__ import annotations

import csv
import json
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

from sqlalchemy import select
from sqlalchemy.orm import Session

from grid.exports import file_encoding
from grid.org import audit, policy
from grid.org import service as org
from grid.org.models import LEVELS, ROLE_LEVELS, ROLES, OrgUnit, Staff, StaffRole

Progress = Callable[[int, int, str], None]

UNIT_COLUMNS = ("code", "parent_code", "name", "level", "kind", "boundary")
STAFF_COLUMNS = ("name", "phone", "unit_code", "role", "title", "username")
_ALIASES = {
    "区划代码": "code", "代码": "code", "统计用区划代码": "code", "上级代码": "parent_code", "上级区划代码": "parent_code",
    "名称": "name", "姓名": "name", "级别": "level", "层级": "level", "类型": "kind", "边界": "boundary",
    "手机": "phone", "电话": "phone", "手机号": "phone", "单位代码": "unit_code", "所属单位": "unit_code",
    "角色": "role", "职务": "title", "用户名": "username", "账号": "username",
}
LEVEL_NAMES = {"市": "city", "县": "county", "区县": "county", "乡镇": "township", "街道": "township",
               "村": "village", "社区": "village", "村社区": "village", "网格": "grid"}
ROLE_NAMES = {"网格员": "grid_worker", "网格长": "grid_head", "调解员": "mediator", "调解人员": "mediator",
              "派件员": "dispatcher", "督办": "supervisor", "系统管理员": "admin", "管理员": "admin"}
DEFAULT_KIND = {"city": "市", "county": "区", "township": "街道", "village": "社区", "grid": "网格"}
_PHONE = re.compile(r"^1[3-9]\d{9}$")
_USERNAME = re.compile(r"^[a-z0-9][a-z0-9._-]{2,63}$")
# digits each level fixes in a 12-digit code (province+city = 4, county 6, township 9, village 12)
_FIXED = {"city": 4, "county": 6, "township": 9, "village": 12}


@dataclass(frozen=True)
class Problem:
    file: str
    line: int
    column: str
    reason: str

    def __str__(self) -> str:
        return f"{self.file} line {self.line}, column {self.column}: {self.reason}"


class ImportRefused(ValueError):
    """The files have problems; nothing was imported."""

    def __init__(self, problems: list[Problem]):
        super().__init__(f"{len(problems)} problem(s); nothing was imported")
        self.problems = problems


@dataclass
class Report:
    units_added: list[str] = field(default_factory=list)
    units_renamed: list[str] = field(default_factory=list)
    units_unchanged: int = 0
    staff_added: list[str] = field(default_factory=list)
    staff_updated: list[str] = field(default_factory=list)
    staff_unchanged: int = 0
    initial_passwords: list[tuple[str, str, str]] = field(default_factory=list)  # (username, name, password)

    @property
    def changed(self) -> bool:
        return bool(self.units_added or self.units_renamed or self.staff_added or self.staff_updated)

    def lines(self) -> list[str]:
        return [f"units: {len(self.units_added)} added, {len(self.units_renamed)} renamed, "
                f"{self.units_unchanged} unchanged",
                f"staff: {len(self.staff_added)} added, {len(self.staff_updated)} updated, "
                f"{self.staff_unchanged} unchanged"]


# ---- reading ---------------------------------------------------------------------------------
def _cell(v) -> str:
    if v is None:
        return ""
    if isinstance(v, float) and v.is_integer():
        return str(int(v))
    return str(v).strip()


def _sheet(wb, names: tuple[str, ...], fallback_first: bool):
    for ws in wb.worksheets:
        if ws.title.strip().lower() in names:
            return ws
    return wb.worksheets[0] if fallback_first else None


def read_table(path: Path, sheet: str = "units") -> Iterator[tuple[int, list[str]]]:
    """(line number, cells) of every row, the header first. XLSX: the sheet named `units`/单位
    (or `staff`/人员), else the first one for units."""
    path = Path(path)
    if path.suffix.lower() == ".xlsx":
        from openpyxl import load_workbook

        wb = load_workbook(path, read_only=True, data_only=True)
        try:
            names = ("units", "单位") if sheet == "units" else ("staff", "人员")
            ws = _sheet(wb, names, sheet == "units")
            if ws is None:
                return
            for i, row in enumerate(ws.iter_rows(values_only=True), start=1):
                yield i, [_cell(v) for v in row]
        finally:
            wb.close()
        return
    if path.suffix.lower() != ".csv":
        raise ValueError(f"{path.name}: use a .csv or .xlsx file")
    with open(path, encoding=file_encoding(path), newline="") as f:
        reader = csv.reader(f)
        for cells in reader:
            yield reader.line_num, [c.strip() for c in cells]


def has_sheet(path: Path, sheet: str) -> bool:
    return any(True for _ in read_table(path, sheet)) if Path(path).suffix.lower() == ".xlsx" else False


def _records(path: Path, sheet: str, known: tuple[str, ...], problems: list[Problem]) -> list[tuple[int, dict]]:
    rows = read_table(path, sheet)
    name = Path(path).name + ("" if Path(path).suffix.lower() == ".csv" else f"[{sheet}]")
    header = next(rows, None)
    if header is None:
        problems.append(Problem(name, 1, "-", "the file is empty"))
        return []
    cols = [_ALIASES.get(h.strip(), h.strip().lower()) for h in header[1]]
    needed = [c for c in known[:4] if c not in cols]
    if needed:
        problems.append(Problem(name, header[0], ", ".join(needed), "missing column(s)"))
        return []
    out = []
    for line, cells in rows:
        if not any(cells):
            continue
        out.append((line, {c: (cells[i] if i < len(cells) else "") for i, c in enumerate(cols) if c in known}))
    return out


# ---- checking --------------------------------------------------------------------------------
def code_problem(code: str, level: str, parent_code: str | None) -> str | None:
    """Why `code` cannot be a unit of `level` under `parent_code` (None if it can)."""
    if level == "grid":
        if not (code.isdigit() and len(code) == 15):
            return "a grid code is its village's 12-digit code plus a 3-digit suffix"
        if parent_code and not code.startswith(parent_code):
            return f"a grid code must start with its village's code {parent_code}"
        return None
    if not (code.isdigit() and len(code) == 12):
        return "a unit code has 12 digits (统计用区划代码)"
    fixed = _FIXED[level]
    if level != "village" and code[fixed:].strip("0"):
        return f"a {level} code ends in {12 - fixed} zeros"
    if parent_code and level != "city":
        pfix = _FIXED[LEVELS[LEVELS.index(level) - 1]]
        if code[:pfix] != parent_code[:pfix] or code == parent_code:
            return f"the code does not lie under its parent {parent_code}"
    return None


def _check_boundary(text: str) -> str | None:
    try:
        geo = json.loads(text)
    except ValueError:
        return "not valid JSON"
    if isinstance(geo, dict) and geo.get("type") == "Feature":
        geo = geo.get("geometry")
    if not isinstance(geo, dict) or geo.get("type") not in ("Polygon", "MultiPolygon") \
            or not isinstance(geo.get("coordinates"), list):
        return "a GeoJSON Polygon or MultiPolygon is needed"
    return None


@dataclass
class _Plan:
    units: list[dict] = field(default_factory=list)
    staff: list[dict] = field(default_factory=list)


def _check_units(s: Session, fname: str, rows: list[tuple[int, dict]], problems: list[Problem]) -> list[dict]:
    seen: dict[str, dict] = {}
    for line, r in rows:
        def bad(col: str, reason: str, line=line) -> None:
            problems.append(Problem(fname, line, col, reason))

        code, parent, name = r.get("code", ""), r.get("parent_code", "") or None, r.get("name", "")
        level = LEVEL_NAMES.get(r.get("level", ""), r.get("level", "").lower())
        if level not in LEVELS:
            bad("level", f"unknown level {r.get('level')!r} (one of {', '.join(LEVELS)})")
            continue
        if code in seen:
            bad("code", f"{code} appears twice (also line {seen[code]['line']})")
            continue
        problem = code_problem(code, level, None)  # the code's own shape; its parent is checked below
        if problem:
            bad("code", problem)
            continue
        if not name or len(name) > 100:
            bad("name", "a name of 1 to 100 characters is needed")
        if (level == "city") != (parent is None):
            bad("parent_code", "only the city has no parent" if parent is None else "the city has no parent")
        boundary = r.get("boundary", "") or None
        if boundary and level != "grid":
            bad("boundary", "only grids have a boundary")
        elif boundary and (why := _check_boundary(boundary)):
            bad("boundary", why)
        seen[code] = {"line": line, "code": code, "parent": parent, "name": name, "level": level,
                      "kind": r.get("kind", "") or DEFAULT_KIND[level], "boundary": boundary}
    for u in seen.values():
        def bad(col: str, reason: str, u=u) -> None:
            problems.append(Problem(fname, u["line"], col, reason))

        existing = s.get(OrgUnit, u["code"])
        if existing is not None and (existing.level != u["level"] or existing.parent_code != u["parent"]):
            bad("code", f"{u['code']} exists as a {existing.level} under {existing.parent_code}; "
                        "an import does not move units")
        if u["parent"] is None:
            continue
        p = seen.get(u["parent"])
        plevel = p["level"] if p else getattr(s.get(OrgUnit, u["parent"]), "level", None)
        if plevel is None:
            bad("parent_code", f"unknown parent {u['parent']}")
        elif LEVELS.index(plevel) != LEVELS.index(u["level"]) - 1:
            bad("parent_code", f"a {u['level']} cannot sit under a {plevel}")
        elif why := code_problem(u["code"], u["level"], u["parent"]):
            bad("parent_code", why)
    return sorted(seen.values(), key=lambda u: (LEVELS.index(u["level"]), u["code"]))


def _check_staff(s: Session, fname: str, rows: list[tuple[int, dict]], units: dict[str, str],
                 problems: list[Problem]) -> list[dict]:
    out: list[dict] = []
    seen: dict[tuple, int] = {}
    names: dict[str, str] = {}
    for line, r in rows:
        def bad(col: str, reason: str, line=line) -> None:
            problems.append(Problem(fname, line, col, reason))

        before = len(problems)
        name, phone, code = r.get("name", ""), r.get("phone", "").replace(" ", ""), r.get("unit_code", "")
        role = ROLE_NAMES.get(r.get("role", ""), r.get("role", "").lower())
        username = (r.get("username", "") or phone).lower()
        if not name or len(name) > 50:
            bad("name", "a name of 1 to 50 characters is needed")
        if phone and not _PHONE.match(phone):
            bad("phone", "not a mainland mobile number (11 digits)")
        if not username:
            bad("username", "a username or a phone number is needed")
        elif not (_PHONE.match(username) or _USERNAME.match(username)):
            bad("username", "3 to 64 of a-z, 0-9, '.', '_', '-'")
        level = units.get(code) or getattr(s.get(OrgUnit, code), "level", None)
        if level is None:
            bad("unit_code", f"unknown unit {code}")
        if role not in ROLES:
            bad("role", f"unknown role {r.get('role')!r}")
        elif level and level not in ROLE_LEVELS[role]:
            bad("role", f"{role} cannot be held on a {level}")
        key = (username, code, role)
        if username and key in seen:
            bad("username" if r.get("username") else "phone",
                f"{username} has this role twice (also line {seen[key]})")
        elif username in names and names[username] != name:
            bad("name", f"{username} is named differently on another line")
        if len(r.get("title", "")) > 50:
            bad("title", "at most 50 characters")
        if len(problems) == before:
            seen[key] = line
            names[username] = name
            out.append({"line": line, "name": name, "phone": phone or None, "unit": code, "role": role,
                        "title": r.get("title", "") or None, "username": username})
    return out


# ---- importing -------------------------------------------------------------------------------
def import_org(svc, units: Path | None = None, staff: Path | None = None, *, actor: str | None = None,
               progress: Progress | None = None) -> Report:
    """Check both files completely, then apply them in one transaction. Raises ImportRefused
    (nothing written) listing every problem."""
    progress = progress or (lambda done, total, note="": None)
    problems: list[Problem] = []
    unit_rows = _records(units, "units", UNIT_COLUMNS, problems) if units else []
    staff_src = staff or (units if units and has_sheet(units, "staff") else None)
    staff_rows = _records(staff_src, "staff", STAFF_COLUMNS, problems) if staff_src else []
    uname = Path(units).name + ("[units]" if Path(units).suffix.lower() == ".xlsx" else "") if units else ""
    sname = Path(staff_src).name + ("[staff]" if Path(staff_src).suffix.lower() == ".xlsx" else "") if staff_src else ""
    total = len(unit_rows) + len(staff_rows)
    report = Report()
    with svc.db.write() as s:
        plan = _Plan()
        plan.units = _check_units(s, uname, unit_rows, problems)
        plan.staff = _check_staff(s, sname, staff_rows, {u["code"]: u["level"] for u in plan.units}, problems)
        if problems:
            raise ImportRefused(sorted(problems, key=lambda p: (p.file, p.line)))
        done = 0
        for u in plan.units:
            existing = s.get(OrgUnit, u["code"])
            if existing is None:
                unit = org.add_unit(s, u["code"], u["name"], u["level"], u["kind"], u["parent"])
                unit.boundary = u["boundary"]
                report.units_added.append(u["code"])
            elif existing.name != u["name"] or (u["boundary"] and existing.boundary != u["boundary"]):
                if existing.name != u["name"]:
                    audit.record(s, audit.UNIT_RENAMED, actor=actor, unit=u["code"],
                                 detail={"before": {"name": existing.name}, "after": {"name": u["name"]}, "via": "import"})
                existing.name = u["name"]
                existing.boundary = u["boundary"] or existing.boundary
                report.units_renamed.append(u["code"])
            else:
                report.units_unchanged += 1
            done += 1
            progress(done, total, u["code"])
        s.flush()
        for p in plan.staff:
            _apply_staff(s, p, report, actor)
            done += 1
            progress(done, total, p["username"])
        if report.changed:
            audit.record(s, audit.ORG_IMPORT, actor=actor, detail={
                "files": [n for n in (uname, sname) if n], "units_added": len(report.units_added),
                "units_renamed": len(report.units_renamed), "staff_added": len(report.staff_added),
                "staff_updated": len(report.staff_updated)})
    progress(total, total, "done")
    return report


def _apply_staff(s: Session, p: dict, report: Report, actor: str | None) -> None:
    st = org.staff_by_username(s, p["username"])
    if st is None:
        initial = policy.one_time_password()
        st = org.create_staff(s, p["username"], p["name"], password_hash=policy.initial_hash(initial), phone=p["phone"])
        st.must_change_password = True
        st.title = p["title"]
        org.assign_role(s, st.id, p["unit"], p["role"], title=p["title"])
        report.staff_added.append(p["username"])
        report.initial_passwords.append((p["username"], p["name"], initial))
        audit.record(s, audit.ACCOUNT_CREATED, actor=actor, subject=st.id, unit=p["unit"], detail={
            "before": None, "after": {"name": p["name"], "unit": p["unit"], "role": p["role"]}, "via": "import"})
        return
    before, after = {}, {}
    for key in ("name", "title"):
        if p[key] is not None and getattr(st, key) != p[key]:
            before[key], after[key] = getattr(st, key), p[key]
            setattr(st, key, p[key])
    if p["phone"] and st.phone != p["phone"]:
        st.phone = p["phone"]
        before["contact"] = after["contact"] = "changed"
    if after:
        audit.record(s, audit.ACCOUNT_EDITED, actor=actor, subject=st.id, detail={"before": before, "after": after,
                                                                                   "via": "import"})
    new_role = st.active and not org.holds_role(s, st.id, p["unit"], p["role"])
    if new_role:
        org.assign_role(s, st.id, p["unit"], p["role"], title=p["title"])
        audit.record(s, audit.ROLE_ASSIGNED, actor=actor, subject=st.id, unit=p["unit"],
                     detail={"before": None, "after": {"role": p["role"], "unit": p["unit"]}, "via": "import"})
    if after or new_role:
        report.staff_updated.append(p["username"])
    else:
        report.staff_unchanged += 1


# ---- exporting -------------------------------------------------------------------------------
def export_rows(svc, under: str | None = None) -> tuple[list[list[str]], list[list[str]]]:
    """(unit rows, staff rows), each with its header, in the import format (no passwords):
    importing them back changes nothing."""
    with svc.db.read() as s:
        q = select(OrgUnit).where(OrgUnit.retired_on.is_(None))
        if under:
            top = s.get(OrgUnit, under)
            if top is None:
                raise org.OrgError(f"unknown unit {under}")
            q = q.where(org.path_under(OrgUnit.path, top.path))
        units = s.scalars(q.order_by(OrgUnit.depth, OrgUnit.code)).all()
        codes = {u.code for u in units}
        roles = s.execute(select(Staff, StaffRole).join(StaffRole, StaffRole.staff_id == Staff.id)
                          .where(StaffRole.active.is_(True), Staff.active.is_(True))
                          .order_by(Staff.id, StaffRole.id)).all()
        urows = [list(UNIT_COLUMNS)] + [[u.code, u.parent_code or "", u.name, u.level, u.kind, u.boundary or ""]
                                        for u in units]
        srows = [list(STAFF_COLUMNS)] + [[st.name, st.phone or "", r.unit_code, r.role, r.title or st.title or "",
                                          st.username] for st, r in roles if r.unit_code in codes]
    return urows, srows


def write_table(path: Path, rows: list[list[str]], sheet: str = "units") -> None:
    """Write rows to a CSV, or to a sheet of an XLSX (created or added to)."""
    path = Path(path)
    if path.suffix.lower() == ".xlsx":
        from openpyxl import Workbook, load_workbook

        if path.exists():
            wb = load_workbook(path)
        else:
            wb = Workbook()
            wb.remove(wb.active)
        if sheet in wb.sheetnames:
            wb.remove(wb[sheet])
        ws = wb.create_sheet(sheet)
        for row in rows:
            ws.append(row)
        for ws_col in ("A", "C", "F"):
            for c in ws[ws_col]:
                c.number_format = "@"
        wb.save(path)
        return
    with open(path, "w", encoding="utf-8", newline="") as f:
        csv.writer(f).writerows(rows)
