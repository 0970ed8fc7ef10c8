"""What-if replay: past cases' timing against a candidate version's time limits, before it is activated.

Each stay of a case at a level (from its `level_entered` record to the record that ended the level:
resolved, cannot_resolve, overdue (accountability), escalation, archive, cancel; or still open "now")
is measured again. The candidate version's `time_limits` decision gives (warn_days, overdue_days) for
the stay's (level, category); `warn_at`/`due_at` are that many working days after entry, on the work
calendar, exactly as handle_level's `set_deadlines` computes them with `workdays(n)`. A timer fires once
its time has passed, so a stay is *warned* when it lasted past warn_at, *overdue* past due_at, and
*escalated* when overdue below the top level (at the top an overdue case goes to final disposition).

The same measure is applied to the active version, so the two columns differ only by the limits:
the replay keeps the observed timing and does not guess how people would have acted under other limits.
"""
from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from datetime import date, datetime
from types import SimpleNamespace

from sqlalchemy import select

from engine import clock
from engine.calendar import WorkCalendar
from engine.errors import EngineError
from engine.models import ProcessDefinition, ProcessVersion

from .models import CASE_LEVELS, CaseRecord, DisputeCase

DECISION = "time_limits"
END_KINDS = frozenset({"resolved", "cannot_resolve", "accountability", "escalation", "archived", "cancelled",
                       "level_entered", "final_disposition", "returned", "held"})


@dataclass
class Tally:
    """Counts for one unit under one set of limits."""

    stays: int = 0
    warned: int = 0
    overdue: int = 0
    escalated: int = 0

    def add(self, warned: bool, overdue: bool, escalated: bool) -> None:
        self.stays += 1
        self.warned += warned
        self.overdue += overdue
        self.escalated += escalated


@dataclass
class Stay:
    case_no: str
    level: str
    unit: str
    category: str
    entered: datetime
    ended: datetime | None  # None: still at this level


@dataclass
class ReplayReport:
    process_id: str
    current: int | None  # the active version's number (None: no active version)
    candidate: int
    since: date
    cases: int = 0
    stays: list[Stay] = field(default_factory=list)
    by_unit: dict[str, dict[str, Tally]] = field(default_factory=dict)  # unit -> {"current"/"candidate": Tally}
    missing: list[tuple[str, str]] = field(default_factory=list)  # (level, category) the candidate does not cover

    def totals(self, which: str) -> Tally:
        t = Tally()
        for per in self.by_unit.values():
            x = per[which]
            t.stays, t.warned, t.overdue, t.escalated = (t.stays + x.stays, t.warned + x.warned,
                                                         t.overdue + x.overdue, t.escalated + x.escalated)
        return t


class _Engine:
    """The little of a SpiffWorkflow script engine a decision table needs, evaluating in the sandbox."""

    def evaluate(self, task, expression, external_context=None):
        from engine import sandbox

        return sandbox.evaluate(expression, {**task.data, **(external_context or {})})

    def validate(self, expression):
        compile(expression, "<dmn>", "eval")  # a SyntaxError tells the DMN engine to try `v <expr>`


def _decision(runtime, s, version_id: int):
    """The BusinessRuleTask spec's DMN engine for the `time_limits` decision of a stored version."""
    spec, subs, _forms, _pid = runtime.specs(s, version_id)
    for pspec in [spec, *subs.values()]:
        for ts in pspec.task_specs.values():
            engine = getattr(ts, "dmnEngine", None)
            table = getattr(engine, "decision_table", None)
            outputs = {o.name for o in getattr(table, "outputs", [])}
            if engine is not None and {"warn_days", "overdue_days"} <= outputs:
                return engine
    raise EngineError(f"version id {version_id} has no {DECISION} decision (warn_days, overdue_days)")


def limits_of(runtime, s, version_id: int, pairs: set[tuple[str, str]]) -> dict[tuple[str, str], tuple[int, int]]:
    """(warn_days, overdue_days) per (level, category) from a version's time-limit decision."""
    engine = _decision(runtime, s, version_id)
    out = {}
    for level, category in pairs:
        task = SimpleNamespace(data={"level": level, "category": category},
                               workflow=SimpleNamespace(script_engine=_Engine()))
        res = engine.result(task)
        if "warn_days" in res and "overdue_days" in res:
            out[(level, category)] = (int(res["warn_days"]), int(res["overdue_days"]))
    return out


