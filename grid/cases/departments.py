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

The picker (`transfer_form`, `send`): the staff member who dispatches at a level (the one who may
complete the level's open dispatch task) picks departments from those of that level that are
staffed, each with the part it is asked to do and an optional limit; `send` checks again on the
server (each picked department exists, is one of this level's, is not retired, has a handler,
and is named once) before the dispatch task is completed with the transfer.
"""
from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.orm import Session

from engine.errors import InvalidData, NotFound
from engine.models import Instance, WorkItem
from engine.runtime import Step
from grid.cases.models import DisputeCase
from grid.org import request_memo
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


# ---- the picker -------------------------------------------------------------------------------
DISPATCH_FORM = "dispatch.json"


@dataclass
class TransferForm:
    """The level's open dispatch task the person may complete, and the departments to pick from."""

    task_guid: str
    unit_id: str
    unit_name: str
    lock_version: int
    schema: dict  # the task's form (its `departments` property gives the row fields and limits)
    choices: list[tuple[str, str]]  # (code, name) of the level's staffed departments


def _dispatch_item(s: Session, staff_id: str, c: DisputeCase) -> WorkItem | None:
    from grid.cases import service as cases

    if c.instance_id is None or c.status != "open":
        return None
    for wi in s.scalars(select(WorkItem).where(WorkItem.instance_id == c.instance_id, WorkItem.state == "open",
                                               WorkItem.form == DISPATCH_FORM).order_by(WorkItem.id)):
        if cases.can_act(s, staff_id, wi):
            return wi
    return None


def choices(s: Session, unit_code: str | None) -> list[tuple[str, str]]:
    """(code, name) of the departments under a level's unit that have a handler: what may be picked."""
    return [(u.code, u.name) for u in departments_of(s, unit_code) if org.staff_for(s, u.code, HANDLER)]


def visible_case(s: Session, staff_id: str, case_id: int) -> DisputeCase:
    """The case, if the person may see it (NotFound otherwise, as for a missing one); read once
    per web request (grid.org.request_memo), so the case page's links and checks do not reload it."""
    from grid.cases import service as cases

    def load() -> DisputeCase:
        c = s.get(DisputeCase, case_id)
        if c is None or not cases._sees_case(s, staff_id, c):
            raise NotFound("no such case")  # outside the jurisdiction looks the same as missing
        return c

    return request_memo.remember(s, ("visible_case", staff_id, case_id), load, request_memo.attached_row(s))


def transfer_form(svc, staff_id: str, case_id: int) -> TransferForm | None:
    """What the picker shows, or None when the person has no dispatch task of this case that can
    send to departments (not the level's dispatcher, or no staffed department under the level).
    NotFound outside the person's jurisdiction."""
    with svc.db.read() as s:
        return transfer_form_in(svc, s, staff_id, visible_case(s, staff_id, case_id))


def transfer_form_in(svc, s: Session, staff_id: str, c: DisputeCase) -> TransferForm | None:
    """`transfer_form` in the caller's session, for a case the caller has checked the person may see."""
    wi = _dispatch_item(s, staff_id, c)
    if wi is None:
        return None
    picks = choices(s, wi.unit_id)
    inst = s.get(Instance, wi.instance_id)
    unit_name = s.scalar(select(OrgUnit.name).where(OrgUnit.code == wi.unit_id)) or (wi.unit_id or "")
    schema = svc.runtime.form_schema(inst.version_id, wi.form) or {}
    if not picks or "departments" not in (schema.get("properties") or {}):
        return None
    return TransferForm(wi.task_guid, wi.unit_id, unit_name, inst.lock_version, schema, picks)


def may_transfer(svc, staff_id: str, case_id: int) -> bool:
    """Whether the case page offers the picker."""
    try:
        return transfer_form(svc, staff_id, case_id) is not None
    except NotFound:
        return False


def send(svc, staff_id: str, case_id: int, task_guid: str, rows: list[dict], note: str | None = None) -> Step:
    """Send the case to the picked departments: completes the level's dispatch task with action
    `transfer`. NotFound outside the jurisdiction or for a task that is not this case's open
    dispatch task of the person; InvalidData (nothing changed) if a department is not one the
    person may pick (`check_transfer`, again inside `complete_task`)."""
    from grid.cases import service as cases

    form = transfer_form(svc, staff_id, case_id)
    if form is None or form.task_guid != str(task_guid):
        raise NotFound("no such task")
    data: dict = {"action": "transfer", "departments": rows}
    if note:
        data["dispatch_note"] = note
    with svc.db.read() as s:
        wi = s.scalar(select(WorkItem).where(WorkItem.task_guid == form.task_guid))
        check_transfer(s, wi, data)
    return cases.complete_task(svc, staff_id, form.task_guid, data)
