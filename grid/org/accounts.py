"""The signed-in person: their account with active roles, sign-in, language; names for display."""
from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import select

from engine import clock
from engine.errors import InvalidData, NotFound
from grid.org import service as org
from grid.org.models import OrgUnit, Staff, StaffRole

LOCALES = ("zh_CN", "en")


@dataclass(frozen=True)
class RoleView:
    unit_code: str
    unit_name: str
    level: str
    role: str
    title: str | None


@dataclass(frozen=True)
class Account:
    id: str
    username: str
    name: str
    locale: str
    roles: tuple[RoleView, ...]

    def has_role(self, *roles: str) -> bool:
        return any(r.role in roles for r in self.roles)

    @property
    def grids(self) -> list[RoleView]:
        return [r for r in self.roles if r.role == "grid_worker"]


def account(svc, staff_id: str) -> Account | None:
    """The signed-in person with their active roles, or None if the account is gone or disabled."""
    with svc.db.read() as s:
        st = s.get(Staff, staff_id)
        if st is None or not st.active:
            return None
        rows = s.execute(select(StaffRole.unit_code, OrgUnit.name, OrgUnit.level, StaffRole.role, StaffRole.title)
                         .join(OrgUnit, OrgUnit.code == StaffRole.unit_code)
                         .where(StaffRole.staff_id == staff_id, StaffRole.active.is_(True))
                         .order_by(StaffRole.id)).all()
    return Account(st.id, st.username, st.name, st.locale if st.locale in LOCALES else "zh_CN",
                   tuple(RoleView(*r) for r in rows))


def sign_in(svc, username: str, password: str) -> str | None:
    """Check a login (with the lockout of `org.authenticate`); the staff id, or None."""
    with svc.db.write() as s:
        st = org.authenticate(s, username or "", password or "", clock.now())
        return st.id if st is not None else None


def set_locale(svc, staff_id: str, locale: str) -> None:
    if locale not in LOCALES:
        raise InvalidData("unknown language", [{"path": "locale", "message": "unknown language", "validator": "enum"}])
    with svc.db.write() as s:
        st = s.get(Staff, staff_id)
        if st is None:
            raise NotFound("no such account")
        st.locale = locale


def unit_names(svc, codes) -> dict[str, str]:
    """{code: name} for the given unit codes (unknown codes are left out)."""
    codes = [c for c in set(codes) if c]
    if not codes:
        return {}
    with svc.db.read() as s:
        return dict(s.execute(select(OrgUnit.code, OrgUnit.name).where(OrgUnit.code.in_(codes))).all())


def staff_names(svc, ids) -> dict[str, str]:
    ids = [i for i in set(ids) if i]
    if not ids:
        return {}
    with svc.db.read() as s:
        return dict(s.execute(select(Staff.id, Staff.name).where(Staff.id.in_(ids))).all())
