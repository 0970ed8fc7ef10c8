"""Reading a registry file (CSV or XLSX) and checking it row by row: the import format, header
mapping and the validation of every row on its own.

One row per resident (the building and household columns repeat); a row with only the building
columns registers an empty building, one with the household columns too an empty household.
Columns (a header row; Chinese or English names, any order; `grid_code` may be left out when
the import names the grid):

    网格编码 grid_code · 楼栋地址 address · 纬度 lat · 经度 lng · 门牌号 door_no · 姓名 name ·
    身份证号 id_number · 联系电话 phone · 出生日期 birth_date · 性别 sex · 与户主关系 relation · 状态 status

The same columns are what `grid.registry.export` writes, so an export imports again unchanged.
Checks across rows and against the database are `grid.registry.writer`'s.
"""
from __future__ import annotations

import csv
import hashlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import date, datetime
from pathlib import Path
from typing import Any

from engine import clock
from grid.exports import file_encoding, unescape_formula
from grid.registry import rules
from grid.registry.models import RELATIONS, SEXES, STATUSES

COLUMNS = [
    ("grid_code", "网格编码"), ("address", "楼栋地址"), ("lat", "纬度"), ("lng", "经度"), ("door_no", "门牌号"),
    ("name", "姓名"), ("id_number", "身份证号"), ("phone", "联系电话"), ("birth_date", "出生日期"),
    ("sex", "性别"), ("relation", "与户主关系"), ("status", "状态"),
]
LABELS = dict(COLUMNS)
ALIASES = {
    "身份证号码": "id_number", "公民身份号码": "id_number", "手机号": "phone", "手机号码": "phone", "电话": "phone",
    "地址": "address", "门牌": "door_no", "房号": "door_no", "网格": "grid_code", "关系": "relation",
    "居住状态": "status", "出生年月": "birth_date",
}
FIELDS = [k for k, _label in COLUMNS]
_STATUS_IN = {**{v: k for k, v in STATUSES.items()}, **{k: k for k in STATUSES}, "迁入": "living", "现住": "living"}
_SEX_IN = {**{v: k for k, v in SEXES.items()}, **{k: k for k in SEXES}, "m": "M", "f": "F", "male": "M",
           "female": "F"}
_REL_IN = {**{v: k for k, v in RELATIONS.items()}, **{k: k for k in RELATIONS}, "本人": "head", "子": "child",
           "女": "child", "儿子": "child", "女儿": "child", "妻": "spouse", "夫": "spouse", "父亲": "parent",
           "母亲": "parent", "孙子": "grandchild", "孙女": "grandchild"}
_NUMBER = "\x00number:"  # marks an ID number that Excel stored as a number


@dataclass
class RowError:
    line: int
    column: str  # as the file names it (or the Chinese label)
    reason: str

    def __str__(self) -> str:
        return f"line {self.line}, {self.column}: {self.reason}"


Progress = Callable[[int, int, str], None]
"""A progress callback: (rows done, rows in all, what is happening)."""


# ---- reading ------------------------------------------------------------------------------------
def file_format(name: str, fmt: str | None) -> str:
    """'csv' or 'xlsx': `fmt`, or else the file name's suffix; ValueError for anything else."""
    fmt = (fmt or Path(name).suffix.lstrip(".")).lower()
    if fmt not in ("csv", "xlsx"):
        raise ValueError(f"unknown format {fmt!r}: use .csv or .xlsx")
    return fmt


def count_rows(path: Path, fmt: str) -> int:
    """About how many data rows the file has (for the progress bar; CSV: line breaks, fast)."""
    if fmt == "csv":
        n = 0
        with open(path, "rb") as f:
            while chunk := f.read(1 << 22):
                n += chunk.count(b"\n")
        return max(n - 1, 0)
    from openpyxl import load_workbook

    wb = load_workbook(path, read_only=True)
    try:
        return max((wb.worksheets[0].max_row or 1) - 1, 0)
    finally:
        wb.close()


