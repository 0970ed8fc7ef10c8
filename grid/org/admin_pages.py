"""What administrators' pages show (grid.org.admin holds the verbs): the tree from the top of
one's administration, a unit with its children and staff, a person with roles and open tasks,
search. Jurisdiction-checked like the verbs; a refusal is audited as access_denied.
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import or_, select
from sqlalchemy.orm import Session

from engine import clock
from grid.org import service as org
from grid.org.admin import (
    UnitView,
    _staff_for,
    _unit_for,
    _uv,
    admin_paths,
    checked,
    handover_candidates,
    open_tasks,
)
from grid.org.models import LEVELS, OrgUnit, Staff, StaffRole


# ---- views -----------------------------------------------------------------------------------
@dataclass(frozen=True)
class StaffView:
    id: str
    username: str
    name: str
    phone: str | None
    title: str | None
    active: bool
    locked: bool
    must_change_password: bool
    roles: tuple[tuple[int, str, str, str, str | None], ...]  # (role id, unit code, unit name, role, title)


def _sv(s: Session, st: Staff, now: datetime) -> StaffView:
    rows = s.execute(select(StaffRole.id, StaffRole.unit_code, OrgUnit.name, StaffRole.role, StaffRole.title)
                     .join(OrgUnit, OrgUnit.code == StaffRole.unit_code)
                     .where(StaffRole.staff_id == st.id, StaffRole.active.is_(True)).order_by(StaffRole.id)).all()
    return StaffView(st.id, st.username, st.name, st.phone, st.title, bool(st.active),
                     org.locked_for(st, now) is not None, bool(st.must_change_password), tuple(tuple(r) for r in rows))


@checked
def roots(svc, actor: str) -> list[UnitView]:
    """The top units of the actor's administration (where the tree page starts)."""
    with svc.db.read() as s:
        paths = admin_paths(s, actor)
        codes = [org.path_codes(p)[-1] for p in paths]
        return [_uv(u, len(org.children(s, u.code))) for u in s.scalars(select(OrgUnit).where(OrgUnit.code.in_(codes))
                                                                          .order_by(OrgUnit.code))]


@checked
def unit_page(svc, actor: str, code: str) -> dict:
    """A unit with its ancestors (breadcrumb), children and the people holding roles on it."""
    with svc.db.write() as s:
        unit = _unit_for(s, actor, code, "view_unit")
        mine = admin_paths(s, actor)
        ancestors = [u for u in s.scalars(select(OrgUnit).where(OrgUnit.code.in_(org.path_codes(unit.path)[:-1])))
                     if any(u.path.startswith(p) for p in mine)]
        kids = org.children(s, code)
        counts = {k.code: len(org.children(s, k.code)) for k in kids} if unit.level != "village" else {}
        staff_ids = list(dict.fromkeys(s.scalars(select(StaffRole.staff_id).where(
            StaffRole.unit_code == code, StaffRole.active.is_(True)).order_by(StaffRole.id))))
        now = clock.now()
        people = [_sv(s, s.get(Staff, i), now) for i in staff_ids]
        return {"unit": _uv(unit), "ancestors": sorted((_uv(a) for a in ancestors), key=lambda a: LEVELS.index(a.level)),
                "children": [_uv(k, counts.get(k.code, 0)) for k in kids], "staff": people,
                "roles": [r for r, levels in org.ROLE_LEVELS.items() if unit.level in levels]}


@checked
def search(svc, actor: str, text: str, limit: int = 50) -> dict:
    """Units (by code or name) and staff (by name or username) in the actor's administration."""
    text = (text or "").strip()
    if not text:
        return {"units": [], "staff": []}
    like = f"%{text.replace('%', '').replace('_', '')}%"
    with svc.db.read() as s:
        cond = org.paths_condition(admin_paths(s, actor))
        units = s.scalars(select(OrgUnit).where(cond, or_(OrgUnit.code.like(like), OrgUnit.name.like(like)))
                          .order_by(OrgUnit.path).limit(limit)).all()
        ids = s.scalars(select(Staff.id).join(StaffRole, StaffRole.staff_id == Staff.id)
                        .join(OrgUnit, OrgUnit.code == StaffRole.unit_code)
                        .where(cond, or_(Staff.name.like(like), Staff.username.like(like)))
                        .distinct().order_by(Staff.id).limit(limit)).all()
        now = clock.now()
        return {"units": [_uv(u) for u in units], "staff": [_sv(s, s.get(Staff, i), now) for i in ids]}


@checked
def staff_page(svc, actor: str, staff_id: str) -> dict:
    """A person, their roles, open tasks and who could take them over."""
    with svc.db.write() as s:
        st = _staff_for(s, actor, staff_id, "view_staff")
        view = _sv(s, st, clock.now())
    return {"staff": view, "tasks": open_tasks(svc, actor, staff_id), "candidates": handover_candidates(svc, staff_id)}


