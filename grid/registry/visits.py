"""Special-population flags and their visit schedules.

`flag()` starts a `special_visit` process instance (workflows/special_visit.bpmn) in the same
transaction. The listener `make_listener` keeps the flag row in step with what the process emits
(`visit_scheduled`, `visited`, `visit_overdue`, `risk_changed`, `schedule_ended`, ...).
Unflagging, a change of risk level and a move to another grid are messages to that instance
(`unflagged`, `risk_changed`, `resident_moved`). A visit whose form asks to open a dispute case
reports it through `grid.cases.service.report` once the visit's transaction has committed (the
one thing the registry takes from `grid.cases`).
"""
from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import event, func, select, update
from sqlalchemy.orm import Session

from engine import clock, sandbox
from engine.errors import Conflict, EngineError, InvalidData, NotFound
from engine.models import Instance
from engine.runtime import Step
from grid.org.models import OrgUnit
from grid.registry import rules
from grid.registry.models import (
    CATEGORIES,
    RISK_LEVELS,
    Building,
    Household,
    Resident,
    ResidentEvent,
    SpecialFlag,
)

log = logging.getLogger("gridflow.registry")

PROCESS_ID = "special_visit"
VISIT_FORM = "visit.json"
BUSINESS_KEY = "flag:{}"
ROUNDS_PER_INSTANCE = 6
"""Visits per process instance: then the instance ends and a fresh one carries the schedule on
(a looping instance keeps every finished round in its state, ~10 KB each)."""


# ---- sandbox helper for the visit process -------------------------------------------------------
def days_after(start: str | None, n: float) -> str:
    """ISO time `n` calendar days after `start` (an ISO time; None = now), in Beijing time."""
    base = clock.now() if not start else datetime.fromisoformat(str(start))
    if base.tzinfo is None:
        base = base.replace(tzinfo=clock.SHANGHAI)
    return (base + timedelta(days=float(n))).astimezone(clock.SHANGHAI).isoformat()


sandbox.register_helper("days_after", days_after)


# ---- special populations and visits -------------------------------------------------------------
def _scopes(path: str) -> list[str]:
    parts = [p for p in path.split("/") if p]
    return ["/".join(parts[: i + 1]) + "/" for i in range(len(parts))]


def flag(svc, staff_id: str | None, resident_id: int, category: str, risk_level: str,
         note: str | None = None) -> int:
    """Flag a living resident as a special population / service group and start the visit schedule."""
    if category not in CATEGORIES:
        raise InvalidData("unknown category", [{"path": "category", "message": "one of " + ", ".join(CATEGORIES),
                                                "validator": "registry"}])
    if risk_level not in RISK_LEVELS:
        raise InvalidData("unknown risk level", [{"path": "risk_level", "message": "one of "
                                                  + ", ".join(RISK_LEVELS), "validator": "registry"}])
    with svc.db.write() as s:
        r = rules.get_resident(s, staff_id, resident_id, edit=True, lock=True)
        if r.status != "living":
            raise Conflict("only living residents can be flagged")
        if s.scalar(select(SpecialFlag.id).where(SpecialFlag.resident_id == r.id, SpecialFlag.category == category,
                                                 SpecialFlag.active.is_(True))) is not None:
            raise Conflict("this resident already has an active flag of this category")
        grid = rules.get_grid(s, r.grid_code)
        now = clock.now()
        f = SpecialFlag(resident_id=r.id, grid_code=r.grid_code, category=category, risk_level=risk_level,
                        active=True, note=note, flagged_at=now, flagged_by=staff_id, visits=0, overdue_count=0)
        s.add(f)
        s.flush()
        data = {"flag_id": f.id, "resident_id": r.id, "resident_name": r.name, "category": category,
                "risk_level": risk_level, "grid_unit": r.grid_code, "village_unit": grid.parent_code,
                "visit_no": 0, "last_visit_at": None}
        f.instance_id = _start_schedule(svc, s, f, data, staff_id, grid.path)
        rules.record_event(s, r, "flag", staff_id,
                           after={"flag_id": f.id, "category": category, "risk_level": risk_level}, note=note)
        return f.id


