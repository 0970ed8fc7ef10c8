"""Indicators (考核指标) for a unit's subtree over a period, read from the rollup, never from the cases.

The definitions live in grid/cases/indicators.yaml (formulas, Chinese and English names), so
designers read and change them in one place; this module evaluates them. A page view reads
`indicator_total` (grid/cases/rollups.py): the unit's own rows for the few day/month/year buckets
that tile the period, so its cost does not grow with the number of cases below the unit.
"""
from __future__ import annotations

import math
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import date, timedelta
from functools import lru_cache
from pathlib import Path
from typing import Any

import yaml
from sqlalchemy.orm import Session

from engine.errors import InvalidData, NotFound
from grid.cases import rollups
from grid.cases.rollup import BUCKETS, MINUTES_PER_DAY
from grid.errors import Forbidden
from grid.org import service as org
from grid.org.models import OrgUnit

DEFINITIONS = Path(__file__).with_name("indicators.yaml")
KINDS = ("count", "stock", "sum", "rate", "duration")
PERIODS = ("day", "week", "month", "quarter", "year")


@dataclass(frozen=True)
class Indicator:
    key: str
    zh: str
    en: str
    kind: str
    better: str = "higher"
    standard: str | None = None
    spec: dict = field(default_factory=dict, compare=False)

    def terms(self, name: str) -> list[str]:
        """The `+`-joined names of one formula part (e.g. `closed + in_progress`)."""
        return [t.strip() for t in str(self.spec.get(name) or "").split("+") if t.strip()]


@lru_cache(maxsize=4)
def _load(path: str) -> tuple[dict[str, dict], tuple[Indicator, ...]]:
    doc = yaml.safe_load(Path(path).read_text(encoding="utf-8")) or {}
    measures = doc.get("measures") or {}
    found: list[Indicator] = []
    keys: set[str] = set()
    for raw in doc.get("indicators") or []:
        ind = Indicator(key=raw["key"], zh=raw["zh"], en=raw["en"], kind=raw["kind"],
                        better=raw.get("better", "higher"), standard=raw.get("standard"), spec=raw)
        if ind.kind not in KINDS or ind.key in keys:
            raise ValueError(f"{path}: indicator {ind.key!r}: bad kind or repeated key")
        used = {"count": ["sum"], "stock": ["plus", "minus"], "duration": []}.get(ind.kind, [])
        for part in used:
            bad = [m for m in ind.terms(part) if m not in measures]
            if bad:
                raise ValueError(f"{path}: indicator {ind.key!r} names unknown measures {bad}")
        for part in {"sum": ["terms"], "rate": ["numerator", "denominator"]}.get(ind.kind, []):
            bad = [k for k in ind.terms(part) if k not in keys]
            if bad:
                raise ValueError(f"{path}: indicator {ind.key!r} needs {bad} defined above it")
        keys.add(ind.key)
        found.append(ind)
    return measures, tuple(found)


def definitions(path: Path = DEFINITIONS) -> tuple[Indicator, ...]:
    """Every indicator, in the order of the definitions file."""
    return _load(str(path))[1]


def definition(key: str) -> Indicator:
    for ind in definitions():
        if ind.key == key:
            return ind
    raise NotFound(f"no indicator {key!r}")


