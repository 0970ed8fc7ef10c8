"""The indicator rollup: what each case record adds to the running totals, the upsert, and the rebuild.

Why one function (`contributions`) for both paths: the step listener feeds it the records a step
just wrote, starting from the case's stored counters; the rebuild replays every record of every
case from zero. If the two disagree, the counters on the case and its records disagree, and
`gridflow indicators rebuild --check` says where.

Attribution (see docs/indicators.md):
- case measures (reported, accepted, closed ...) go to the case's grid, so a unit's subtree holds
  the cases that arose in it (区域评价);
- handling measures (warnings, 督办, 催办, 问责, escalations, verification, handling time) go to
  the unit that handled the level (部门/岗位评价).
"""
from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta

from sqlalchemy import delete, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from engine import clock
from engine.calendar import WorkCalendar
from grid.cases.models import CaseRecord, DisputeCase, IndicatorRollup

Key = tuple[str, date, str, str, str]  # unit_code, day, category, level, measure
Row = tuple[str, date, str, str, str, int]

CLOSED_RESULTS = frozenset({"satisfied", "final_disposition", "settled_on_spot"})  # 办结, not 重复件
LEVEL_ENDS = frozenset({"resolved", "cannot_resolve", "accountability"})
HANDLED_KINDS = frozenset({"warning", "supervision", "urge", "accountability", "escalation", "rework",
                           "accountability_decided"})  # an outcome of the register (grid.cases.accountability)
# Upper bounds (working days) of the handling-time histogram; beyond the last: "over".
BUCKETS = (0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 12, 15, 20, 30, 60, 120, 250)
MINUTES_PER_DAY = 24 * 60


def bucket_measure(minutes: int) -> str:
    """The histogram measure for a handling time: `handled_le_<n>` (≤ n working days) or `handled_over`."""
    for bound in BUCKETS:
        if minutes <= bound * MINUTES_PER_DAY:
            return f"handled_le_{bound}"
    return "handled_over"