def stays_since(s, since: date) -> tuple[int, list[Stay]]:
    """(number of cases, their level stays) for dispute cases reported on or after `since` (Beijing)."""
    start = datetime.combine(since, datetime.min.time(), clock.SHANGHAI).astimezone(clock.UTC)
    cases = {c.id: c for c in s.scalars(select(DisputeCase).where(DisputeCase.reported_at >= start))}
    stays: list[Stay] = []
    current: dict[int, Stay] = {}
    if cases:
        rows = s.scalars(select(CaseRecord).where(CaseRecord.case_id.in_(list(cases)))
                         .order_by(CaseRecord.case_id, CaseRecord.at, CaseRecord.id))
        for r in rows:
            open_stay = current.get(r.case_id)
            if open_stay is not None and r.kind in END_KINDS:
                open_stay.ended = r.at
                del current[r.case_id]
            if r.kind == "level_entered" and r.level and r.unit_code:
                c = cases[r.case_id]
                stay = Stay(c.case_no, r.level, r.unit_code, c.category, r.at, None)
                stays.append(stay)
                current[r.case_id] = stay
    return len(cases), stays


def judge(stay: Stay, limits: tuple[int, int], cal: WorkCalendar, now: datetime) -> tuple[bool, bool, bool]:
    """(warned, overdue, escalated) of one stay under (warn_days, overdue_days)."""
    warn_days, overdue_days = limits
    end = stay.ended or now
    warn_at = cal.add_workdays(stay.entered, warn_days)
    due_at = cal.add_workdays(stay.entered, overdue_days)
    warned, overdue = end > warn_at, end > due_at
    return warned, overdue, overdue and stay.level != CASE_LEVELS[-1]


def replay(svc, process_id: str, to: int, since: date, calendar: WorkCalendar | None = None,
           now: datetime | None = None) -> ReplayReport:
    """The replay report of version `to` of `process_id` against the active version, over cases since `since`."""
    cal = calendar or svc.runtime.calendar
    now = now or clock.now()
    with svc.db.read() as s:
        versions = {v.number: v for v in s.scalars(select(ProcessVersion).where(ProcessVersion.process_id == process_id))}
        if to not in versions:
            raise EngineError(f"{process_id} has no version {to}")
        active_id = s.scalar(select(ProcessDefinition.active_version_id)
                             .where(ProcessDefinition.process_id == process_id))
        active = next((v for v in versions.values() if v.id == active_id), None)
        n_cases, stays = stays_since(s, since)
        pairs = {(st.level, st.category) for st in stays}
        cand = limits_of(svc.runtime, s, versions[to].id, pairs)
        cur = limits_of(svc.runtime, s, active.id, pairs) if active is not None else {}
    report = ReplayReport(process_id, active.number if active is not None else None, to, since, n_cases, stays)
    report.missing = sorted(pairs - set(cand))
    for st in stays:
        per = report.by_unit.setdefault(st.unit, {"current": Tally(), "candidate": Tally()})
        for which, table in (("current", cur), ("candidate", cand)):
            if (st.level, st.category) in table:
                per[which].add(*judge(st, table[(st.level, st.category)], cal, now))
    return report


def report_lines(r: ReplayReport, unit_names: dict[str, str] | None = None) -> list[str]:
    """The report for an administrator: per unit, current → candidate for warned, overdue, escalated."""
    names = unit_names or {}
    cur = f"v{r.current}" if r.current is not None else "(no active version)"
    out = [f"replay {r.process_id}: {r.cases} case(s) reported since {r.since:%Y-%m-%d}, {len(r.stays)} level stay(s); "
           f"time limits {cur} → v{r.candidate}"]
    out.append(f"  {'unit':<30} {'stays':>5}  {'warned':>9}  {'overdue':>9}  {'escalated':>9}")

    def row(label: str, a: Tally, b: Tally) -> str:
        return (f"  {label:<30} {b.stays:>5}  {a.warned:>4} → {b.warned:<2}  {a.overdue:>4} → {b.overdue:<2}  "
                f"{a.escalated:>4} → {b.escalated:<2}")

    for unit in sorted(r.by_unit):
        label = f"{unit} {names.get(unit, '')}".strip()
        out.append(row(label, r.by_unit[unit]["current"], r.by_unit[unit]["candidate"]))
    out.append(row("total", r.totals("current"), r.totals("candidate")))
    for level, category in r.missing:
        out.append(f"  warning: v{r.candidate} has no time limit for {level} × {category}; those stays are not counted")
    return out


def totals_by_unit(r: ReplayReport) -> dict[str, dict[str, dict[str, int]]]:
    """The per-unit numbers as plain dicts (for tests and JSON)."""
    out: dict[str, dict[str, dict[str, int]]] = defaultdict(dict)
    for unit, per in r.by_unit.items():
        for which, t in per.items():
            out[unit][which] = {"stays": t.stays, "warned": t.warned, "overdue": t.overdue, "escalated": t.escalated}
    return dict(out)
