"""Indicator totals per unit subtree (`indicator_total`), so a dashboard reads a handful of rows
whatever the history size.

`indicator_rollup` (grid/cases/rollup.py) holds what each case record adds, keyed by the unit
that earned it and the Beijing day. Summing it for a subtree means reading every row of every
unit below: the city's dashboard read every row of the month, and that grew with the number of
cases. `indicator_total` holds the same numbers already summed for every ancestor of the unit
(the unit itself included) and for three period buckets (day, month, year), keyed by
(scope, bucket, period start, category, level, measure). A subtree over a period is then:
the scope's rows for the few buckets that tile the period (`tiles`), whatever the number of cases.

Two rules keep it small and its reads flat (an OLAP cube's "all" member and its coarse cells):
- Only scopes on TOTAL_LEVELS (township, county, city: the subtrees with hundreds to thousands of
  units) have totals. A village (itself and its few grids), a grid or a department sums its own
  units' rollup rows: as few rows as the totals would hold, since such a subtree has a case every
  few days, and the totals of those levels were two thirds of the table.
- Every total is kept twice: per category, and summed over all categories (category "*"). The
  indicators read the "*" rows, so a busy county reads one row per (level, measure) and bucket,
  not one per category as well; the cross-tab by category reads the per-category rows.

Database triggers on `indicator_rollup` keep it in step, in the statement's own transaction,
whoever writes the rollup (the step listener, a report's source count, an urge or an
accountability outcome written outside a step, a rebuild), on SQLite and PostgreSQL alike - the
same way grid/registry/counts.py keeps `registry_count`. `rebuild` recomputes it from
`indicator_rollup` (which `grid.cases.rollup.rebuild` recomputes from `case_record`) and says
where the stored one differed.

Ancestors come from `org_unit.parent_code`, at most MAX_DEPTH levels up (the demo city has 5).
Units do not move between parents in Gridflow (staff do); a unit that did would need a rebuild.
"""
from __future__ import annotations

from collections import defaultdict
from datetime import date, timedelta

from sqlalchemy import BigInteger, Date, String, delete, event, func, literal, select, union_all
from sqlalchemy.orm import Mapped, Session, mapped_column

from engine.db import Base

BUCKETS = ("d", "m", "y")  # day, month, year
MAX_DEPTH = 8  # the unit and up to 7 ancestors
TOTAL_LEVELS = ("city", "county", "township")  # the scopes that have totals (see the module)
ALL = "*"  # the category of the rows summed over every category
Key = tuple[str, str, date, str, str, str]  # scope, bucket, period start, category, level, measure
_LEVELS_SQL = ", ".join(f"'{lv}'" for lv in TOTAL_LEVELS)


class IndicatorTotal(Base):
    """indicator_rollup summed per ancestor unit (`scope`) and period bucket (see the module)."""

    __tablename__ = "indicator_total"
    scope: Mapped[str] = mapped_column(String(20), primary_key=True)
    bucket: Mapped[str] = mapped_column(String(1), primary_key=True)
    period_start: Mapped[date] = mapped_column(Date, primary_key=True)
    category: Mapped[str] = mapped_column(String(20), primary_key=True)
    level: Mapped[str] = mapped_column(String(20), primary_key=True)
    measure: Mapped[str] = mapped_column(String(40), primary_key=True)
    value: Mapped[int] = mapped_column(BigInteger, default=0)


# ---- triggers ------------------------------------------------------------------------------------
def _ancestors(ref: str) -> str:
    """SELECT the unit `ref`.unit_code and its ancestors that have totals (a chain of primary-key
    lookups; no recursive CTE, which SQLite refuses inside a trigger)."""
    parts = []
    for depth in range(MAX_DEPTH):
        joins = "".join(f" JOIN org_unit u{i + 1} ON u{i + 1}.code = u{i}.parent_code" for i in range(depth))
        parts.append(f"SELECT u{depth}.code AS scope FROM org_unit u0{joins} WHERE u0.code = {ref}.unit_code "
                     f"AND u{depth}.level IN ({_LEVELS_SQL})")
    return " UNION ALL ".join(parts)


def _starts(ref: str) -> str:
    m, y = f"date({ref}.day, 'start of month')", f"date({ref}.day, 'start of year')"
    return f"SELECT 'd' AS bucket, {ref}.day AS ps UNION ALL SELECT 'm', {m} UNION ALL SELECT 'y', {y}"


