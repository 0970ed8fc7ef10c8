"""The signed-in person: their account with active roles, sign-in (audited), password change,
language; names for display."""
from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import select

from engine import clock
from engine.errors import InvalidData, NotFound
from grid.org import audit, policy, sessions
from grid.org import service as org
from grid.org.models import OrgUnit, Staff, StaffRole

LOCALES = ("zh_CN", "en")
PASSWORD_MIN = policy.MIN_LENGTH  # the default; the policy in force is policy.Policy.from_env()


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
    must_change_password: bool = False

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
        rows = s.execute(select(StaffRole, OrgUnit.name, OrgUnit.level, OrgUnit.path)
                         .join(OrgUnit, OrgUnit.code == StaffRole.unit_code)
                         .where(StaffRole.staff_id == staff_id, StaffRole.active.is_(True))
                         .order_by(StaffRole.id)).all()
        org.remember_roles(s, staff_id, [r for r, *_ in rows], [path for *_, path in rows])
    return Account(st.id, st.username, st.name, st.locale if st.locale in LOCALES else "zh_CN",
                   tuple(RoleView(r.unit_code, name, level, r.role, r.title) for r, name, level, _p in rows),
                   bool(st.must_change_password))


def must_change_password(svc, staff_id: str) -> bool:
    """Whether the person must choose a new password before anything else (after an
    administrator's reset, or at the first sign-in of an imported account)."""
    with svc.db.read() as s:
        st = s.get(Staff, staff_id)
        return bool(st is not None and st.must_change_password)


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


def policy_invalid(e: policy.PolicyError) -> InvalidData:
    """The InvalidData for a refused new password: path new_password, `reason` the policy's code."""
    message = {"too_short": f"at least {e.policy.min_length} characters",
               "classes": f"at least {e.policy.classes} of: lower case, upper case, digits, other characters",
               "username": "the password may not contain the username",
               "reused": f"not one of the last {e.policy.history} passwords",
               "control": "no control characters"}.get(e.reason, e.reason)
    return InvalidData(message, [{"path": "new_password", "message": message, "validator": "password_policy",
                                  "reason": e.reason, "min_length": e.policy.min_length,
                                  "classes": e.policy.classes, "history": e.policy.history}])


def change_password(svc, staff_id: str, current: str, new: str, confirm: str | None = None, *,
                    keep_session: int | None = None, ip: str | None = None) -> int:
    """Change one's own password: the current one is checked like a sign-in (a wrong one counts
    towards the throttle, so a borrowed session cannot guess it); the new one must pass the
    password policy (grid.org.policy: length, classes, not the username, not a recent one);
    then every other session of the person ends and a forced change is done. Returns how many
    sessions were ended. Raises InvalidData with the field at fault."""
    def invalid(path: str, message: str):
        return InvalidData(message, [{"path": path, "message": message, "validator": "password"}])

    new = new or ""
    if confirm is not None and new != confirm:
        raise invalid("confirm", "the two new passwords differ")
    rules = policy.Policy.from_env()
    if len(new) < rules.min_length or not _plain(new) or not new.strip():
        raise policy_invalid(policy.PolicyError("control" if not _plain(new) else "too_short", rules))
    now = clock.now()
    with svc.db.write() as s:
        st = s.get(Staff, staff_id)
        if st is None or not st.active:
            raise NotFound("no such account")
        username = st.username
        ok = _plain(current or "") and org.authenticate(s, st.username, current or "", now) is not None
        if not ok:
            audit.record(s, audit.PASSWORD_CHANGE_FAILURE, actor=staff_id, subject=staff_id, ip=ip, at=now,
                         detail={"reason": "wrong_current_password"})
    if not ok:  # committed: the failure counts and is logged
        raise invalid("current_password", "the current password is wrong")
    with svc.db.write() as s:
        st = s.get(Staff, staff_id)
        try:
            policy.check(new, username, previous=policy.recent_hashes(s, st, rules), policy=rules)
        except policy.PolicyError as e:
            audit.record(s, audit.PASSWORD_CHANGE_FAILURE, actor=staff_id, subject=staff_id, ip=ip, at=now,
                         detail={"reason": f"policy_{e.reason}"})
            failure = e
        else:
            failure = None
            forced = bool(st.must_change_password)
            policy.store_new(s, st, new, must_change=False, now=now, policy=rules)
            audit.record(s, audit.PASSWORD_CHANGE, actor=staff_id, subject=staff_id, ip=ip, at=now,
                         detail={"forced": forced} if forced else None)
            return sessions.end_all_in(s, staff_id, "password_change", actor=staff_id, keep=keep_session)
    raise policy_invalid(failure)


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
    return _names(svc, OrgUnit.code, OrgUnit.name, codes)


def staff_names(svc, ids) -> dict[str, str]:
    """{staff id: name} for the given ids (unknown ids are left out)."""
    return _names(svc, Staff.id, Staff.name, ids)


def _names(svc, key, name, keys) -> dict[str, str]:
    keys = [k for k in set(keys) if k]
    if not keys:
        return {}
    with svc.db.read() as s:
        return dict(s.execute(select(key, name).where(key.in_(keys))).all())


def staff_id_for(svc, text: str) -> str | None:
    """The staff id for a username or an id as typed into a filter (None if neither matches)."""
    text = (text or "").strip()
    if not text or not _plain(text):
        return None
    with svc.db.read() as s:
        st = org.staff_by_username(s, text) or s.get(Staff, text)
        return st.id if st is not None else None
