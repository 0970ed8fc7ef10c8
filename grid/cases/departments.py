"""部门协同: a level sends a case, or a part of it, to functional departments (城管, 住建, 司法所,
派出所 ...) under it.

Departments are org units of level `department` under a township, county or city, with their own
staff (role `department_handler`). The process decides the route (handle_level.bpmn: dispatch
action `transfer` → a parallel multi-instance sub-process `department_work`, one instance per
department, each with its own warning and overdue timer from department_limits.dmn or the
dispatcher's `days`); the level carries on at dispatch when they have all answered. An overdue
department gets `warning` and `accountability` records against its own unit, counted like a
level's (grid.cases.rollup). This module holds the checks the form cannot make: a department
named in a transfer must be one of the dispatching level's, and staffed; and who may see a case:
a department's staff see the cases sent to it while its task is open.
"""
from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from engine.errors import InvalidData
from engine.models import WorkItem
from grid.cases.models import DisputeCase
from grid.org import service as org
from grid.org.models import DEPARTMENT, OrgUnit, StaffRole

HANDLER = "department_handler"


def departments_of(s: Session, unit_code: str | None) -> list[OrgUnit]:
    """The departments directly under a level's unit, by code (none for a village or a grid)."""
    if not unit_code:
        return []
    return list(s.scalars(select(OrgUnit).where(OrgUnit.parent_code == unit_code, OrgUnit.level == DEPARTMENT,
                                                OrgUnit.retired_on.is_(None)).order_by(OrgUnit.code)))


def check_transfer(s: Session, wi: WorkItem, data: dict) -> None:
    """A transfer names departments of the dispatching level's unit, each once and staffed;
    InvalidData (nothing done) with the offending row's path otherwise."""
    if data.get("action") != "transfer":
        return
    rows = data.get("departments") or []
    mine = {u.code for u in departments_of(s, wi.unit_id)}
    errors, seen = [], set()
    for i, row in enumerate(rows):
        code = row.get("unit") if isinstance(row, dict) else None
        where = f"departments/{i}/unit"
        if code not in mine:
            errors.append({"path": where, "validator": "department",
                           "message": "not a department of this level"})
        elif code in seen:
            errors.append({"path": where, "validator": "uniqueItems", "message": "named twice"})
        elif not org.staff_for(s, code, HANDLER):
            errors.append({"path": where, "validator": "staffed", "message": "the department has no handler"})
        seen.add(code)
    if errors:
        raise InvalidData("the form has errors", errors)


def works_on(s: Session, staff_id: str, c: DisputeCase) -> bool:
    """Whether the person handles, for a department, an open task of this case (so they may see it)."""
    if c.instance_id is None:
        return False
    units = [r.unit_code for r in org.roles_of(s, staff_id) if r.role == HANDLER]
    if not units:
        return False
    q = (select(WorkItem.id).where(WorkItem.instance_id == c.instance_id, WorkItem.state == "open",
                                   WorkItem.unit_id.in_(units)).limit(1))
    return s.scalar(q) is not None


def handlers(s: Session, unit_code: str) -> list[str]:
    """Staff ids of a department's active handlers (for the scenario runner and pages)."""
    return list(s.scalars(select(StaffRole.staff_id).where(StaffRole.unit_code == unit_code,
                                                           StaffRole.role == HANDLER,
                                                           StaffRole.active.is_(True))))