def _cell(v: Any) -> str:
    if v is None:
        return ""
    if isinstance(v, datetime):
        return v.date().isoformat()
    if isinstance(v, date):
        return v.isoformat()
    if isinstance(v, float) and v.is_integer() and abs(v) < 1e15:
        return str(int(v))
    return unescape_formula(str(v).strip())


def read_rows(path: Path, fmt: str) -> Iterator[tuple[int, list[str]]]:
    """(line number, cells) for every row, the header first."""
    if fmt == "csv":
        with open(path, encoding=file_encoding(path), newline="") as f:
            first = f.readline()
            f.seek(0)
            delimiter = "\t" if first.count("\t") > first.count(",") else ","
            reader = csv.reader(f, delimiter=delimiter)
            for cells in reader:
                yield reader.line_num, [unescape_formula(c.strip()) for c in cells]
        return
    from openpyxl import load_workbook

    wb = load_workbook(path, read_only=True, data_only=True)
    try:
        ws = wb.worksheets[0]
        header: list[str] | None = None
        id_col = None
        for i, row in enumerate(ws.iter_rows(values_only=True), 1):
            cells = [_cell(v) for v in row]
            if header is None:
                header = cells
                keys = [header_key(h) for h in header]
                id_col = keys.index("id_number") if "id_number" in keys else None
            elif id_col is not None and id_col < len(row) and isinstance(row[id_col], (int, float)):
                cells[id_col] = _NUMBER + cells[id_col]
            yield i, cells
    finally:
        wb.close()


def header_key(h: str) -> str | None:
    """The field a header cell names (English key, Chinese label or a known alias), or None."""
    h = (h or "").strip().lstrip("\ufeff")
    if h in LABELS:
        return h
    low = h.lower()
    if low in LABELS:
        return low
    for key, label in COLUMNS:
        if h == label:
            return key
    return ALIASES.get(h)


def map_columns(cells: list[str], names: dict[str, str], err: Callable[[int, str, str], None],
                need_grid: bool) -> dict[str, int]:
    """Field -> column index from the header row; unknown, doubled and missing columns go to `err`.
    `names` receives each field's header as the file spells it (for the error messages)."""
    cols: dict[str, int] = {}
    for i, h in enumerate(cells):
        if not h:
            continue
        key = header_key(h)
        if key is None:
            err(1, h, "unknown column; expected " + "、".join(label for _k, label in COLUMNS))
        elif key in cols:
            err(1, h, "the column appears twice")
        else:
            cols[key] = i
            names[key] = h.lstrip("\ufeff")
    for key in ("grid_code", "address") if need_grid else ("address",):
        if key not in cols:
            err(1, LABELS[key], "missing column")
    return cols