def _start_schedule(svc, s: Session, f: SpecialFlag, data: dict, actor: str | None, path: str) -> int:
    data = {**data, "rounds": 0, "max_rounds": ROUNDS_PER_INSTANCE}
    try:
        step = svc.runtime.start(PROCESS_ID, data, actor=actor, business_key=BUSINESS_KEY.format(f.id),
                                 scopes=_scopes(path), session=s)
    except NotFound as e:
        raise Conflict(f"the visit process {PROCESS_ID} is not deployed: {e}") from e
    return step.instance_id


def _flag(s: Session, staff_id: str | None, flag_id: int, edit: bool = True) -> SpecialFlag:
    f = s.get(SpecialFlag, flag_id)
    if f is None:
        raise NotFound("no such flag")
    (rules.check_edit if edit else rules.check_see)(s, staff_id, f.grid_code, "flag")
    return f


def _running(s: Session, instance_id: int | None) -> bool:
    return instance_id is not None and s.scalar(select(Instance.status).where(Instance.id == instance_id)) == "running"


def unflag(svc, staff_id: str | None, flag_id: int, reason: str) -> None:
    """End a flag and its visit schedule (the process records why and who)."""
    reason = (reason or "").strip()
    if not reason:
        raise InvalidData("a reason is required", [{"path": "reason", "message": "required", "validator": "registry"}])
    with svc.db.read() as s:
        f = _flag(s, staff_id, flag_id)
        if not f.active:
            raise Conflict("this flag has already ended")
        running = _running(s, f.instance_id)
        iid = f.instance_id
    if running:
        svc.runtime.send_message(iid, "unflagged", {"reason": reason[:200]}, actor=staff_id)
        return
    _end_flag_directly(svc, flag_id, staff_id, reason)


def _end_flag_directly(svc, flag_id: int, staff_id: str | None, reason: str) -> None:
    """End a flag whose process is not running (failed, or never started)."""
    with svc.db.write() as s:
        f = s.get(SpecialFlag, flag_id)
        if f is None or not f.active:
            return
        _close_flag(s, f, staff_id, reason)
        iid = f.instance_id
        failed = iid is not None and s.scalar(select(Instance.status).where(Instance.id == iid)) == "failed"
    if failed:
        try:
            svc.runtime.cancel(iid, actor=staff_id, reason=f"flag ended: {reason}")
        except EngineError as e:
            log.warning("could not cancel visit instance %s: %s", iid, e)


def _close_flag(s: Session, f: SpecialFlag, actor: str | None, reason: str) -> None:
    f.active, f.ended_at, f.ended_by, f.end_reason = False, clock.now(), actor, (reason or "")[:200]
    r = s.get(Resident, f.resident_id)
    rules.record_event(s, r, "unflag", actor, before={"flag_id": f.id, "category": f.category, "active": True},
                       after={"active": False, "reason": f.end_reason})


def change_risk(svc, staff_id: str | None, flag_id: int, risk_level: str) -> None:
    """Change a flag's risk level; the schedule is recomputed from the last visit."""
    if risk_level not in RISK_LEVELS:
        raise InvalidData("unknown risk level", [{"path": "risk_level", "message": "one of "
                                                  + ", ".join(RISK_LEVELS), "validator": "registry"}])
    with svc.db.read() as s:
        f = _flag(s, staff_id, flag_id)
        if not f.active:
            raise Conflict("this flag has ended")
        if f.risk_level == risk_level:
            return
        if not _running(s, f.instance_id):
            raise Conflict("the visit schedule of this flag is not running; ask an administrator")
        iid = f.instance_id
    svc.runtime.send_message(iid, "risk_changed", {"risk_level": risk_level}, actor=staff_id)


