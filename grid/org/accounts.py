"""The signed-in person: their account with active roles, sign-in (audited), password change,
language; names for display."""
from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import select

from engine import clock
from engine.errors import InvalidData, NotFound
from grid.org import audit, sessions
from grid.org import service as org
from grid.org.models import OrgUnit, Staff, StaffRole

LOCALES = ("zh_CN", "en")
PASSWORD_MIN = 8


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


def _plain(text: str) -> bool:
    return not any(ord(ch) < 32 or 127 <= ord(ch) < 160 for ch in text)


def sign_in(svc, username: str, password: str, *, ip: str | None = None) -> str | None:
    """Check a login (with the throttle of `org.authenticate`); the staff id, or None.

    Every outcome goes to the security audit log in the same transaction: success, failure
    (the account named when it exists; an unknown username is not written, it may be a
    mistyped password) or an attempt while throttled."""
    username, now = username or "", clock.now()
    with svc.db.write() as s:
        known = org.staff_by_username(s, username) if username and _plain(username) else None
        throttled = known is not None and known.active and org.locked_for(known, now) is not None
        st = org.authenticate(s, username, password or "", now)
        if st is not None:
            audit.record(s, audit.SIGN_IN, actor=st.id, subject=st.id, ip=ip, at=now)
            return st.id
        if throttled:
            audit.record(s, audit.THROTTLED, subject=known.id, ip=ip, at=now,
                         detail={"username": known.username, "locked_until": known.locked_until.isoformat()})
        elif known is None:
            audit.record(s, audit.SIGN_IN_FAILURE, ip=ip, at=now, detail={"reason": "unknown_user"})
        else:
            detail = {"username": known.username, "reason": "wrong_password" if known.active else "inactive"}
            if known.active:
                detail["failures"] = known.failed_logins or 0
                if known.locked_until is not None and known.locked_until > now:
                    detail["throttled_until"] = known.locked_until.isoformat()
            audit.record(s, audit.SIGN_IN_FAILURE, subject=known.id, ip=ip, at=now, detail=detail)
        return None


def change_password(svc, staff_id: str, current: str, new: str, confirm: str | None = None, *,
                    keep_session: int | None = None, ip: str | None = None) -> int:
    """Change one's own password: the current one is checked like a sign-in (a wrong one counts
    towards the throttle, so a borrowed session cannot guess it); then every other session of the
    person ends. Returns how many sessions were ended. Raises InvalidData with the field at fault."""
    def invalid(path: str, message: str):
        return InvalidData(message, [{"path": path, "message": message, "validator": "password"}])

    new = new or ""
    if confirm is not None and new != confirm:
        raise invalid("confirm", "the two new passwords differ")
    if len(new) < PASSWORD_MIN or not _plain(new) or not new.strip():
        raise invalid("new_password", f"at least {PASSWORD_MIN} characters, no control characters")
    now = clock.now()
    with svc.db.write() as s:
        st = s.get(Staff, staff_id)
        if st is None or not st.active:
            raise NotFound("no such account")
        if new == st.username:
            raise invalid("new_password", "the password may not be the username")
        ok = _plain(current or "") and org.authenticate(s, st.username, current or "", now) is not None
        if not ok:
            audit.record(s, audit.PASSWORD_CHANGE_FAILURE, actor=staff_id, subject=staff_id, ip=ip, at=now,
                         detail={"reason": "wrong_current_password"})
    if not ok:  # committed: the failure counts and is logged
        raise invalid("current_password", "the current password is wrong")
    with svc.db.write() as s:
        org.set_password(s, staff_id, new)
        audit.record(s, audit.PASSWORD_CHANGE, actor=staff_id, subject=staff_id, ip=ip, at=now)
        return sessions.end_all_in(s, staff_id, "password_change", actor=staff_id, keep=keep_session)


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
