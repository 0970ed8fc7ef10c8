"""Administrators' verbs on the organisation: browse and change the unit tree, add, edit, move and
deactivate staff, roles, password reset, unlock, task handover.

Every verb is checked against the actor's jurisdiction as an administrator (an active `admin`
role: a county administrator manages the county and everything below it) and audited in the
same transaction (grid.org.audit: who, when, before, after). A refusal is audited as
`access_denied` and raised as grid.errors.Forbidden. Deactivation, reset and role removal end
the person's sessions at once (grid.org.sessions).
"""
from __future__ import annotations

import functools
import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from engine.errors import NotFound
from engine.models import WorkItem
from grid.errors import Forbidden
from grid.org import audit, policy, sessions
from grid.org import service as org
from grid.org.models import LEVELS, OrgUnit, Staff, StaffRole
from grid.org.service import OrgError, path_under

KINDS = {"county": "区", "township": "街道", "village": "社区", "grid": "网格"}
"""Default unit kind per level for units added by hand."""

OpenCheck = Callable[[Session, OrgUnit], int]
OPEN_CASE_CHECKS: list[OpenCheck] = []
"""Extra "open cases under this unit" counts a domain may add (grid.cases can register one);
retiring refuses while any is non-zero. Open work items are always counted here."""


# ---- jurisdiction ----------------------------------------------------------------------------
def admin_paths(s: Session, actor: str) -> list[str]:
    """Paths of the units the actor administers (an active admin role), outermost only."""
    q = (select(OrgUnit.path).join(StaffRole, StaffRole.unit_code == OrgUnit.code)
         .where(StaffRole.staff_id == actor, StaffRole.role == "admin", StaffRole.active.is_(True)))
    return org._outermost(list(s.scalars(q)))


class Denied(Forbidden):
    """Outside the actor's administration; `checked` writes it to the audit log after the
    refused transaction has rolled back."""

    def __init__(self, actor: str, what: str, subject: str | None, unit: str | None):
        super().__init__(f"{what}: outside your administration")
        self.actor, self.what, self.subject, self.unit = actor, what, subject, unit


def _deny(s: Session, actor: str, what: str, *, subject: str | None = None, unit: str | None = None) -> Denied:
    return Denied(actor, what, subject, unit)


def checked(fn: Callable) -> Callable:
    """Audit a refusal (access_denied) of a verb called as fn(svc, actor, ...)."""
    @functools.wraps(fn)
    def wrapper(svc, *args, **kw):
        try:
            return fn(svc, *args, **kw)
        except Denied as e:
            audit.log(svc, audit.ACCESS_DENIED, actor=e.actor, subject=e.subject, unit=e.unit,
                      detail={"action": e.what})
            raise
    return wrapper


def manages_unit(s: Session, actor: str, code: str) -> bool:
    unit = s.get(OrgUnit, code)
    return unit is not None and any(unit.path.startswith(p) for p in admin_paths(s, actor))


def _unit_for(s: Session, actor: str, code: str, what: str) -> OrgUnit:
    unit = s.get(OrgUnit, code)
    if unit is None:
        raise NotFound(f"unknown unit {code}")
    if not any(unit.path.startswith(p) for p in admin_paths(s, actor)):
        raise _deny(s, actor, what, unit=code)
    return unit


def _staff_units(s: Session, staff_id: str) -> list[OrgUnit]:
    """The units a person belongs to: their active roles', else (deactivated) their last ones'."""
    rows = org.roles_of(s, staff_id) or org.roles_of(s, staff_id, active_only=False)
    codes = {r.unit_code for r in rows}
    return list(s.scalars(select(OrgUnit).where(OrgUnit.code.in_(codes)))) if codes else []


def manages_staff(s: Session, actor: str, staff_id: str) -> bool:
    """Every unit the person belongs to lies in the actor's administration (a person with no
    unit at all is the top administrators' only)."""
    paths = admin_paths(s, actor)
    units = _staff_units(s, staff_id)
    if not units:
        return any(p.count("/") == 1 for p in paths)
    return all(any(u.path.startswith(p) for p in paths) for u in units)