def end_flags(svc, resident_ids: list[int], actor: str | None, reason: str, session: Session | None = None) -> None:
    """End every active flag of these residents (after a death or a move out). Given the session of
    the resident change, the schedules end in the same transaction; a schedule that cannot be told
    is logged and the resident change stands (each flag in its own savepoint)."""
    if session is None:
        with svc.db.write() as s:
            return end_flags(svc, resident_ids, actor, reason, session=s)
    s = session
    ids = list(s.scalars(select(SpecialFlag.id).where(SpecialFlag.resident_id.in_(resident_ids),
                                                      SpecialFlag.active.is_(True))))
    for fid in ids:
        try:
            with s.begin_nested():
                _end_flag_in(svc, s, actor, fid, reason)
        except EngineError as e:
            log.warning("could not end flag %s: %s", fid, e)


def _end_flag_in(svc, s: Session, actor: str | None, flag_id: int, reason: str) -> None:
    """Like `unflag` but without the permission check (the caller changed the resident already)."""
    f = s.get(SpecialFlag, flag_id)
    if f is None or not f.active:
        return
    status = s.scalar(select(Instance.status).where(Instance.id == f.instance_id)) if f.instance_id else None
    if status == "running":
        svc.runtime.send_message(f.instance_id, "unflagged", {"reason": reason}, actor=actor, session=s)
        return
    _close_flag(s, f, actor, reason)
    if status == "failed":
        try:
            with s.begin_nested():
                svc.runtime.cancel(f.instance_id, actor=actor, reason=f"flag ended: {reason}", session=s)
        except EngineError as e:
            log.warning("could not cancel visit instance %s: %s", f.instance_id, e)


def reassign_visits(svc, resident_ids: list[int], actor: str | None, session: Session | None = None) -> int:
    """Tell the visit schedules of these residents which grid (and village) they belong to now;
    the open visit moves to the new grid's worker. Returns how many schedules were told. Given the
    session of the move, this happens in the same transaction (each schedule in a savepoint)."""
    if session is None:
        with svc.db.write() as s:
            return reassign_visits(svc, resident_ids, actor, session=s)
    s = session
    rows = s.execute(select(SpecialFlag.instance_id, SpecialFlag.grid_code, OrgUnit.parent_code)
                     .join(OrgUnit, OrgUnit.code == SpecialFlag.grid_code)
                     .join(Instance, Instance.id == SpecialFlag.instance_id)
                     .where(SpecialFlag.resident_id.in_(resident_ids), SpecialFlag.active.is_(True),
                            Instance.status == "running")).all()
    n = 0
    for iid, grid, village in rows:
        try:
            with s.begin_nested():
                svc.runtime.send_message(iid, "resident_moved", {"grid_unit": grid, "village_unit": village},
                                         actor=actor, session=s)
            n += 1
        except EngineError as e:
            log.warning("could not move the visits of instance %s to %s: %s", iid, grid, e)
    return n


def move_flags(s: Session, resident_id: int, grid_code: str) -> None:
    """Move the person's active flags to the grid they moved to (the caller tells the schedules,
    `reassign_visits`, once the move is flushed)."""
    s.execute(update(SpecialFlag).where(SpecialFlag.resident_id == resident_id, SpecialFlag.active.is_(True))
              .values(grid_code=grid_code).execution_options(synchronize_session=False))


def flags_ended_by_move(s: Session, resident_id: int) -> list[SpecialFlag]:
    """Flags that the person's last move-out ended (none if a flag of that category is active)."""
    last_out = s.scalar(select(func.max(ResidentEvent.at)).where(ResidentEvent.resident_id == resident_id,
                                                                 ResidentEvent.kind == "move_out"))
    if last_out is None:
        return []
    flags = list(s.scalars(select(SpecialFlag).where(SpecialFlag.resident_id == resident_id,
                                                     SpecialFlag.end_reason == "moved_out",
                                                     SpecialFlag.ended_at >= last_out)))
    active = set(s.scalars(select(SpecialFlag.category).where(SpecialFlag.resident_id == resident_id,
                                                              SpecialFlag.active.is_(True))))
    return [f for f in flags if f.category not in active]