def working_minutes(cal: WorkCalendar, start: datetime, end: datetime) -> int:
    """Minutes between two instants that fall on working days (whole Beijing days count, as for
    the `workdays(n)` time limits: Monday 10:00 to Thursday 10:00 is 3 working days)."""
    a, b = clock.local(start), clock.local(end)
    if b <= a:
        return 0
    seconds, d = 0.0, a.date()
    while d <= b.date():
        if cal.is_workday(d):
            lo = max(a, datetime.combine(d, time(), clock.SHANGHAI))
            hi = min(b, datetime.combine(d + timedelta(days=1), time(), clock.SHANGHAI))
            if hi > lo:
                seconds += (hi - lo).total_seconds()
        d += timedelta(days=1)
    return int(seconds // 60)


@dataclass
class CaseState:
    """What the rollup needs to remember about a case between its records."""

    grid: str
    category: str
    accepted: bool = False
    escalations: int = 0
    overdue: int = 0
    reworked: bool = False
    entered_at: datetime | None = None  # the current level's start, while it is being handled
    entered_level: str | None = None
    entered_unit: str | None = None


def day_of(at: datetime) -> date:
    """The Beijing calendar day of an instant: indicators are reported by local day."""
    return clock.local(at).date()


def reported(c: DisputeCase) -> Row:
    return (c.grid_code, day_of(c.reported_at), c.category, "", "reported", 1)


SOURCES = ("grid_worker", "hotline", "window", "open311", "api")


def source_measure(source: str | None) -> str:
    """The per-source report measure (`reported_open311` ...): how many cases came in which way."""
    return f"reported_{source or 'grid_worker'}"


def reported_by_source(c: DisputeCase) -> Row:
    """Added by `service.report` in the report's transaction, beside the listener's `reported`."""
    return (c.grid_code, day_of(c.reported_at), c.category, "", source_measure(c.source), 1)


def contributions(st: CaseState, cal: WorkCalendar, kind: str, level: str | None, unit: str | None,
                  at: datetime, data: dict | None) -> list[Row]:
    """Advance the case's state by one record and return what it adds to the rollup."""
    data = data or {}
    day, cat, lv = day_of(at), st.category, level or ""
    rows: list[Row] = []

    def region(measure: str, value: int = 1) -> None:
        rows.append((st.grid, day, cat, lv, measure, value))

    def handling(measure: str, value: int = 1) -> None:
        rows.append((unit or st.grid, day, cat, lv, measure, value))

    def end_level() -> None:
        if st.entered_at is None:
            return
        minutes = working_minutes(cal, st.entered_at, at)
        where = (st.entered_unit or unit or st.grid, day, cat, st.entered_level or lv)
        rows.extend([(*where, "handled", 1), (*where, "handled_minutes", minutes), (*where, bucket_measure(minutes), 1)])
        st.entered_at = None

    def department_handled() -> None:
        try:
            since = datetime.fromisoformat(str(data.get("assigned_at")))
        except ValueError:
            return
        minutes = working_minutes(cal, since, at)
        where = (unit or st.grid, day, cat, lv)
        rows.extend([(*where, "handled", 1), (*where, "handled_minutes", minutes), (*where, bucket_measure(minutes), 1)])

    if kind == "level_entered":
        st.entered_at, st.entered_level, st.entered_unit = at, level, unit
    elif kind == "dispatched" and not st.accepted:
        st.accepted = True
        region("accepted")
    if kind in HANDLED_KINDS:
        handling(kind)
    if kind == "escalation":
        st.escalations += 1
    elif kind == "accountability":
        st.overdue += 1
    elif kind == "rework":
        st.reworked = True
    elif kind == "accountability_decided" and data.get("outcome"):
        handling(f"accountability_{data['outcome']}")  # 免责 / 通报 / 约谈 / 问责
    elif kind == "repeat":  # an accepted case repeats earlier ones (grid.cases.checks)
        region("repeat")
    elif kind == "verified":
        handling("verified")
        if data.get("satisfied"):
            handling("satisfied")
    if kind == "department_answered" or (kind == "accountability" and data.get("department")):
        department_handled()  # 部门协同: a department's part counts like a level's handling
    if kind in LEVEL_ENDS and not data.get("department"):  # a department's overdue does not end the level
        end_level()
    elif kind == "archived":
        result = data.get("result")
        if result == "duplicate":
            end_level()
            region("duplicate")
        if result == "settled_on_spot":
            st.accepted = True
            region("accepted")
            region("settled_on_spot")
        if result in CLOSED_RESULTS:
            region("closed")
            region("closed_on_time" if st.overdue == 0 else "closed_overdue")
            region("closed_first_level" if st.escalations == 0 else "closed_escalated")
            if st.reworked:
                region("closed_reworked")
        region("ended")
    elif kind == "cancelled":
        region("ended")
    return rows


# ---- incremental path ------------------------------------------------------------------------
def state_for(s: Session, c: DisputeCase, kinds: set[str]) -> CaseState:
    """The case's state before a step that emits `kinds`: counters from the case row; from its
    records, only what those kinds need (whether it was ever dispatched; the level being handled),
    each one small lookup by case id."""
    st = CaseState(grid=c.grid_code, category=c.category, escalations=c.escalations or 0,
                   overdue=c.overdue or 0, reworked=(c.rework_count or 0) > 0)
    if c.id is None:
        return st
    if "dispatched" in kinds:
        st.accepted = s.scalar(select(CaseRecord.id).where(CaseRecord.case_id == c.id, CaseRecord.kind == "dispatched")
                               .limit(1)) is not None
    if kinds & (LEVEL_ENDS | {"archived"}):
        last = s.execute(select(CaseRecord.kind, CaseRecord.at, CaseRecord.level, CaseRecord.unit_code)
                         .where(CaseRecord.case_id == c.id,
                                CaseRecord.kind.in_(("level_entered", *LEVEL_ENDS, "archived")))
                         .order_by(CaseRecord.id.desc()).limit(1)).first()
        if last is not None and last.kind == "level_entered":
            st.entered_at, st.entered_level, st.entered_unit = last.at, last.level, last.unit_code
    return st


def add_outside_step(s: Session, c: DisputeCase, cal: WorkCalendar, rec: CaseRecord) -> None:
    """For a record written outside the step listener (a supervisor's urge with no 督办 task open):
    count it too, or the rollup and a rebuild disagree."""
    st = CaseState(grid=c.grid_code, category=c.category)
    add(s, contributions(st, cal, rec.kind, rec.level, rec.unit_code, rec.at, rec.data))


def add(s: Session, rows: Iterable[Row]) -> None:
    """Add rows to the rollup with one upsert (value = value + excluded.value), in key order so
    that concurrent steps on PostgreSQL lock rows in the same order."""
    totals: dict[Key, int] = defaultdict(int)
    for *key, value in rows:
        totals[tuple(key)] += value  # type: ignore[index]
    if not totals:
        return
    values = [dict(unit_code=k[0], day=k[1], category=k[2], level=k[3], measure=k[4], value=v)
              for k, v in sorted(totals.items())]
    dialect = s.get_bind().dialect.name
    ins = (postgresql if dialect == "postgresql" else sqlite).insert(IndicatorRollup).values(values)
    stmt = ins.on_conflict_do_update(
        index_elements=["unit_code", "day", "category", "level", "measure"],
        set_={"value": IndicatorRollup.value + ins.excluded.value})
    s.execute(stmt)


# ---- rebuild ---------------------------------------------------------------------------------
def compute(s: Session, cal: WorkCalendar) -> dict[Key, int]:
    """The whole rollup recomputed from dispute_case and case_record (a full scan: for rebuilds)."""
    totals: dict[Key, int] = defaultdict(int)
    cases: dict[int, tuple[str, str]] = {}
    for c in s.execute(select(DisputeCase.id, DisputeCase.grid_code, DisputeCase.category,
                              DisputeCase.reported_at, DisputeCase.instance_id, DisputeCase.source)):
        cases[c.id] = (c.grid_code, c.category)
        if c.instance_id is not None:
            day = day_of(c.reported_at)
            totals[(c.grid_code, day, c.category, "", "reported")] += 1
            totals[(c.grid_code, day, c.category, "", source_measure(c.source))] += 1
    current: int | None = None
    st: CaseState | None = None
    q = (select(CaseRecord.case_id, CaseRecord.kind, CaseRecord.level, CaseRecord.unit_code, CaseRecord.at,
                CaseRecord.data).order_by(CaseRecord.case_id, CaseRecord.id).execution_options(yield_per=2000))
    for r in s.execute(q):
        if r.case_id != current:
            current = r.case_id
            grid, cat = cases[r.case_id]
            st = CaseState(grid=grid, category=cat)
        for *key, value in contributions(st, cal, r.kind, r.level, r.unit_code, r.at, r.data):
            totals[tuple(key)] += value  # type: ignore[index]
    return {k: v for k, v in totals.items() if v}


def stored(s: Session) -> dict[Key, int]:
    """The rollup as it stands (zero rows left out)."""
    return {(r.unit_code, r.day, r.category, r.level, r.measure): r.value
            for r in s.execute(select(IndicatorRollup)).scalars() if r.value}


def differences(have: dict[Key, int], want: dict[Key, int]) -> list[tuple[Key, int, int]]:
    """(key, stored value, recomputed value) for every key where they differ."""
    return [(k, have.get(k, 0), want.get(k, 0)) for k in sorted(set(have) | set(want))
            if have.get(k, 0) != want.get(k, 0)]


def rebuild(s: Session, cal: WorkCalendar, check: bool = False) -> list[tuple[Key, int, int]]:
    """Recompute the rollup from the records and return the differences from the stored one; unless
    `check`, replace the stored one. On PostgreSQL the table is locked first, so steps that commit
    meanwhile wait and then add their increments on top of the rebuilt totals."""
    if s.get_bind().dialect.name == "postgresql":
        s.connection().exec_driver_sql("LOCK TABLE indicator_rollup IN SHARE ROW EXCLUSIVE MODE")
    want = compute(s, cal)
    diffs = differences(stored(s), want)
    if diffs and not check:
        s.execute(delete(IndicatorRollup))
        rows = [(*k, v) for k, v in sorted(want.items())]
        for i in range(0, len(rows), 500):
            add(s, rows[i:i + 500])
    return diffs


def rebuild_all(svc, check: bool = False) -> list[tuple[Key, int, int]]:
    """`rebuild` in a write transaction of its own: what `gridflow indicators rebuild` calls."""
    with svc.db.write() as s:
        return rebuild(s, svc.runtime.calendar, check=check)