def _staff_for(s: Session, actor: str, staff_id: str, what: str) -> Staff:
    st = s.get(Staff, staff_id)
    if st is None:
        raise NotFound(f"unknown staff {staff_id}")
    if not manages_staff(s, actor, staff_id):
        raise _deny(s, actor, what, subject=staff_id)
    return st


def admin_paths_of(svc, actor: str) -> list[str]:
    """`admin_paths` in a read of its own (for the audit page's jurisdiction)."""
    with svc.db.read() as s:
        return admin_paths(s, actor)


def is_org_admin(svc, actor: str) -> bool:
    with svc.db.read() as s:
        return bool(admin_paths(s, actor))


def deny(svc, actor: str | None, what: str) -> None:
    """Audit an access denial the web layer decided (a non-administrator on an admin page)."""
    audit.log(svc, audit.ACCESS_DENIED, actor=actor, detail={"action": what})


@dataclass(frozen=True)
class UnitView:
    code: str
    name: str
    level: str
    kind: str
    parent_code: str | None
    retired: bool
    children: int = 0


def _uv(u: OrgUnit, children: int = 0) -> UnitView:
    return UnitView(u.code, u.name, u.level, u.kind, u.parent_code, u.retired_on is not None, children)


# ---- units -----------------------------------------------------------------------------------
@checked
def add_unit(svc, actor: str, parent_code: str, code: str, name: str, kind: str | None = None) -> UnitView:
    """A new unit under `parent_code`; the level follows from the parent's. Codes: 12 digits
    (统计用区划代码) for counties to villages, village code + 3 digits for a grid."""
    code, name = (code or "").strip(), (name or "").strip()
    with svc.db.write() as s:
        parent = _unit_for(s, actor, parent_code, "add_unit")
        if parent.depth >= len(LEVELS):
            raise OrgError("a grid has no units below it")
        if parent.retired_on is not None:
            raise OrgError("the parent unit is retired")
        level = LEVELS[parent.depth]
        from grid.org.importer import code_problem

        problem = code_problem(code, level, parent.code)
        if problem:
            raise OrgError(problem)
        if not name or len(name) > 100:
            raise OrgError("a name of 1 to 100 characters is needed")
        if s.get(OrgUnit, code) is not None:
            raise OrgError(f"unit {code} exists already")
        unit = org.add_unit(s, code, name, level, kind or KINDS.get(level, level), parent.code)
        audit.record(s, audit.UNIT_ADDED, actor=actor, unit=code,
                     detail={"before": None, "after": {"code": code, "name": name, "level": level}})
        return _uv(unit)


@checked
def rename_unit(svc, actor: str, code: str, name: str) -> UnitView:
    name = (name or "").strip()
    if not name or len(name) > 100:
        raise OrgError("a name of 1 to 100 characters is needed")
    with svc.db.write() as s:
        unit = _unit_for(s, actor, code, "rename_unit")
        before = unit.name
        if before != name:
            unit.name = name
            audit.record(s, audit.UNIT_RENAMED, actor=actor, unit=code,
                         detail={"before": {"name": before}, "after": {"name": name}})
        return _uv(unit)


def open_under(s: Session, unit: OrgUnit) -> int:
    """Open work items on the unit or below, plus what OPEN_CASE_CHECKS count."""
    codes = select(OrgUnit.code).where(path_under(OrgUnit.path, unit.path))
    n = len(s.scalars(select(WorkItem.id).where(WorkItem.state == "open", WorkItem.unit_id.in_(codes))).all())
    return n + sum(check(s, unit) for check in OPEN_CASE_CHECKS)