# ---- the listener -------------------------------------------------------------------------------
def _parse_time(v: Any) -> datetime | None:
    if not v:
        return None
    d = datetime.fromisoformat(str(v))
    return (d if d.tzinfo else d.replace(tzinfo=clock.SHANGHAI)).astimezone(clock.UTC)


def make_listener(svc) -> Callable[[Session, Step], None]:
    """The engine listener for `special_visit` steps (bound to `svc` for the dispute reports)."""

    def on_step(s: Session, step: Step) -> None:
        if step.process_id != PROCESS_ID or not (step.business_key or "").startswith("flag:"):
            return
        f = s.get(SpecialFlag, int(step.business_key.split(":", 1)[1]))
        if f is None:
            return
        now = clock.now()
        for ev in step.emitted:
            kind, d = ev["kind"], ev["data"]
            if kind == "visit_scheduled":
                f.next_due_at = _parse_time(d.get("due_at"))
            elif kind == "visited":
                visit = dict(d.get("visit") or {})
                f.visits = int(d.get("visit_no") or f.visits + 1)
                f.last_visit_at, f.overdue_since = now, None
                r = s.get(Resident, f.resident_id)
                after = {"flag_id": f.id, "category": f.category, "visit_no": f.visits,
                         "due_at": d.get("due_at"), **visit}
                e = rules.record_event(s, r, "visit", step.actor, after=after,
                                       occurred_on=clock.local(now).date(), note=visit.get("notes"))
                if visit.get("open_case") and visit.get("dispute"):
                    s.flush()
                    _report_after_commit(svc, s, e.id, step.actor, f.id)
            elif kind == "visit_overdue":
                f.overdue_since = now
                f.overdue_count = (f.overdue_count or 0) + 1
            elif kind == "risk_changed":
                r = s.get(Resident, f.resident_id)
                rules.record_event(s, r, "risk", step.actor, before={"flag_id": f.id, "risk_level": f.risk_level},
                                   after={"risk_level": d.get("to_level")})
                f.risk_level = d.get("to_level") or f.risk_level
            elif kind == "schedule_ended" and f.active:
                _close_flag(s, f, step.actor, d.get("reason") or "")
                f.next_due_at = None
            elif kind == "schedule_renewed" and f.active:
                r = s.get(Resident, f.resident_id)
                grid = s.get(OrgUnit, d.get("grid_unit") or f.grid_code)
                data = {"flag_id": f.id, "resident_id": r.id, "resident_name": r.name, "category": f.category,
                        "risk_level": d.get("risk_level") or f.risk_level, "grid_unit": grid.code,
                        "village_unit": d.get("village_unit") or grid.parent_code,
                        "visit_no": int(d.get("visit_no") or f.visits), "last_visit_at": d.get("last_visit_at")}
                f.instance_id = _start_schedule(svc, s, f, data, step.actor, grid.path)
        if step.status == "cancelled" and f.active:
            _close_flag(s, f, step.actor, "visit schedule cancelled")
            f.next_due_at = None

    return on_step


def _report_after_commit(svc, s: Session, event_id: int, actor: str | None, flag_id: int) -> None:
    """Open the dispute case a visit asked for, once the visit's transaction has committed
    (`grid.cases.service.report` runs its own transaction)."""

    def hook(_session) -> None:
        try:
            open_visit_case(svc, event_id, actor)
        except Exception:  # noqa: BLE001 - the visit stands; the failure is recorded on the event
            log.exception("could not open the dispute case of visit event %s (flag %s)", event_id, flag_id)

    event.listen(s, "after_commit", hook, once=True)