def _add(ref: str, delta: str) -> str:
    """Add `delta` to every (ancestor, bucket, category and "*") row of the rollup row `ref` (an
    upsert; the WHERE lets SQLite parse ON CONFLICT after a SELECT)."""
    return ("INSERT INTO indicator_total (scope, bucket, period_start, category, level, measure, value) "
            f"SELECT a.scope, b.bucket, b.ps, c.cat, {ref}.level, {ref}.measure, {delta} "
            f"FROM ({_ancestors(ref)}) a CROSS JOIN ({_starts(ref)}) b "
            f"CROSS JOIN (SELECT {ref}.category AS cat UNION ALL SELECT '{ALL}') c WHERE true "
            "ON CONFLICT (scope, bucket, period_start, category, level, measure) "
            "DO UPDATE SET value = indicator_total.value + excluded.value")


_SAME_KEY = ("OLD.unit_code = NEW.unit_code AND OLD.day = NEW.day AND OLD.category = NEW.category "
             "AND OLD.level = NEW.level AND OLD.measure = NEW.measure")


def _rules() -> list[tuple[str, str, str | None, list[str]]]:
    """SQLite's row triggers: (name, event, WHEN condition or None, statements)."""
    return [
        ("ins", "INSERT", None, [_add("NEW", "NEW.value")]),
        ("del", "DELETE", None, [_add("OLD", "-OLD.value")]),
        ("upd", "UPDATE", _SAME_KEY, [_add("NEW", "NEW.value - OLD.value")]),
        ("rekey", "UPDATE", f"NOT ({_SAME_KEY})", [_add("OLD", "-OLD.value"), _add("NEW", "NEW.value")]),
    ]


def _pg_fanout(rows: str) -> str:
    """PostgreSQL, once per statement: the statement's rows (`rows`, from its transition tables)
    summed per (ancestor with totals, bucket, category and "*", key) in one upsert, in key order,
    so that concurrent steps lock the shared rows (the city's, the county's) in the same order and
    cannot deadlock on them."""
    return (f"WITH RECURSIVE r AS ({rows}), "
            "anc(unit, scope, lvl, parent, depth) AS ("
            "SELECT u.code, u.code, u.level, u.parent_code, 1 FROM org_unit u "
            "WHERE u.code IN (SELECT unit_code FROM r) "
            "UNION ALL SELECT a.unit, p.code, p.level, p.parent_code, a.depth + 1 FROM anc a "
            f"JOIN org_unit p ON p.code = a.parent WHERE a.depth < {MAX_DEPTH}) "
            "INSERT INTO indicator_total (scope, bucket, period_start, category, level, measure, value) "
            "SELECT a.scope, b.bucket, b.ps, c.cat, r.level, r.measure, sum(r.v) "
            f"FROM r JOIN anc a ON a.unit = r.unit_code AND a.lvl IN ({_LEVELS_SQL}) "
            "CROSS JOIN LATERAL (VALUES ('d', r.day), "
            "('m', date_trunc('month', r.day)::date), ('y', date_trunc('year', r.day)::date)) b(bucket, ps) "
            f"CROSS JOIN LATERAL (VALUES (r.category), ('{ALL}')) c(cat) "
            "GROUP BY 1, 2, 3, 4, 5, 6 HAVING sum(r.v) <> 0 ORDER BY 1, 2, 3, 4, 5, 6 "
            "ON CONFLICT (scope, bucket, period_start, category, level, measure) "
            "DO UPDATE SET value = indicator_total.value + excluded.value")


_COLS = "unit_code, day, category, level, measure"
_PG_RULES = [  # (name, event, transition tables, rows)
    ("ins", "INSERT", "NEW TABLE AS new_rows", f"SELECT {_COLS}, value AS v FROM new_rows"),
    ("del", "DELETE", "OLD TABLE AS old_rows", f"SELECT {_COLS}, -value AS v FROM old_rows"),
    ("upd", "UPDATE", "OLD TABLE AS old_rows NEW TABLE AS new_rows",
     f"SELECT {_COLS}, value AS v FROM new_rows UNION ALL SELECT {_COLS}, -value FROM old_rows"),
]