def file_sha256(path: Path) -> str:
    """The file's SHA-256 (recorded with the import, so a re-import of the same file shows)."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(1 << 20):
            h.update(chunk)
    return h.hexdigest()


# ---- validation ---------------------------------------------------------------------------------
class Validator:
    """Checks one row at a time; remembers what cross-row checks need."""

    def __init__(self, grids: dict[str, str], editable: set[str] | None, default_grid: str | None):
        self.grids = grids  # code -> level, for every unit
        self.editable = editable
        self.default_grid = default_grid
        self.today = clock.local(clock.now()).date()
        self.count = 0  # errors reported so far

    def prepare(self, cols: dict[str, int]) -> None:
        self.idx = [cols.get(k) for k in FIELDS]

    def row(self, cells: list[str], line: int, err: Callable[[int, str, str], None]):
        """A normalised record, or None after reporting its errors. Cells come stripped."""
        n = len(cells)
        grid, address, lat_s, lng_s, door, name, idn, phone, born, sex, relation, status = [
            cells[i] if i is not None and i < n else "" for i in self.idx]
        n0 = self.count
        grid = grid or (self.default_grid or "")
        if not grid:
            self.e(err, line, "grid_code", "required")
        elif self.grids.get(grid) != "grid":
            self.e(err, line, "grid_code", "no such grid" if grid not in self.grids else "not a grid")
        elif self.default_grid and grid != self.default_grid:
            self.e(err, line, "grid_code", f"this import is for grid {self.default_grid}")
        elif self.editable is not None and grid not in self.editable:
            self.e(err, line, "grid_code", "you may not change this grid")
        if not address:
            self.e(err, line, "address", "required")
        elif len(address) > 200:
            self.e(err, line, "address", "longer than 200 characters")
        lat = self.coord(err, line, "lat", lat_s, 90) if lat_s else None
        lng = self.coord(err, line, "lng", lng_s, 180) if lng_s else None
        if len(door) > 20:
            self.e(err, line, "door_no", "longer than 20 characters")
        rec = None
        if name or idn or phone or born or sex or relation or status:
            if not door:
                self.e(err, line, "door_no", "required for a resident")
            rec = self.person(name, idn, phone, born, sex, relation, status, line, err)
        if self.count != n0:
            return None
        return (grid, address, lat, lng, door, rec)

    def e(self, err, line: int, col: str, reason: str) -> None:
        self.count += 1
        err(line, col, reason)

    def coord(self, err, line: int, col: str, raw: str, limit: float) -> float | None:
        if not raw:
            return None
        try:
            v = float(raw)
        except ValueError:
            self.e(err, line, col, "not a number")
            return None
        if not -limit <= v <= limit:
            self.e(err, line, col, f"must be between -{limit:g} and {limit:g}")
            return None
        return v

    def person(self, name, idn, phone, born_s, sex_s, rel_s, status_s, line: int, err) -> tuple | None:
        n0 = self.count
        if not name:
            self.e(err, line, "name", "required")
        elif len(name) > 50:
            self.e(err, line, "name", "longer than 50 characters")
        idn = idn.upper()
        if not idn:
            self.e(err, line, "id_number", "required (the ID number identifies the person on re-import)")
        elif idn.startswith(_NUMBER.upper()):
            self.e(err, line, "id_number", "stored as a number, which loses digits: format the column as text")
            idn = ""
        else:
            problem = rules.id_problem(idn, self.today)
            if problem:
                self.e(err, line, "id_number", problem)
                idn = ""
        if phone and rules.phone_problem(phone):
            self.e(err, line, "phone", rules.phone_problem(phone))
        born = None
        if born_s:
            raw = born_s.replace("/", "-").replace(".", "-")
            try:
                born = date.fromisoformat(raw) if len(raw) == 10 else datetime.strptime(raw, "%Y%m%d").date()
            except ValueError:
                self.e(err, line, "birth_date", "not a date (YYYY-MM-DD)")
        sex = None
        if sex_s:
            sex = _SEX_IN.get(sex_s) or _SEX_IN.get(sex_s.lower())
            if sex is None:
                self.e(err, line, "sex", "男 or 女 (M or F)")
        if idn:
            id_born = date(int(idn[6:10]), int(idn[10:12]), int(idn[12:14]))
            if born is None:
                born = id_born
            elif born != id_born:
                self.e(err, line, "birth_date", "does not match the ID number")
            id_sex = "M" if int(idn[16]) % 2 else "F"
            if sex is None:
                sex = id_sex
            elif sex != id_sex:
                self.e(err, line, "sex", "does not match the ID number")
        relation = _REL_IN.get(rel_s) if rel_s else None
        if not rel_s:
            self.e(err, line, "relation", "required (户主, 配偶, 子女 ...)")
        elif relation is None:
            self.e(err, line, "relation", "unknown; use one of " + "、".join(RELATIONS.values()))
        status = _STATUS_IN.get(status_s or "living")
        if status is None:
            self.e(err, line, "status", "在住, 迁出 or 死亡")
        if self.count != n0:
            return None
        return (name, idn, phone or None, born, sex, relation, status)


def id_key(idn: str) -> int:
    """An ID number as a compact int (for the duplicate check of a million rows)."""
    return int(idn[:17]) * 11 + (10 if idn[17] == "X" else int(idn[17]))
