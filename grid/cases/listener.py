"""The engine's hooks for dispute cases: who a task goes to (the assignment hook), and the step
listener that keeps the case row, its countable records, the late index, the search document and
the indicator rollup in step with what the process just did, in the step's own transaction.
"""
from __future__ import annotations

from sqlalchemy.orm import Session

from engine import clock
from engine.calendar import WorkCalendar
from engine.deploy import register_validator
from engine.runtime import Assignment, Step, TaskContext, default_assigner
from grid.cases import checks, late_index, rollup, rollups, search
from grid.cases.models import CASE_LEVELS, CaseRecord, case_by_no
from grid.cases.service import PROCESS_ID, REPORT_FORM
from grid.org import service as org


# ---- hooks ----------------------------------------------------------------------------
def assign(ctx: TaskContext) -> Assignment:
    """Evaluate unit/role/user from the task's properties; a named user who no longer holds the
    role on the unit (e.g. the reporter left the grid) falls back to whoever holds it now."""
    a = default_assigner(ctx)
    s: Session | None = ctx.session
    if s is not None and a.user_id and a.role and a.unit_id:
        if not org.holds_role(s, a.user_id, a.unit_id, a.role):
            a.user_id = None
    return a


def on_step(s: Session, step: Step) -> None:
    """Keep the case row and its records in step with what the process just did."""
    if not step.business_key or step.process_id != PROCESS_ID:
        return
    c = case_by_no(s, step.business_key)
    if c is None:
        return
    now = clock.now()
    was = c.status
    actor = step.actor
    cal = step.calendar or WorkCalendar()
    st = rollup.state_for(s, c, {_RECORD_KIND.get(e["kind"], e["kind"]) for e in step.emitted})
    totals: list[rollup.Row] = []
    if any(e.get("kind") == "started" for e in step.events):
        totals.append(rollup.reported(c))

    def record(kind: str, level: str | None, unit: str | None, data: dict) -> None:
        """A case record, and what it adds to the indicator rollup (same transaction)."""
        level, unit = level or c.current_level, unit or c.current_unit
        s.add(CaseRecord(case_id=c.id, kind=kind, level=level, unit_code=unit, at=now,
                         actor=actor if actor else "timer", data=data))
        totals.extend(rollup.contributions(st, cal, kind, level, unit, now, data))

    for ev in step.emitted:
        kind, d = ev["kind"], ev["data"]
        level, unit = d.get("level"), d.get("unit")
        if kind == "level_entered":
            c.current_level, c.current_unit = level, unit
        elif kind == "escalated":
            c.escalations += 1
            c.current_level, c.current_unit = d.get("to_level"), d.get("to_unit")
            level, unit = d.get("from_level"), d.get("from_unit")
        elif kind == "resolved":
            c.resolved_level, c.resolved_unit, c.resolved_at = level, unit, now
        elif kind == "warning":
            c.warnings += 1
        elif kind == "accountability":
            c.overdue += 1
        elif kind == "rework":
            c.rework_count = int(d.get("count") or c.rework_count + 1)
        elif kind == "final_disposition":
            c.disposition = d.get("disposition")
        elif kind == "archived":
            c.status, c.result, c.archived_at = "archived", d.get("result"), now
            c.duplicate_of = d.get("duplicate_of") or c.duplicate_of
            c.disposition = d.get("disposition") or c.disposition
            checks.link_duplicate(s, c, actor, now)  # both case pages list the link
        # accepted (受理) now: first dispatch, or settled on the spot; a repeat dispute is counted then
        accepting = (kind == "dispatched" and not st.accepted) or (
            kind == "archived" and d.get("result") == "settled_on_spot")
        record(_RECORD_KIND.get(kind, kind), level, unit, d)
        if accepting and (repeat := checks.repeat_data(s, c)) is not None:
            record("repeat", level, unit, repeat)
    if step.status == "failed":
        c.status = "failed"
    elif step.status == "cancelled":
        if c.status in ("open", "failed"):
            record("cancelled", None, None, {})  # counted: the case left the 在办 stock
        c.status = "cancelled"
    elif step.status == "running" and c.status == "failed":
        c.status = "open"
    elif step.status == "completed" and c.status == "open":
        record("archived", None, None, {"result": None})  # ended without saying how
        c.status, c.archived_at = "archived", now
    c.updated_at = now
    rollup.add(s, totals)  # and, by its triggers, the subtree totals (rollups.IndicatorTotal)
    late_index.sync(s, c, step.instance_id or c.instance_id)  # the late list's index, same transaction
    if c.status == "archived" and was != "archived":
        search.index_case(s, c)  # searchable from the moment it is archived


_TOTALS = rollups.IndicatorTotal  # mapped (and so created, truncated, compared) wherever the listener runs

_RECORD_KIND = {"supervision_opened": "supervision", "urged": "urge", "escalated": "escalation"}


def dmn_coverage(bundle, parsed) -> list:
    """Every level x category must be covered by the time-limit DMN (if the bundle has it)."""
    import json

    from engine import dmncheck
    from engine.errors import Problem

    problems = []
    report = parsed.forms.get(REPORT_FORM)
    if report is None:
        for name, content in bundle.forms.items():
            if name == REPORT_FORM:
                report = json.loads(content)
    categories = list(((report or {}).get("properties", {}).get("category") or {}).get("enum") or [])
    for name, content in bundle.dmn.items():
        for missing, where in dmncheck.gaps(content, "time_limits", {"level": list(CASE_LEVELS), "category": categories}):
            problems.append(Problem(name, f"time limits do not cover {missing}", where, "time_limits"))
    return problems


_installed_validator = False


def install(svc) -> None:
    """Register the domain's hooks on a Services object."""
    global _installed_validator
    svc.runtime.assigner = assign
    if on_step not in svc.runtime.listeners:
        svc.runtime.listeners.append(on_step)
    if not _installed_validator:
        register_validator(dmn_coverage)
        _installed_validator = True
