"""改派 (reassignment): the dispatcher of a level hands an open task to another person.

A mediator is away, on leave or the wrong person: the level's dispatcher (网格长 at the village
level) moves the open task to another mediator of the same unit. The engine does the move
(`Runtime.reassign`: the task keeps the new assignment, its work item moves in the same step and
the audit trail says who moved it, from whom, to whom and why); this module decides who may do
it and to whom, on both ends: the case must lie in the dispatcher's jurisdiction and the task at
a unit they dispatch for, and the new person must hold the task's role on the task's unit.
The listener turns the step's `reassigned` event into a case record (the timeline's entry), and
the notification listener tells the new holder (kind `transferred`).
"""
from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.orm import Session

from engine.errors import InvalidData, NotFound
from engine.models import WorkItem
from engine.runtime import Assignment, Step
from grid.cases import departments
from grid.cases.models import DisputeCase
from grid.errors import Forbidden
from grid.org import service as org
from grid.org.models import OrgUnit, Staff

REASSIGNABLE_ROLES = ("mediator", "department_handler")
"""Roles whose open tasks a dispatcher may move to another holder of the same role and unit."""
DISPATCH_ROLES = ("dispatcher", "grid_head")
"""Who dispatches at a level: 派件员 (township and above), 网格长 (village)."""
REASON_MIN, REASON_MAX = 2, 500


@dataclass
class Option:
    """One open task the person may reassign, and to whom."""

    task_guid: str
    task: str
    name: str | None
    unit_id: str | None
    unit_name: str | None
    role: str | None
    holder_id: str | None
    holder_name: str | None
    candidates: list[Staff]


def _dispatch_units(s: Session, staff_id: str) -> set[str]:
    return {r.unit_code for r in org.roles_of(s, staff_id) if r.role in DISPATCH_ROLES}


def _dispatches_for(s: Session, staff_id: str, wi: WorkItem) -> bool:
    """The person dispatches for the task's unit, or (a department's task) for the level above it."""
    mine = _dispatch_units(s, staff_id)
    if wi.unit_id in mine:
        return True
    unit = s.get(OrgUnit, wi.unit_id) if wi.unit_id else None
    return unit is not None and unit.level == "department" and unit.parent_code in mine


def _reassignable(s: Session, staff_id: str, c: DisputeCase, wi: WorkItem) -> bool:
    return (wi.instance_id == c.instance_id and wi.state == "open" and wi.role in REASSIGNABLE_ROLES
            and bool(wi.user_id or wi.role == "department_handler") and _dispatches_for(s, staff_id, wi))


def _case(s: Session, staff_id: str, case_id: int) -> DisputeCase:
    return departments.visible_case(s, staff_id, case_id)  # NotFound outside the jurisdiction


def options(svc, staff_id: str, case_id: int) -> list[Option]:
    """The case's open tasks this person may reassign, with the people each may go to."""
    with svc.db.read() as s:
        return options_in(s, staff_id, _case(s, staff_id, case_id))


def options_in(s: Session, staff_id: str, c: DisputeCase) -> list[Option]:
    """`options` in the caller's session, for a case the caller has checked the person may see."""
    if c.status != "open" or not _dispatch_units(s, staff_id):
        return []
    out = []
    for wi in s.scalars(select(WorkItem).where(WorkItem.instance_id == c.instance_id, WorkItem.state == "open")
                        .order_by(WorkItem.id)):
        if not _reassignable(s, staff_id, c, wi):
            continue
        holder = s.get(Staff, wi.user_id) if wi.user_id else None
        cands = [p for p in org.staff_for(s, wi.unit_id, wi.role) if p.id != wi.user_id]
        out.append(Option(wi.task_guid, wi.task_spec, wi.name, wi.unit_id,
                          s.scalar(select(OrgUnit.name).where(OrgUnit.code == wi.unit_id)), wi.role,
                          wi.user_id, holder.name if holder else None, cands))
    return out


def may_reassign(svc, staff_id: str, case_id: int) -> bool:
    """Whether the case page offers the reassignment link (something the person may move)."""
    try:
        return bool(options(svc, staff_id, case_id))
    except NotFound:
        return False


def reassign(svc, staff_id: str, case_id: int, task_guid: str, to_staff_id: str, reason: str) -> Step:
    """Move an open task of the case to `to_staff_id`. NotFound outside the jurisdiction (or for a
    task not of this case), Forbidden if the person does not dispatch for the task's unit,
    InvalidData (nothing changed) for a reason missing or too long, or a new person who does not
    hold the task's role on its unit."""
    reason = (reason or "").strip()
    errors = []
    if not REASON_MIN <= len(reason) <= REASON_MAX:
        errors.append({"path": "reason", "validator": "length",
                       "message": f"give a reason of {REASON_MIN} to {REASON_MAX} characters"})
    with svc.db.read() as s:
        c = _case(s, staff_id, case_id)
        wi = s.scalar(select(WorkItem).where(WorkItem.task_guid == str(task_guid)))
        if wi is None or wi.instance_id != c.instance_id:
            raise NotFound("no such task")
        if wi.state != "open" or c.status != "open":
            raise InvalidData("this task is no longer open", [{"path": "task", "validator": "open",
                                                              "message": "the task is no longer open"}])
        if not _dispatches_for(s, staff_id, wi):
            raise Forbidden("only the dispatcher of the task's level may reassign it")
        if wi.role not in REASSIGNABLE_ROLES or not _reassignable(s, staff_id, c, wi):
            raise Forbidden("this task cannot be reassigned")
        to = s.get(Staff, str(to_staff_id)) if to_staff_id else None
        if to is None or not to.active or not org.holds_role(s, to.id, wi.unit_id, wi.role):
            errors.append({"path": "to", "validator": "staff",
                           "message": "the new person must hold the task's role on its unit"})
        elif to.id == wi.user_id:
            errors.append({"path": "to", "validator": "same", "message": "the task is already theirs"})
        if errors:
            raise InvalidData("the form has errors", errors)
        expect = {"user_id": wi.user_id, "unit_id": wi.unit_id, "role": wi.role}
        instance_id = wi.instance_id
    return svc.runtime.reassign(instance_id, wi.task_guid, Assignment(user_id=to.id), reason=reason,
                                actor=staff_id, expect=expect)