@checked
def retire_unit(svc, actor: str, code: str) -> UnitView:
    """Retire a unit: refused while anything is open under it or a child is still in service;
    the roles held on it end (audited), the row stays for history."""
    with svc.db.write() as s:
        unit = _unit_for(s, actor, code, "retire_unit")
        if unit.depth == 1:
            raise OrgError("the city cannot be retired")
        if unit.retired_on is not None:
            return _uv(unit)
        if any(k.retired_on is None for k in org.children(s, code)):
            raise OrgError("retire the units below it first")
        if open_under(s, unit):
            raise OrgError("it still has open cases or tasks")
        for r in s.scalars(select(StaffRole).where(StaffRole.unit_code == code, StaffRole.active.is_(True))).all():
            org.end_role(s, r)
            audit.record(s, audit.ROLE_REMOVED, actor=actor, subject=r.staff_id, unit=code,
                         detail={"before": {"role": r.role, "unit": code}, "after": None, "reason": "unit_retired"})
        unit.retired_on = org._today()
        audit.record(s, audit.UNIT_RETIRED, actor=actor, unit=code,
                     detail={"before": {"retired": False}, "after": {"retired": True}})
        return _uv(unit)


# ---- staff -----------------------------------------------------------------------------------
@dataclass(frozen=True)
class NewAccount:
    staff_id: str
    username: str
    initial_password: str  # shown once to the administrator; the person must change it at first sign-in


def _check_role_unit(s: Session, unit: OrgUnit, role: str) -> None:
    if role not in org.ROLES:
        raise OrgError(f"unknown role {role!r}")
    if unit.level not in org.ROLE_LEVELS[role]:
        raise OrgError(f"{role} cannot be held on a {unit.level}")
    if unit.retired_on is not None:
        raise OrgError(f"unit {unit.code} is retired")


@checked
def add_staff(svc, actor: str, *, name: str, unit_code: str, role: str, username: str | None = None,
              phone: str | None = None, title: str | None = None) -> NewAccount:
    """A new account with a role on a unit; returns a one-time initial password that must be
    changed at first sign-in. The username defaults to the phone number."""
    name, phone = (name or "").strip(), (phone or "").strip() or None
    username = (username or phone or "").strip().lower()
    if not name or not username:
        raise OrgError("a name and a username (or phone) are needed")
    with svc.db.write() as s:
        unit = _unit_for(s, actor, unit_code, "add_staff")
        _check_role_unit(s, unit, role)
        if org.staff_by_username(s, username) is not None:
            raise OrgError(f"username {username} is taken")
        initial = policy.one_time_password()
        st = org.create_staff(s, username, name, password=initial, phone=phone)
        st.must_change_password = True
        st.title = (title or "").strip() or None
        org.assign_role(s, st.id, unit.code, role, title=st.title)
        audit.record(s, audit.ACCOUNT_CREATED, actor=actor, subject=st.id, unit=unit.code,
                     detail={"before": None, "after": {"username": username, "name": name, "unit": unit.code,
                                                       "role": role, "title": st.title}})
        return NewAccount(st.id, username, initial)


@checked
def edit_staff(svc, actor: str, staff_id: str, *, name: str | None = None, phone: str | None = None,
               title: str | None = None) -> None:
    """Change name, phone or title (None leaves a field as it is). The audit notes that the phone
    changed, never the number."""
    with svc.db.write() as s:
        st = _staff_for(s, actor, staff_id, "edit_staff")
        if any(v is not None and len(v.strip()) > 50 for v in (name, title)):
            raise OrgError("a name or title of at most 50 characters is needed")
        if phone is not None and phone.strip() and not re.fullmatch(r"\+?\d{5,19}", phone.strip()):
            raise OrgError("not a phone number (digits, 5 to 20)")
        before, after = {}, {}
        for field, value in (("name", name), ("title", title)):
            if value is not None and (value.strip() or None) != getattr(st, field):
                if field == "name" and not value.strip():
                    raise OrgError("the name may not be empty")
                before[field], after[field] = getattr(st, field), value.strip() or None
                setattr(st, field, value.strip() or None)
        if phone is not None and (phone.strip() or None) != st.phone:
            st.phone = phone.strip() or None
            before["contact"], after["contact"] = "changed", "changed"
        if after:
            audit.record(s, audit.ACCOUNT_EDITED, actor=actor, subject=staff_id, detail={"before": before, "after": after})


