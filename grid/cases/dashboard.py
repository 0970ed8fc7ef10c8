"""Dashboard page data (看板): a unit's key rates and counts, a monthly trend, the ranking of its
child units on any indicator, a category × level cross-tab and the late count, plus the XLSX
writer shared by every indicator and list export.

Everything reads the indicator rollup (grid.cases.indicators) and `case_late`, never the cases,
so a city's dashboard costs a bounded number of grouped queries whatever the history size.
Jurisdiction: the unit must lie in the person's jurisdiction (Forbidden otherwise).
"""
from __future__ import annotations

import io
from dataclasses import dataclass, field
from datetime import date, timedelta
from typing import Any

from sqlalchemy import func, select

from engine import clock
from engine.errors import InvalidData
from grid.cases import indicators as ind
from grid.cases.models import CaseLate
from grid.exports import escape_formula
from grid.org import service as org
from grid.org.models import OrgUnit

KEY_RATES = ("closure_rate", "on_time_rate", "overdue_rate", "resolution_rate", "satisfaction_rate")
KEY_COUNTS = ("reported", "accepted", "settled_on_spot", "closed", "in_progress", "warnings", "supervisions",
              "urges", "accountabilities")
TREND_MONTHS = 12
LATE_CAP = 1000


@dataclass
class Dashboard:
    unit_code: str
    unit_name: str
    unit_level: str
    crumbs: list[tuple[str, str]]  # from the person's own unit down to this one
    children: list[tuple[str, str, str]]  # (code, name, level): where to drill down
    start: date
    end: date
    values: dict[str, Any]
    trend: list[dict[str, Any]]  # one per month, oldest first: month "YYYY-MM" and the key values
    rank_by: str
    ranking: list[dict[str, Any]]
    crosstab: dict[str, Any]
    late: int  # late work items under the unit, at most LATE_CAP
    others: list[tuple[str, str]] = field(default_factory=list)  # the person's other own units


def home_unit(svc, staff_id: str) -> str | None:
    """The unit a person's dashboard opens on: their first (outermost) unit."""
    with svc.db.read() as s:
        paths = org.jurisdiction_paths(s, staff_id)
        if not paths:
            return None
        return org.path_codes(paths[0])[-1]


def own_units(svc, staff_id: str) -> list[tuple[str, str]]:
    with svc.db.read() as s:
        paths = org.jurisdiction_paths(s, staff_id)
        return [(u.code, u.name) for u in s.scalars(select(OrgUnit).where(OrgUnit.path.in_(paths))
                                                    .order_by(OrgUnit.path))] if paths else []


def month_bounds(month: str) -> tuple[date, date]:
    """'2026-11' -> (2026-11-01, 2026-11-30)."""
    try:
        y, m = (int(x) for x in month.split("-", 1))
        return ind.period("month", date(y, m, 1))
    except (ValueError, TypeError) as e:
        raise InvalidData("not a month", [{"path": "month", "message": "YYYY-MM"}]) from e


def months_back(end: date, n: int) -> list[tuple[date, date]]:
    """The n calendar months ending with the one that holds `end`, oldest first."""
    out = []
    y, m = end.year, end.month
    for _ in range(n):
        out.append(ind.period("month", date(y, m, 1)))
        y, m = (y, m - 1) if m > 1 else (y - 1, 12)
    return out[::-1]


def crosstab(s, path: str, indicator: str, start: date, end: date) -> dict[str, Any]:
    """A count indicator by category × level over the subtree and period (levels are where
    the measure is counted: "" for case measures such as 上报)."""
    d = ind.definition(indicator)
    if d.kind != "count":
        raise InvalidData("cross-tabs are for count indicators", [{"path": "cross", "message": "a count"}])
    cells = ind.crosstab_cells(s, path, d.terms("sum"), start, end)
    cats = sorted({c for c, _ in cells})
    levels = sorted({lv for _, lv in cells}, key=lambda lv: (ind_level_order(lv), lv))
    return {"indicator": indicator, "categories": cats, "levels": levels, "cells": cells,
            "row_totals": {c: sum(v for (cc, _), v in cells.items() if cc == c) for c in cats},
            "col_totals": {lv: sum(v for (_, ll), v in cells.items() if ll == lv) for lv in levels},
            "total": sum(cells.values())}


def ind_level_order(level: str) -> int:
    order = ("", "village", "township", "county", "city")
    return order.index(level) if level in order else len(order)