def period(kind: str, ref: date) -> tuple[date, date]:
    """The first and last day (both included) of the day/week/month/quarter/year holding `ref`."""
    if kind == "day":
        return ref, ref
    if kind == "week":
        start = ref - timedelta(days=ref.weekday())
        return start, start + timedelta(days=6)
    if kind in ("month", "quarter", "year"):
        first_month = {"month": ref.month, "quarter": 3 * ((ref.month - 1) // 3) + 1, "year": 1}[kind]
        start = date(ref.year, first_month, 1)
        months = {"month": 1, "quarter": 3, "year": 12}[kind]
        y, m = divmod(first_month - 1 + months, 12)
        return start, date(ref.year + y, m + 1, 1) - timedelta(days=1)
    raise InvalidData(f"unknown period {kind!r}", [{"path": "period", "message": f"one of {', '.join(PERIODS)}"}])


# ---- evaluation ------------------------------------------------------------------------------
def _scope(path: str) -> str:
    return org.path_codes(path)[-1]


def _duration(flows: dict[tuple[str, str], int], by_measure: dict[str, int], measure: str,
              level: str | None) -> dict[str, Any]:
    def total(name: str) -> int:
        return by_measure.get(name, 0) if level is None else flows.get((name, level), 0)

    n = total(measure)
    out: dict[str, Any] = {"count": n, "avg_days": None, "p90_days": None}
    if not n:
        return out
    out["avg_days"] = total(f"{measure}_minutes") / n / MINUTES_PER_DAY
    rank, seen = math.ceil(0.9 * n), 0  # nearest rank; the answer is the bucket's upper bound
    for bound in BUCKETS:
        seen += total(f"{measure}_le_{bound}")
        if seen >= rank:
            out["p90_days"] = bound
            break
    return out


def evaluate(s: Session, path: str, start: date, end: date) -> dict[str, Any]:
    """Every indicator for the subtree under `path`, over [start, end] (Beijing days)."""
    return evaluate_many(s, [_scope(path)], start, end)[_scope(path)]


def evaluate_many(s: Session, scopes: list[str], start: date, end: date) -> dict[str, dict[str, Any]]:
    """`evaluate` for several units at once (unit codes): the same few queries, grouped by unit."""
    if end < start:
        raise InvalidData("the period ends before it starts", [{"path": "end", "message": "before start"}])
    inds = definitions()
    stock_measures = sorted({m for i in inds if i.kind == "stock" for m in i.terms("plus") + i.terms("minus")})
    # flows: (measure, level) summed over the period; stocks: measure summed from the beginning
    flows, stocks = rollups.sums_many(s, [(scopes, start, end, ("measure", "level"), None),
                                          (scopes, rollups.EPOCH, end, ("measure", "level"), stock_measures)])
    per_flow: dict[str, dict[tuple[str, str], int]] = {sc: {} for sc in scopes}
    per_stock: dict[str, dict[str, int]] = {sc: defaultdict(int) for sc in scopes}
    for (sc, m, lv), v in flows.items():
        per_flow[sc][(m, lv)] = v
    for (sc, m, _lv), v in stocks.items():
        per_stock[sc][m] += v
    return {sc: _values(inds, per_flow[sc], per_stock[sc]) for sc in scopes}


def evaluate_months(s: Session, scopes: list[str], months: list[tuple[date, date]]) -> list[dict[str, dict[str, Any]]]:
    """`evaluate_many` for consecutive calendar months (a trend), in three reads whatever their
    number: the month buckets' flows, and the stocks before the first month, carried forward month
    by month with the stock measures' flows."""
    if not months:
        return []
    inds = definitions()
    stock_measures = sorted({m for i in inds if i.kind == "stock" for m in i.terms("plus") + i.terms("minus")})
    flows = rollups.monthly_sums(s, scopes, months[0][0], months[-1][0])
    base = rollups.sums(s, scopes, rollups.EPOCH, months[0][0] - timedelta(days=1), measures=stock_measures)
    stocks: dict[str, dict[str, int]] = {sc: defaultdict(int) for sc in scopes}
    for (sc, m, _lv), v in base.items():
        stocks[sc][m] += v
    per_month: dict[date, dict[str, dict[tuple[str, str], int]]] = defaultdict(lambda: defaultdict(dict))
    for (sc, month, m, lv), v in flows.items():
        per_month[month][sc][(m, lv)] = v
    out = []
    for start, _end in months:
        row = {}
        for sc in scopes:
            f = per_month[start][sc]
            for (m, _lv), v in f.items():
                if m in stock_measures:
                    stocks[sc][m] += v
            row[sc] = _values(inds, f, dict(stocks[sc]))
        out.append(row)
    return out


def _values(inds: tuple[Indicator, ...], flows: dict[tuple[str, str], int], stocks: dict[str, int]) -> dict[str, Any]:
    by_measure: dict[str, int] = defaultdict(int)
    for (m, _lv), v in flows.items():
        by_measure[m] += v

    def flow(measure: str) -> int:
        return by_measure.get(measure, 0)

    values: dict[str, Any] = {}
    for ind in inds:
        if ind.kind == "count":
            values[ind.key] = sum(flow(m) for m in ind.terms("sum"))
        elif ind.kind == "stock":
            values[ind.key] = (sum(stocks.get(m, 0) for m in ind.terms("plus"))
                               - sum(stocks.get(m, 0) for m in ind.terms("minus")))
        elif ind.kind == "sum":
            values[ind.key] = sum(values[k] for k in ind.terms("terms"))
        elif ind.kind == "rate":
            num = sum(values[k] for k in ind.terms("numerator"))
            den = sum(values[k] for k in ind.terms("denominator"))
            values[ind.key] = num / den if den else None
        else:  # duration: overall and per level
            measure = ind.spec["measure"]
            levels = sorted({lv for (m, lv) in flows if m == measure})
            values[ind.key] = {"all": _duration(flows, by_measure, measure, None),
                               **{lv or "-": _duration(flows, by_measure, measure, lv) for lv in levels}}
    return values


def crosstab_cells(s: Session, path: str, measures: list[str], start: date, end: date) -> dict[tuple[str, str], int]:
    """(category, level) -> sum of `measures` over the subtree and period (for cross-tabs)."""
    cells = rollups.sums(s, [_scope(path)], start, end, by=("category", "level"), measures=measures)
    return {(cat, lv): v for (_sc, cat, lv), v in cells.items()}


def _visible_unit(s: Session, staff_id: str, unit_code: str) -> OrgUnit:
    unit = org.get_unit(s, unit_code)
    if unit is None:
        raise NotFound(f"no unit with code {unit_code}")
    if not any(unit.path.startswith(p) for p in org.jurisdiction_paths(s, staff_id)):
        raise Forbidden("this unit is outside your jurisdiction")
    return unit


def indicators(svc, staff_id: str, unit_code: str, start: date, end: date) -> dict[str, Any]:
    """Every indicator for a unit and its subtree over [start, end], if the person's jurisdiction
    covers the unit: counts are ints, rates floats (None when nothing to divide), durations dicts
    per level ("all" overall) with count, avg_days and p90_days (a bucket bound)."""
    with svc.db.read() as s:
        unit = _visible_unit(s, staff_id, unit_code)
        return evaluate(s, unit.path, start, end)


def _rank_value(ind: Indicator, value: Any) -> float | None:
    if ind.kind == "duration":
        return (value or {}).get("all", {}).get("avg_days")
    return value


def ranking(svc, staff_id: str, parent_code: str, indicator: str, start: date, end: date) -> list[dict[str, Any]]:
    """The parent's children ranked by one indicator, best first (`better` in the definitions);
    units with no value (nothing to divide) come last. Each row: rank, unit_code, name, value."""
    ind = definition(indicator)
    with svc.db.read() as s:
        _visible_unit(s, staff_id, parent_code)
        kids = org.children(s, parent_code)
        values = evaluate_many(s, [u.code for u in kids], start, end)
        rows = [{"unit_code": u.code, "name": u.name, "value": values[u.code][ind.key]} for u in kids]
    sign = -1 if ind.better == "higher" else 1

    def order(r: dict) -> tuple:
        v = _rank_value(ind, r["value"])
        return (v is None, sign * v if v is not None else 0, r["unit_code"])

    rows.sort(key=order)
    for i, r in enumerate(rows, 1):
        r["rank"] = i
    return rows