def trigger_ddl(dialect: str) -> list[str]:
    """The statements that create the triggers on this database: row triggers on SQLite (one
    writer at a time), statement triggers with transition tables on PostgreSQL."""
    out = []
    if dialect != "sqlite":
        for short, ev, tables, rows in _PG_RULES:
            name = f"trg_indicator_total_{short}"
            out.append(f"CREATE OR REPLACE FUNCTION {name}() RETURNS trigger LANGUAGE plpgsql AS $$\n"
                       f"BEGIN\n  {_pg_fanout(rows)};\n  RETURN NULL;\nEND $$")
            out.append(f"CREATE TRIGGER {name} AFTER {ev} ON indicator_rollup REFERENCING {tables} "
                       f"FOR EACH STATEMENT EXECUTE FUNCTION {name}()")
        return out
    for short, ev, when, stmts in _rules():
        name = f"trg_indicator_total_{short}"
        body = "".join(f"  {x};\n" for x in stmts)
        cond = f" WHEN {when}" if when else ""
        out.append(f"CREATE TRIGGER IF NOT EXISTS {name} AFTER {ev} ON indicator_rollup FOR EACH ROW{cond}\n"
                   f"BEGIN\n{body}END")
    return out


def drop_ddl(dialect: str) -> list[str]:
    if dialect == "sqlite":
        return [f"DROP TRIGGER IF EXISTS trg_indicator_total_{short}" for short, *_ in _rules()]
    return [x for short, *_ in _PG_RULES for x in (f"DROP TRIGGER IF EXISTS trg_indicator_total_{short} ON indicator_rollup",
                                                   f"DROP FUNCTION IF EXISTS trg_indicator_total_{short}()")]


@event.listens_for(Base.metadata, "after_create")
def _install(target, connection, tables=(), **kw) -> None:
    """After `create_all` has made every table (the triggers name indicator_rollup and org_unit)."""
    if any(t.name == IndicatorTotal.__tablename__ for t in tables):
        for stmt in trigger_ddl(connection.dialect.name):
            connection.exec_driver_sql(stmt)


# ---- periods -------------------------------------------------------------------------------------
def _month_start(d: date) -> date:
    return d.replace(day=1)