def open_visit_case(svc, event_id: int, actor: str | None) -> str | None:
    """Report the dispute recorded on a visit event (once; the case number is kept on the event)."""
    from grid.cases.service import report  # the registry's one use of grid.cases

    with svc.db.read() as s:
        ev = s.get(ResidentEvent, event_id)
        if ev is None or ev.kind != "visit":
            return None  # the visit's transaction did not commit after all
        if ev.after.get("case_no"):
            return ev.after["case_no"]
        r = s.get(Resident, ev.resident_id)
        h, b = s.get(Household, r.household_id), None
        b = s.get(Building, h.building_id) if h else None
        visit = ev.after
        d = visit.get("dispute") or {}
        location = {"text": f"{b.address} {h.door_no}" if b else r.grid_code}
        if b is not None and b.lat is not None and b.lng is not None:
            location.update(lat=b.lat, lng=b.lng)
        data = {"category": d.get("category"), "description": d.get("description"), "location": location,
                "parties": [{"name": r.name, "resident_id": r.id}], "photos": list(visit.get("photos") or []),
                "settled_on_spot": bool(d.get("settled_on_spot"))}
        if d.get("spot_result"):
            data["spot_result"] = d["spot_result"]
        grid = ev.grid_code
    try:
        c = report(svc, actor, data, grid_code=grid)
        result = {"case_no": c.case_no, "case_id": c.id}
    except EngineError as e:
        result = {"case_error": str(e)[:500]}
    with svc.db.write() as s:
        ev = s.get(ResidentEvent, event_id)
        ev.after = {**ev.after, **result}
    return result.get("case_no")


_validator_registered = False


def visit_dmn_coverage(bundle, parsed) -> list:
    """Every category x risk level must be covered by the visit-interval DMN (if the bundle has it)."""
    from engine import dmncheck
    from engine.errors import Problem

    problems = []
    for name, content in bundle.dmn.items():
        for missing, where in dmncheck.gaps(content, "visit_intervals",
                                            {"category": list(CATEGORIES), "risk_level": list(RISK_LEVELS)}):
            problems.append(Problem(name, f"visit intervals do not cover {missing}", where, "visit_intervals"))
    return problems


def install(svc) -> None:
    """Register the registry's hooks on a Services object (idempotent)."""
    global _validator_registered
    if not any(getattr(fn, "_gridflow_registry", False) for fn in svc.runtime.listeners):
        fn = make_listener(svc)
        fn._gridflow_registry = True  # type: ignore[attr-defined]
        svc.runtime.listeners.append(fn)
    if not _validator_registered:
        from engine.deploy import register_validator

        register_validator(visit_dmn_coverage)
        _validator_registered = True


def visit_context(svc, instance_ids: list[int]) -> dict[int, dict]:
    """For inbox rows of visit tasks: instance id -> resident name, category, risk, grid, flag id."""
    if not instance_ids:
        return {}
    with svc.db.read() as s:
        rows = s.execute(select(SpecialFlag.instance_id, SpecialFlag.id, SpecialFlag.category, SpecialFlag.risk_level,
                                SpecialFlag.grid_code, Resident.id, Resident.name)
                         .join(Resident, Resident.id == SpecialFlag.resident_id)
                         .where(SpecialFlag.instance_id.in_(instance_ids))).all()
    return {iid: {"flag_id": fid, "category": cat, "category_name": CATEGORIES.get(cat, cat), "risk_level": risk,
                  "grid_code": grid, "resident_id": rid, "resident_name": name}
            for iid, fid, cat, risk, grid, rid, name in rows}


def flag_resident(svc, staff_id: str, flag_id: int) -> int:
    """The resident a flag belongs to, if the person may see it."""
    with svc.db.read() as s:
        f = s.get(SpecialFlag, flag_id)
        if f is None or not rules.may_see(s, staff_id, f.grid_code):
            raise NotFound("no such flag")
        return f.resident_id
