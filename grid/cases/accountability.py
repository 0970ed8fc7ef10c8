"""The accountability register (问责台账) and the supervision register (督办台账): the step listener.

Why a listener of its own (installed by `install(svc)` after the case listener): the entries are
projections of what the processes did, written in the step's transaction like the case row.

- A dispute-case step that emits `accountability` (handle_level.bpmn's overdue timer) writes an
  `AccountabilityEntry`: the late unit, the people who held the interrupted task at that moment
  (the work items the step closed), the case, the level, its due time and how late, and starts
  the entry's own process, workflows/accountability.bpmn, with `Runtime.start(..., session=s)`:
  the same transaction, so a rolled-back step leaves neither the entry nor its process. If that
  process is not deployed, the entry is kept as `unstarted` (the case's step must not fail for it).
- Steps of the accountability process update the entry (review, 情况说明, outcome). The outcome is
  also a case record (`accountability_decided`) added to the indicator rollup, so 问责数 by outcome
  comes from the rollup and survives `gridflow indicators rebuild --check`.
- A step that emits `supervision_opened` writes a `SupervisionEntry` for its 督办催办 task; the step
  that closes that task marks it urged (completed: the time to response is counted in working
  minutes) or ended (the level finished first).
"""
from __future__ import annotations

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from engine import clock
from engine.calendar import WorkCalendar
from engine.errors import NotFound
from engine.models import WorkItem
from engine.runtime import Step
from grid.cases import rollup
from grid.cases.accountability_models import OUTCOMES, AccountabilityEntry, SupervisionEntry
from grid.cases.models import CaseRecord, DisputeCase, case_by_no
from grid.org import service as org
from grid.org.models import OrgUnit

PROCESS_ID = "accountability"
CASE_PROCESS = "dispute_case"
SUPERVISE_TASK = "supervise"
DECIDED = "accountability_decided"  # the case record (and rollup measure) of an outcome


def _scopes(path: str) -> list[str]:
    parts = [p for p in path.split("/") if p]
    return ["/".join(parts[: i + 1]) + "/" for i in range(len(parts))]


def _holders(s: Session, items: list[WorkItem]) -> list[str]:
    """Who held these tasks: the named person, or everyone holding the role on the unit."""
    out: list[str] = []
    for wi in items:
        ids = [wi.user_id] if wi.user_id else [p.id for p in org.staff_for(s, wi.unit_id, wi.role)] \
            if wi.unit_id and wi.role else []
        out.extend(i for i in ids if i and i not in out)
    return out


def _register(svc, s: Session, c: DisputeCase, step: Step, data: dict, cal: WorkCalendar) -> AccountabilityEntry:
    """Write the entry for a level that just went overdue and start its process."""
    now = clock.now()
    level, unit_code = data.get("level") or c.current_level, data.get("unit") or c.current_unit
    unit = s.get(OrgUnit, unit_code)
    items = list(s.scalars(select(WorkItem).where(WorkItem.task_guid.in_(step.closed),
                                                   WorkItem.task_spec != SUPERVISE_TASK))) if step.closed else []
    held = [wi for wi in items if wi.unit_id == unit_code] or items
    entered = s.scalar(select(CaseRecord.at).where(CaseRecord.case_id == c.id, CaseRecord.kind == "level_entered",
                                                   CaseRecord.unit_code == unit_code)
                       .order_by(CaseRecord.id.desc()).limit(1))
    dues = [wi.due_at for wi in held if wi.due_at]
    due = max(dues) if dues else None
    n = (s.scalar(select(func.count()).select_from(AccountabilityEntry)
                  .where(AccountabilityEntry.case_id == c.id)) or 0) + 1
    reviewer = (unit.parent_code if unit is not None and unit.parent_code else unit_code)
    e = AccountabilityEntry(
        entry_no=f"{c.case_no}-W{n}", case_id=c.id, level=level, unit_code=unit_code,
        unit_path=unit.path if unit is not None else c.unit_path, reviewer_unit=reviewer,
        task_spec=held[0].task_spec if held else None, staff_ids=_holders(s, held), entered_at=entered,
        due_at=due, overdue_at=now, late_minutes=rollup.working_minutes(cal, due, now) if due else 0,
        held_minutes=rollup.working_minutes(cal, entered, now) if entered else 0, state="review",
        explanation_missed=False)
    s.add(e)
    s.flush()
    start = {"entry_no": e.entry_no, "case_no": c.case_no, "category": c.category, "level": level,
             "unit": unit_code, "reviewer_unit": reviewer, "staff_ids": list(e.staff_ids),
             "due_at": due.isoformat() if due else None, "late_minutes": e.late_minutes}
    try:
        started = svc.runtime.start(PROCESS_ID, start, actor=step.actor, business_key=e.entry_no,
                                    scopes=_scopes(e.unit_path), session=s)
    except NotFound:  # not deployed (an older bundle): keep the entry; nothing to run it yet
        e.state = "unstarted"
        return e
    e.instance_id = started.instance_id
    return e