def _next_month(d: date) -> date:
    return date(d.year + d.month // 12, d.month % 12 + 1, 1)


def tiles(start: date, end: date) -> list[tuple[str, date, date]]:
    """The fewest (bucket, first start, last start) ranges whose buckets exactly cover
    [start, end]: loose days at both ends, whole months, whole years in the middle."""
    out: list[tuple[str, date, date]] = []
    if end < start:
        return out
    m_lo = start if start.day == 1 else _next_month(start)  # first whole month
    m_hi = _month_start(end + timedelta(days=1))  # the month after the last whole one
    if m_lo >= m_hi:  # no whole month inside: days only
        return [("d", start, end)]
    if start < m_lo:
        out.append(("d", start, m_lo - timedelta(days=1)))
    y_lo = m_lo if m_lo.month == 1 else date(m_lo.year + 1, 1, 1)  # first whole year
    y_hi = date(m_hi.year, 1, 1)  # the year after the last whole one
    if y_lo < y_hi:
        if m_lo < y_lo:
            out.append(("m", m_lo, _prev_month(y_lo)))
        out.append(("y", y_lo, date(y_hi.year - 1, 1, 1)))
        if y_hi < m_hi:
            out.append(("m", y_hi, _prev_month(m_hi)))
    else:
        out.append(("m", m_lo, _prev_month(m_hi)))
    if m_hi <= end:
        out.append(("d", m_hi, end))
    return out


def _prev_month(d: date) -> date:
    return _month_start(d - timedelta(days=1))


EPOCH = date(2000, 1, 1)  # "since the beginning" for stocks: before any case Gridflow holds


Part = tuple[list[str], date, date, tuple[str, str], "list[str] | None"]  # scopes, start, end, by, measures


def sums(s: Session, scopes: list[str], start: date, end: date, by: tuple[str, str] = ("measure", "level"),
         measures: list[str] | None = None) -> dict[tuple, int]:
    """(scope, *by) -> sum of indicator_total over [start, end] for each scope."""
    return sums_many(s, [(scopes, start, end, by, measures)])[0]


def _subtrees(s: Session, scopes: set[str]) -> dict[str, list[str]]:
    """unit code -> the scopes among `scopes` it lies under (itself included), walking
    `parent_code` down at most MAX_DEPTH levels (a village: itself and its grids)."""
    from grid.org.models import OrgUnit

    under: dict[str, list[str]] = defaultdict(list)
    frontier = {sc: sc for sc in scopes}
    for sc in scopes:
        under[sc].append(sc)
    for _ in range(MAX_DEPTH - 1):
        if not frontier:
            break
        rows = s.execute(select(OrgUnit.code, OrgUnit.parent_code).where(OrgUnit.parent_code.in_(sorted(frontier)))).all()
        nxt: dict[str, str] = {}
        for code, parent in rows:
            for sc in under[parent] if parent in under else ():
                under[code].append(sc)
            nxt[code] = parent
        frontier = nxt
    return dict(under)


def _split(s: Session, scopes: set[str]) -> tuple[set[str], dict[str, list[str]]]:
    """The scopes that have totals, and for the others `_subtrees` (unit -> scopes it is under)."""
    from grid.org.models import OrgUnit

    big = set(s.scalars(select(OrgUnit.code).where(OrgUnit.code.in_(sorted(scopes)),
                                                  OrgUnit.level.in_(TOTAL_LEVELS)))) if scopes else set()
    return big, _subtrees(s, scopes - big)


def sums_many(s: Session, parts: list[Part]) -> list[dict[tuple, int]]:
    """`sums` for several (scopes, start, end, by, measures) at once, in one statement: a UNION ALL
    of one grouped SELECT per part and tile, each an index range on a primary key. Scopes with
    totals read indicator_total (the "*" rows unless `by` names the category); the others sum
    their units' rows of indicator_rollup over the period."""
    from grid.cases.models import IndicatorRollup

    t, r = IndicatorTotal, IndicatorRollup
    big, under = _split(s, {sc for p in parts for sc in p[0]})
    selects = []
    for i, (scopes, start, end, by, measures) in enumerate(parts):
        tops = sorted(sc for sc in scopes if sc in big)
        units = sorted({u for u, scs in under.items() if any(sc in scopes for sc in scs)})
        cols = [literal(i).label("part"), literal(1).label("total")]
        for bucket, lo, hi in tiles(start, end) if tops else ():
            q = (select(*cols, t.scope.label("scope"), getattr(t, by[0]).label("k1"), getattr(t, by[1]).label("k2"),
                        func.sum(t.value).label("v"))
                 .where(t.scope.in_(tops) if len(tops) > 1 else t.scope == tops[0],
                        t.bucket == bucket, t.period_start >= lo, t.period_start <= hi,
                        t.category != ALL if "category" in by else t.category == ALL)
                 .group_by(t.scope, getattr(t, by[0]), getattr(t, by[1])))
            if measures is not None:
                q = q.where(t.measure.in_(sorted(measures)))
            selects.append(q)
        if units and end >= start:
            cols = [literal(i).label("part"), literal(0).label("total")]
            q = (select(*cols, r.unit_code.label("scope"), getattr(r, by[0]).label("k1"), getattr(r, by[1]).label("k2"),
                        func.sum(r.value).label("v"))
                 .where(r.unit_code.in_(units), r.day >= start, r.day <= end)
                 .group_by(r.unit_code, getattr(r, by[0]), getattr(r, by[1])))
            if measures is not None:
                q = q.where(r.measure.in_(sorted(measures)))
            selects.append(q)
    out: list[dict[tuple, int]] = [defaultdict(int) for _ in parts]
    if selects:
        stmt = union_all(*selects) if len(selects) > 1 else selects[0]
        for part, total, code, k1, k2, v in s.execute(stmt):
            if not v:
                continue
            if total:
                out[part][(code, k1, k2)] += int(v)
            else:
                for sc in under.get(code, ()):
                    if sc in parts[part][0]:
                        out[part][(sc, k1, k2)] += int(v)
    return [dict(d) for d in out]


def monthly_sums(s: Session, scopes: list[str], first: date, last: date,
                 measures: list[str] | None = None) -> dict[tuple[str, date, str, str], int]:
    """(scope, month start, measure, level) -> sum over each calendar month from `first` to `last`
    (month starts), summed over categories: one SELECT of the month buckets for scopes with
    totals, one of their units' rollup days (grouped into months here) for the others."""
    from grid.cases.models import IndicatorRollup

    t, r = IndicatorTotal, IndicatorRollup
    big, under = _split(s, set(scopes))
    tops = sorted(big)
    out: dict[tuple[str, date, str, str], int] = defaultdict(int)
    if tops:
        q = (select(t.scope, t.period_start, t.measure, t.level, func.sum(t.value))
             .where(t.scope.in_(tops), t.bucket == "m", t.period_start >= first, t.period_start <= last,
                    t.category == ALL)
             .group_by(t.scope, t.period_start, t.measure, t.level))
        if measures is not None:
            q = q.where(t.measure.in_(sorted(measures)))
        for scope, month, measure, level, v in s.execute(q):
            if v:
                out[(scope, month, measure, level)] += int(v)
    if under:
        q = (select(r.unit_code, r.day, r.measure, r.level, func.sum(r.value))
             .where(r.unit_code.in_(sorted(under)), r.day >= first, r.day < _next_month(last))
             .group_by(r.unit_code, r.day, r.measure, r.level))
        if measures is not None:
            q = q.where(r.measure.in_(sorted(measures)))
        for unit, day, measure, level, v in s.execute(q):
            for scope in under[unit] if v else ():
                out[(scope, day.replace(day=1), measure, level)] += int(v)
    return dict(out)


# ---- recomputing ---------------------------------------------------------------------------------
def compute(s: Session) -> dict[Key, int]:
    """indicator_total recomputed from indicator_rollup (one pass over it, ancestors in memory)."""
    from grid.cases.models import IndicatorRollup
    from grid.org.models import OrgUnit

    units = {code: (parent, level) for code, parent, level in
             s.execute(select(OrgUnit.code, OrgUnit.parent_code, OrgUnit.level))}
    chains: dict[str, list[str]] = {}

    def chain(code: str) -> list[str]:
        if code not in chains:
            out, c, depth = [], code, 0
            while c is not None and c in units and depth < MAX_DEPTH:
                if units[c][1] in TOTAL_LEVELS:
                    out.append(c)
                c, depth = units[c][0], depth + 1
            chains[code] = out
        return chains[code]

    totals: dict[Key, int] = defaultdict(int)
    r = IndicatorRollup
    q = select(r.unit_code, r.day, r.category, r.level, r.measure, r.value).execution_options(yield_per=5000)
    for unit, day, cat, lv, measure, value in s.execute(q):
        if not value:
            continue
        starts = (("d", day), ("m", day.replace(day=1)), ("y", date(day.year, 1, 1)))
        for scope in chain(unit):
            for bucket, ps in starts:
                totals[(scope, bucket, ps, cat, lv, measure)] += value
                totals[(scope, bucket, ps, ALL, lv, measure)] += value
    return {k: v for k, v in totals.items() if v}


def stored(s: Session) -> dict[Key, int]:
    t = IndicatorTotal
    return {(r.scope, r.bucket, r.period_start, r.category, r.level, r.measure): r.value
            for r in s.execute(select(t.scope, t.bucket, t.period_start, t.category, t.level, t.measure, t.value))
            if r.value}


def rebuild(s: Session, check: bool = False) -> list[tuple[Key, int, int]]:
    """Recompute indicator_total from indicator_rollup; return (key, stored, recomputed) where
    they differ and, unless `check`, replace the stored table (rebuild the rollup first:
    grid.cases.rollup.rebuild, whose writes the triggers already carry over)."""
    if s.get_bind().dialect.name == "postgresql":
        s.connection().exec_driver_sql("LOCK TABLE indicator_rollup IN SHARE ROW EXCLUSIVE MODE")
    want, have = compute(s), stored(s)
    diffs = [(k, have.get(k, 0), want.get(k, 0)) for k in sorted(set(have) | set(want))
             if have.get(k, 0) != want.get(k, 0)]
    if diffs and not check:
        s.execute(delete(IndicatorTotal))
        rows = [dict(scope=k[0], bucket=k[1], period_start=k[2], category=k[3], level=k[4], measure=k[5], value=v)
                for k, v in sorted(want.items())]
        for i in range(0, len(rows), 1000):
            s.execute(IndicatorTotal.__table__.insert(), rows[i:i + 1000])
    return diffs



def reinstall(bind) -> None:
    """Replace the triggers with this code's and recompute the table (a migration that changes
    what the totals hold)."""
    for stmt in drop_ddl(bind.dialect.name) + trigger_ddl(bind.dialect.name):
        bind.exec_driver_sql(stmt)
    s = Session(bind=bind)
    rebuild(s)
    s.flush()


def rebuild_all(svc, check: bool = False) -> tuple[list, list]:
    """`gridflow indicators rebuild`: the rollup from the records (grid.cases.rollup.rebuild),
    then the subtree totals from the rollup, in one write transaction. Returns both lists of
    differences (rollup, totals)."""
    from grid.cases import rollup

    with svc.db.write() as s:
        base = rollup.rebuild(s, svc.runtime.calendar, check=check)
        return base, rebuild(s, check=check)