def late_count(s, path: str) -> int:
    inner = (select(CaseLate.work_item_id).where(CaseLate.scope == path, CaseLate.late_at <= clock.now())
             .limit(LATE_CAP))
    return s.scalar(select(func.count()).select_from(inner.subquery())) or 0


def dashboard(svc, staff_id: str, unit_code: str, start: date, end: date, rank_by: str = "closure_rate",
              cross: str = "handled", months: int = TREND_MONTHS) -> Dashboard:
    """Everything one dashboard page shows, for a unit in the person's jurisdiction."""
    ind.definition(rank_by)  # NotFound for an unknown indicator
    with svc.db.read() as s:
        unit = ind._visible_unit(s, staff_id, unit_code)
        back = months_back(end, months)
        values = ind.evaluate(s, unit.path, start, end)
        monthly = [p[unit.code] for p in ind.evaluate_months(s, [unit.code], back)]
        trend = [{"month": f"{m_start:%Y-%m}", **{k: v[k] for k in KEY_RATES + ("reported", "closed")}}
                 for (m_start, _end), v in zip(back, monthly, strict=True)]
        mine = org.jurisdiction_paths(s, staff_id)
        top = next(p for p in mine if unit.path.startswith(p))
        codes = org.path_codes(unit.path)[len(org.path_codes(top)) - 1:]
        names = dict(s.execute(select(OrgUnit.code, OrgUnit.name).where(OrgUnit.code.in_(codes))).all())
        children = [(c.code, c.name, c.level) for c in org.children(s, unit.code)]
        table = crosstab(s, unit.path, cross, start, end)
        late = late_count(s, unit.path)
        others = [(u.code, u.name) for u in s.scalars(select(OrgUnit).where(OrgUnit.path.in_(mine)))
                  if u.code != unit.code]
        u_code, u_name, u_level = unit.code, unit.name, unit.level
    ranking = ind.ranking(svc, staff_id, unit_code, rank_by, start, end) if children else []
    return Dashboard(u_code, u_name, u_level, [(c, names.get(c, c)) for c in codes], children, start, end, values,
                     trend, rank_by, ranking, table, late, others)


def children_table(svc, staff_id: str, unit_code: str, start: date, end: date) -> list[dict[str, Any]]:
    """Every indicator for each child unit (the table behind rankings and the monthly report)."""
    with svc.db.read() as s:
        unit = ind._visible_unit(s, staff_id, unit_code)
        return [{"unit_code": c.code, "name": c.name, "level": c.level,
                 "values": ind.evaluate(s, c.path, start, end)} for c in org.children(s, unit.code)]


def previous_month(start: date) -> tuple[date, date]:
    return ind.period("month", start - timedelta(days=1))


# ---- XLSX --------------------------------------------------------------------------------------
@dataclass
class Sheet:
    """One worksheet: a few heading lines (title, unit hierarchy, period, filters), then a table."""

    title: str
    heading: list[list[Any]]
    columns: list[str]
    rows: list[list[Any]]


def workbook(sheets: list[Sheet]) -> bytes:
    """An .xlsx file of these sheets; every text cell passes through escape_formula, so a value
    typed by a resident can never run as a formula in the official's spreadsheet."""
    from openpyxl import Workbook
    from openpyxl.styles import Font

    wb = Workbook()
    wb.remove(wb.active)
    for sh in sheets:
        ws = wb.create_sheet(title=_sheet_title(sh.title))
        for line in sh.heading:
            ws.append([escape_formula(v) for v in line])
        if sh.heading:
            ws.cell(row=1, column=1).font = Font(bold=True, size=13)
            ws.append([])
        ws.append([escape_formula(c) for c in sh.columns])
        for cell in ws[ws.max_row]:
            cell.font = Font(bold=True)
        for row in sh.rows:
            ws.append([escape_formula(v) for v in row])
        for i, col in enumerate(sh.columns, 1):
            width = max([len(str(col))] + [len(str(r[i - 1])) for r in sh.rows[:200] if i - 1 < len(r)])
            ws.column_dimensions[ws.cell(row=1, column=i).column_letter].width = min(60, max(8, width * 1.6))
    out = io.BytesIO()
    wb.save(out)
    return out.getvalue()


def _sheet_title(title: str) -> str:
    bad = set("[]:*?/\\")
    return "".join("_" if ch in bad else ch for ch in title)[:31] or "Sheet"