@checked
def assign_role(svc, actor: str, staff_id: str, unit_code: str, role: str, title: str | None = None) -> None:
    with svc.db.write() as s:
        _staff_for(s, actor, staff_id, "assign_role")
        unit = _unit_for(s, actor, unit_code, "assign_role")
        _check_role_unit(s, unit, role)
        if org.holds_role(s, staff_id, unit_code, role):
            return
        org.assign_role(s, staff_id, unit_code, role, title=(title or "").strip() or None)
        audit.record(s, audit.ROLE_ASSIGNED, actor=actor, subject=staff_id, unit=unit_code,
                     detail={"before": None, "after": {"role": role, "unit": unit_code}})


@checked
def remove_role(svc, actor: str, staff_id: str, role_id: int) -> int:
    """End one role; the person's sessions end (their rights changed). Sessions ended."""
    with svc.db.write() as s:
        _staff_for(s, actor, staff_id, "remove_role")
        r = s.get(StaffRole, role_id)
        if r is None or r.staff_id != staff_id or not r.active:
            raise NotFound("no such role")
        _unit_for(s, actor, r.unit_code, "remove_role")
        org.end_role(s, r)
        _fall_back(s, staff_id)
        audit.record(s, audit.ROLE_REMOVED, actor=actor, subject=staff_id, unit=r.unit_code,
                     detail={"before": {"role": r.role, "unit": r.unit_code}, "after": None})
        return sessions.end_all_in(s, staff_id, "role_removed", actor=actor)


@checked
def reset_password(svc, actor: str, staff_id: str) -> str:
    """A new one-time password (returned, to hand to the person), changed at next sign-in; every
    session of the person ends."""
    with svc.db.write() as s:
        st = _staff_for(s, actor, staff_id, "reset_password")
        initial = policy.one_time_password()
        policy.store_new(s, st, initial, must_change=True)
        audit.record(s, audit.PASSWORD_RESET, actor=actor, subject=staff_id,
                     detail={"before": None, "after": {"forced_change": True}})
        sessions.end_all_in(s, staff_id, "password_reset", actor=actor)
        return initial


@checked
def unlock(svc, actor: str, staff_id: str) -> None:
    with svc.db.write() as s:
        st = _staff_for(s, actor, staff_id, "unlock")
        before = {"failed_logins": st.failed_logins or 0,
                  "locked_until": st.locked_until.isoformat() if st.locked_until else None}
        org.unlock(s, staff_id)
        audit.record(s, audit.UNLOCKED, actor=actor, subject=staff_id,
                     detail={"before": before, "after": {"failed_logins": 0, "locked_until": None}})


# ---- open tasks, handover, deactivation, moves -------------------------------------------------
@dataclass(frozen=True)
class TaskView:
    task_guid: str
    instance_id: int
    name: str | None
    unit_id: str | None
    role: str | None
    due_at: datetime | None


def _personal(s: Session, staff_id: str) -> list[WorkItem]:
    return list(s.scalars(select(WorkItem).where(WorkItem.user_id == staff_id, WorkItem.state == "open")
                          .order_by(WorkItem.due_at, WorkItem.id)))


@checked
def open_tasks(svc, actor: str, staff_id: str) -> list[TaskView]:
    """The open tasks assigned to the person by name (the ones a handover moves)."""
    with svc.db.read() as s:
        _staff_for(s, actor, staff_id, "view_staff")
        return [TaskView(w.task_guid, w.instance_id, w.name, w.unit_id, w.role, w.due_at) for w in _personal(s, staff_id)]


def handover_candidates(svc, staff_id: str) -> list[tuple[str, str]]:
    """(id, name) of active people holding one of the person's roles on the same unit."""
    with svc.db.read() as s:
        pairs = {(r.unit_code, r.role) for r in org.roles_of(s, staff_id)}
        pairs |= {(w.unit_id, w.role) for w in _personal(s, staff_id) if w.unit_id and w.role}
        found: dict[str, str] = {}
        for unit_code, role in sorted(pairs):
            for p in org.staff_for(s, unit_code, role):
                if p.id != staff_id:
                    found.setdefault(p.id, p.name)
        return sorted(found.items())