def _decided(s: Session, e: AccountabilityEntry, step: Step, data: dict, cal: WorkCalendar) -> None:
    now = clock.now()
    outcome = data.get("outcome")
    e.outcome = outcome if outcome in OUTCOMES else None
    e.note, e.decided_by, e.decided_at, e.state = data.get("note"), step.actor, now, "closed"
    c = s.get(DisputeCase, e.case_id)
    rec = CaseRecord(case_id=e.case_id, kind=DECIDED, level=e.level, unit_code=e.unit_code, at=now,
                     actor=step.actor or "timer", data={"outcome": e.outcome, "entry_no": e.entry_no})
    s.add(rec)
    st = rollup.CaseState(grid=c.grid_code, category=c.category)
    rollup.add(s, rollup.contributions(st, cal, rec.kind, rec.level, rec.unit_code, rec.at, rec.data))


def _on_entry_step(s: Session, step: Step, cal: WorkCalendar) -> None:
    e = s.scalar(select(AccountabilityEntry).where(AccountabilityEntry.entry_no == step.business_key))
    if e is None:
        return
    now = clock.now()
    for ev in step.emitted:
        kind, d = ev["kind"], ev.get("data") or {}
        if kind == "accountability_reviewed":
            e.review_action, e.review_comment = d.get("action"), d.get("comment")
            e.reviewed_by, e.reviewed_at = step.actor, now
            e.state = "explain" if d.get("action") == "explain" else "decide"
        elif kind == "accountability_explained":
            e.explanation, e.measures = d.get("text"), d.get("measures")
            e.explained_by, e.explained_at, e.state = step.actor, now, "decide"
        elif kind == "accountability_explanation_missed":
            e.explanation_missed, e.state = True, "decide"
        elif kind == "accountability_decided":
            _decided(s, e, step, d, cal)


def _on_case_step(svc, s: Session, step: Step, cal: WorkCalendar) -> None:
    kinds = {ev["kind"] for ev in step.emitted}
    if not step.closed and not kinds & {"accountability", "supervision_opened"}:
        return
    c = case_by_no(s, step.business_key)
    if c is None:
        return
    now = clock.now()
    if step.closed:  # a 督办 task done (urged) or cancelled (the level finished first)
        for sup in s.scalars(select(SupervisionEntry).where(SupervisionEntry.task_guid.in_(step.closed),
                                                            SupervisionEntry.state == "open")):
            sup.closed_at = now
            if sup.task_guid in step.completed_guids:
                urged = next((ev.get("data") or {} for ev in step.emitted if ev["kind"] == "urged"), {})
                sup.state, sup.responded_by, sup.responded_at = "urged", step.actor, now
                sup.comment = urged.get("comment")
                sup.response_minutes = rollup.working_minutes(cal, sup.opened_at, now)
            else:
                sup.state = "ended"
    for ev in step.emitted:
        d = ev.get("data") or {}
        if ev["kind"] == "accountability":
            _register(svc, s, c, step, d, cal)
        elif ev["kind"] == "supervision_opened":
            unit_code = d.get("unit") or c.current_unit
            guid = next((w["task_guid"] for w in step.opened if w.get("task_spec") == SUPERVISE_TASK
                         and w.get("unit_id") == unit_code), None)
            unit = s.get(OrgUnit, unit_code)
            due = s.scalar(select(func.min(WorkItem.due_at)).where(
                WorkItem.instance_id == c.instance_id, WorkItem.state == "open",
                WorkItem.task_spec != SUPERVISE_TASK))
            s.add(SupervisionEntry(case_id=c.id, level=d.get("level") or c.current_level, unit_code=unit_code,
                                   unit_path=unit.path if unit is not None else c.unit_path, task_guid=guid,
                                   opened_at=now, due_at=due, state="open" if guid else "ended",
                                   closed_at=None if guid else now))  # no guid: the level ended in this step


def make_listener(svc):
    """The listener bound to `svc` (it starts processes through `svc.runtime`)."""

    def on_step(s: Session, step: Step) -> None:
        if not step.business_key:
            return
        cal = step.calendar or WorkCalendar()
        if step.process_id == CASE_PROCESS:
            _on_case_step(svc, s, step, cal)
        elif step.process_id == PROCESS_ID:
            _on_entry_step(s, step, cal)

    on_step._gridflow_accountability = True  # type: ignore[attr-defined]
    return on_step


def install(svc) -> None:
    """Register the register's listener on a Services object (idempotent), after the case listener."""
    if not any(getattr(fn, "_gridflow_accountability", False) for fn in svc.runtime.listeners):
        svc.runtime.listeners.append(make_listener(svc))