def _fall_back(s: Session, staff_id: str) -> int:
    """The cases' assignment rule applied to open items: a task named for someone who no longer
    holds its role on its unit goes back to whoever holds it now (user cleared)."""
    n = 0
    for w in _personal(s, staff_id):
        active = s.get(Staff, staff_id)
        if not (active and active.active and w.unit_id and w.role and org.holds_role(s, staff_id, w.unit_id, w.role)):
            w.user_id = None
            n += 1
    s.flush()
    return n


@checked
def hand_over(svc, actor: str, from_id: str, to_id: str) -> int:
    """Give every open task named for `from_id` to `to_id`, who must hold each task's role on its
    unit (refused as a whole, naming the tasks, otherwise). The number handed over."""
    with svc.db.write() as s:
        _staff_for(s, actor, from_id, "hand_over")
        target = _staff_for(s, actor, to_id, "hand_over")
        if not target.active or to_id == from_id:
            raise OrgError("hand over to another active person")
        items = _personal(s, from_id)
        wrong = [w.name or w.task_spec for w in items
                 if not (w.unit_id and w.role and org.holds_role(s, to_id, w.unit_id, w.role))]
        if wrong:
            raise OrgError(f"{target.name} does not hold the role for: {', '.join(wrong)}")
        for w in items:
            w.user_id = to_id
        if items:
            audit.record(s, audit.TASKS_HANDED_OVER, actor=actor, subject=from_id,
                         detail={"before": {"staff": from_id}, "after": {"staff": to_id}, "count": len(items),
                                 "tasks": [w.task_guid for w in items][:50]})
        return len(items)


@checked
def deactivate(svc, actor: str, staff_id: str, hand_over_to: str | None = None) -> int:
    """Deactivate an account: its open tasks go to `hand_over_to` (or back to their unit's
    pool), its roles end, every session ends at once. Returns the tasks handed over."""
    if actor == staff_id:
        raise OrgError("you cannot deactivate yourself")
    moved = hand_over(svc, actor, staff_id, hand_over_to) if hand_over_to else 0
    with svc.db.write() as s:
        st = _staff_for(s, actor, staff_id, "deactivate")
        if not st.active:
            return moved
        roles = org.roles_of(s, staff_id)
        st.active = False
        for r in roles:
            org.end_role(s, r)
        pooled = _fall_back(s, staff_id)
        audit.record(s, audit.ACCOUNT_DEACTIVATED, actor=actor, subject=staff_id,
                     unit=roles[0].unit_code if roles else None,
                     detail={"before": {"active": True, "roles": [f"{r.role}@{r.unit_code}" for r in roles]},
                             "after": {"active": False}, "handed_over": moved, "to_pool": pooled})
        sessions.end_all_in(s, staff_id, "deactivated", actor=actor)
    return moved


@checked
def move_grid_worker(svc, actor: str, staff_id: str, to_grid: str) -> None:
    """Move a grid worker to another grid (org.move_grid_worker: whoever worked the new grid
    stops there); their open tasks on the old grid fall back to that grid's worker."""
    with svc.db.write() as s:
        _staff_for(s, actor, staff_id, "move_grid_worker")
        target = _unit_for(s, actor, to_grid, "move_grid_worker")
        if target.level != "grid" or target.retired_on is not None:
            raise OrgError(f"{to_grid} is not a grid in service")
        old = [r for r in org.roles_of(s, staff_id) if r.role == "grid_worker"]
        if not old:
            raise OrgError("this person is no grid worker")
        for r in old:
            if r.unit_code != to_grid:
                org.end_role(s, r)
        if not org.holds_role(s, staff_id, to_grid, "grid_worker"):
            org.move_grid_worker(s, to_grid, staff_id)
        pooled = _fall_back(s, staff_id)
        audit.record(s, audit.ACCOUNT_MOVED, actor=actor, subject=staff_id, unit=to_grid,
                     detail={"before": {"grids": [r.unit_code for r in old]}, "after": {"grids": [to_grid]},
                             "to_pool": pooled})
