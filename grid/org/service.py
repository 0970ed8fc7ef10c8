"""Organisation services: the unit tree, staff and roles, jurisdiction, login.

Plain functions over a SQLAlchemy Session. Nothing here commits: callers run them inside
`Database.write()` (or `read()` for the queries).

Jurisdiction: a person sees every unit they hold an active role on, and everything below
it. With materialised paths that is "the unit's path starts with one of my units' paths",
which `path_under` turns into an index range on both SQLite and PostgreSQL.
"""
from __future__ import annotations

import re
from datetime import date, datetime, timedelta

from sqlalchemy import Boolean, ColumnElement, String, and_, false, func, literal, or_, select, tuple_
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.orm import Session, aliased
from sqlalchemy.sql.visitors import InternalTraversal

from engine import clock
from grid.org import request_memo
from grid.org.models import (
    DEPARTMENT,
    DEPARTMENT_PARENTS,
    LEVELS,
    ROLE_LEVELS,
    ROLES,
    OrgUnit,
    Staff,
    StaffRole,
)
from grid.org.passwords import hash_password, verify_password

ESCALATION_LEVELS = ["village", "township", "county", "city"]
# Per-account throttle, not a lockout: after LOCK_AFTER failures in a row the account refuses
# sign-ins for LOCK_BASE, doubling with every further LOCK_AFTER failures but never longer than
# LOCK_MAX, so anyone who can send wrong passwords can delay the owner, never shut her out for
# long; an administrator can lift it at once with `unlock`. Per-client limits are Flask-Limiter's.
LOCK_AFTER = 5
LOCK_BASE = timedelta(minutes=15)
LOCK_MAX = timedelta(hours=1)

_PATH_RE = re.compile(r"^(?:\d+/)+$")


class OrgError(ValueError):
    """A request the organisation model cannot satisfy (unknown unit, role on a wrong level...)."""


# ---------------------------------------------------------------------------------------------
# Path prefix matching


class path_under(ColumnElement[bool]):
    """SQL condition "`column` starts with `prefix`", where prefix is a path ending in '/'.

    `prefix` may be a Python string (bound as a parameter) or a column expression.
    PostgreSQL renders `column LIKE prefix || '%'` (served by the varchar_pattern_ops index);
    SQLite renders the equivalent range `column >= prefix AND column < prefix[:-1] || '0'`,
    because SQLite's LIKE only uses an index on NOCASE columns. The two are the same test:
    paths hold only digits and '/', and '0' is the character right after '/'.
    """

    __visit_name__ = "path_under"
    inherit_cache = True
    type = Boolean()
    _is_implicitly_boolean = True  # a predicate: no "= 1" appended on SQLite
    _traverse_internals = [
        ("column", InternalTraversal.dp_clauseelement),
        ("prefix", InternalTraversal.dp_clauseelement),
    ]

    def __init__(self, column, prefix):
        if isinstance(prefix, str):
            if not _PATH_RE.match(prefix):
                raise OrgError(f"not a unit path: {prefix!r}")
            prefix = literal(prefix, String())
        self.column = column
        self.prefix = prefix


@compiles(path_under)
def _path_under_default(element: path_under, compiler, **kw) -> str:
    return compiler.process(element.column.startswith(element.prefix), **kw)


@compiles(path_under, "sqlite")
def _path_under_sqlite(element: path_under, compiler, **kw) -> str:
    col, pre = element.column, element.prefix
    upper = func.substr(pre, 1, func.length(pre) - 1).concat("0")
    return compiler.process(and_(col >= pre, col < upper).self_group(), **kw)


# ---------------------------------------------------------------------------------------------
# Units


def get_unit(s: Session, code: str) -> OrgUnit | None:
    """The unit with this code, or None."""
    return s.get(OrgUnit, code)


def _unit(s: Session, code: str) -> OrgUnit:
    unit = s.get(OrgUnit, code)
    if unit is None:
        raise OrgError(f"unknown unit {code}")
    return unit


def children(s: Session, code: str) -> list[OrgUnit]:
    """The direct children of a unit, by code."""
    return list(s.scalars(select(OrgUnit).where(OrgUnit.parent_code == code).order_by(OrgUnit.code)))


def subtree(s: Session, code: str, level: str | None = None) -> list[OrgUnit]:
    """The unit and everything below it (optionally only one level), by path."""
    unit = _unit(s, code)
    q = select(OrgUnit).where(path_under(OrgUnit.path, unit.path))
    if level:
        q = q.where(OrgUnit.level == level)
    return list(s.scalars(q.order_by(OrgUnit.path)))


def path_codes(path: str) -> list[str]:
    """'a/b/c/' -> ['a', 'b', 'c'] (top first)."""
    return [c for c in path.split("/") if c]


def add_unit(
    s: Session,
    code: str,
    name: str,
    level: str,
    kind: str,
    parent_code: str | None = None,
    lat: float | None = None,
    lng: float | None = None,
) -> OrgUnit:
    """Create a unit under `parent_code`, deriving depth and path (a department: under a township,
    county or city, one deeper than its parent)."""
    if level == DEPARTMENT:
        parent = _unit(s, parent_code) if parent_code else None
        if parent is None or parent.level not in DEPARTMENT_PARENTS:
            raise OrgError("a department sits under a township, county or city")
        unit = OrgUnit(code=code, name=name, level=level, depth=parent.depth + 1, parent_code=parent_code,
                       path=f"{parent.path}{code}/", kind=kind, lat=lat, lng=lng)
        s.add(unit)
        s.flush()
        return unit
    if level not in LEVELS:
        raise OrgError(f"unknown level {level!r}")
    depth = LEVELS.index(level) + 1
    if parent_code is None:
        if depth != 1:
            raise OrgError(f"a {level} needs a parent")
        path = f"{code}/"
    else:
        parent = _unit(s, parent_code)
        if parent.depth != depth - 1:
            raise OrgError(f"a {level} cannot sit under a {parent.level}")
        path = f"{parent.path}{code}/"
    unit = OrgUnit(code=code, name=name, level=level, depth=depth, parent_code=parent_code,
                   path=path, kind=kind, lat=lat, lng=lng)
    s.add(unit)
    s.flush()
    return unit


def chain_up(s: Session, grid_code: str) -> list[OrgUnit]:
    """The escalation chain, bottom first: for a grid its village, township, county and city.

    For a unit that is not a grid the chain starts at the unit itself.
    """
    unit = _unit(s, grid_code)
    codes = path_codes(unit.path)
    if unit.level == "grid":
        codes = codes[:-1]
    units = s.scalars(select(OrgUnit).where(OrgUnit.code.in_(codes)))
    return sorted(units, key=lambda u: -u.depth)


def escalation_data(s: Session, grid_code: str) -> dict:
    """Process variables for escalation: the levels and the unit code at each, bottom first."""
    chain = chain_up(s, grid_code)
    return {
        "levels": [u.level for u in chain],
        "level_units": [u.code for u in chain],
        "grid_unit": grid_code,
    }


# ---------------------------------------------------------------------------------------------
# Staff and roles


def next_staff_id(s: Session) -> str:
    """The next free id of the form 'u000001'."""
    last = s.scalar(select(func.max(Staff.id)).where(Staff.id.like("u%")))
    n = int(last[1:]) + 1 if last and last[1:].isdigit() else 1
    return f"u{n:06d}"


def create_staff(
    s: Session,
    username: str,
    name: str,
    *,
    password: str | None = None,
    password_hash: str | None = None,
    phone: str | None = None,
    locale: str = "zh_CN",
    staff_id: str | None = None,
    now: datetime | None = None,
) -> Staff:
    """Create an account; give either a password (hashed here) or a ready hash."""
    if (password is None) == (password_hash is None):
        raise OrgError("give exactly one of password and password_hash")
    staff = Staff(
        id=staff_id or next_staff_id(s),
        username=username.strip().lower(),
        name=name,
        phone=phone,
        password_hash=password_hash or hash_password(password),
        active=True,
        locale=locale,
        failed_logins=0,
        locked_until=None,
        created_at=now or clock.now(),
    )
    s.add(staff)
    s.flush()
    return staff


def get_staff(s: Session, staff_id: str) -> Staff | None:
    return s.get(Staff, staff_id)


def staff_by_username(s: Session, username: str) -> Staff | None:
    return s.scalar(select(Staff).where(Staff.username == username.strip().lower()))


def _today() -> date:
    return clock.local(clock.now()).date()


def assign_role(
    s: Session,
    staff_id: str,
    unit_code: str,
    role: str,
    *,
    title: str | None = None,
    since: date | None = None,
) -> StaffRole:
    """Give a person a role on a unit, checking the role may sit on that level."""
    if role not in ROLES:
        raise OrgError(f"unknown role {role!r}")
    unit = _unit(s, unit_code)
    if unit.level not in ROLE_LEVELS[role]:
        raise OrgError(f"{role} cannot be held on a {unit.level}")
    if s.get(Staff, staff_id) is None:
        raise OrgError(f"unknown staff {staff_id}")
    r = StaffRole(staff_id=staff_id, unit_code=unit_code, role=role, title=title,
                  active=True, since=since or _today(), until=None)
    s.add(r)
    s.flush()
    return r


def end_role(s: Session, role: StaffRole, on: date | None = None) -> None:
    """End a role: it keeps its history row but stops counting."""
    role.active = False
    role.until = on or _today()
    s.flush()


def move_grid_worker(s: Session, grid_code: str, new_staff_id: str, on: date | None = None) -> StaffRole:
    """Hand a grid to another worker: end the current grid-worker role(s) there, start the new one."""
    on = on or _today()
    current = s.scalars(
        select(StaffRole).where(
            StaffRole.unit_code == grid_code, StaffRole.role == "grid_worker", StaffRole.active.is_(True)
        )
    ).all()
    for r in current:
        end_role(s, r, on)
    return assign_role(s, new_staff_id, grid_code, "grid_worker", since=on)


def staff_for(s: Session, unit_code: str, role: str) -> list[Staff]:
    """Active people holding an active `role` on the unit, oldest assignment first."""
    q = (
        select(Staff)
        .join(StaffRole, StaffRole.staff_id == Staff.id)
        .where(
            StaffRole.unit_code == unit_code,
            StaffRole.role == role,
            StaffRole.active.is_(True),
            Staff.active.is_(True),
        )
        .order_by(StaffRole.since, StaffRole.id)
    )
    return list(s.scalars(q))


def pool_names(s: Session, pairs: set[tuple[str, str]]) -> dict[tuple[str, str], list[str]]:
    """The active holders' names of each (unit, role) pool, in `staff_for`'s order: one statement
    for all the pools a list page shows, not one per pool."""
    out: dict[tuple[str, str], list[str]] = {p: [] for p in pairs}
    if not pairs:
        return out
    q = (select(StaffRole.unit_code, StaffRole.role, Staff.name).join(Staff, Staff.id == StaffRole.staff_id)
         .where(tuple_(StaffRole.unit_code, StaffRole.role).in_(sorted(pairs)), StaffRole.active.is_(True),
                Staff.active.is_(True))
         .order_by(StaffRole.since, StaffRole.id))
    for unit, role, name in s.execute(q):
        out[(unit, role)].append(name)
    return out


def roles_of(s: Session, staff_id: str, active_only: bool = True) -> list[StaffRole]:
    """A person's roles (active ones unless asked otherwise), in assignment order."""
    q = select(StaffRole).where(StaffRole.staff_id == staff_id)
    if active_only:
        q = q.where(StaffRole.active.is_(True))
    return request_memo.remember(s, ("roles_of", staff_id, active_only),
                                 lambda: list(s.scalars(q.order_by(StaffRole.id))), request_memo.attached(s))


def remember_roles(s: Session, staff_id: str, roles: list[StaffRole], paths: list[str]) -> None:
    """Seed the request memo with what the sign-in check just read (the person's active roles and
    their units' paths), so `roles_of` and `jurisdiction_paths` ask no more in this request."""
    request_memo.remember(s, ("roles_of", staff_id, True), lambda: list(roles))
    request_memo.remember(s, ("jurisdiction_paths", staff_id), lambda: _outermost(list(paths)))


def current_grid_worker(s: Session, grid_code: str) -> Staff | None:
    """The grid's worker (the most recently assigned one if several are active)."""
    workers = staff_for(s, grid_code, "grid_worker")
    return workers[-1] if workers else None


def holds_role(s: Session, staff_id: str, unit_code: str, role: str) -> bool:
    """Whether the person holds `role` on exactly this unit right now."""
    q = select(StaffRole.id).where(
        StaffRole.staff_id == staff_id,
        StaffRole.unit_code == unit_code,
        StaffRole.role == role,
        StaffRole.active.is_(True),
    )
    return s.scalar(q.limit(1)) is not None


# ---------------------------------------------------------------------------------------------
# Jurisdiction


def _outermost(paths: list[str]) -> list[str]:
    """Drop paths that lie under another path in the list."""
    kept: list[str] = []
    for p in sorted(set(paths)):
        if not any(p.startswith(k) for k in kept):
            kept.append(p)
    return kept


def jurisdiction_paths(s: Session, staff_id: str) -> list[str]:
    """Paths of the units the person holds active roles on (outermost only, sorted)."""
    q = (
        select(OrgUnit.path)
        .join(StaffRole, StaffRole.unit_code == OrgUnit.code)
        .where(StaffRole.staff_id == staff_id, StaffRole.active.is_(True))
    )
    return request_memo.remember(s, ("jurisdiction_paths", staff_id), lambda: _outermost(list(s.scalars(q))), list)


def in_jurisdiction(s: Session, staff_id: str, unit_code: str) -> bool:
    """Whether the unit is one the person holds an active role on, or lies below one.

    One query: the person's roles (staff_id index) joined to their units and to the target
    unit (both by primary key), comparing paths.
    """
    mine = aliased(OrgUnit)
    target = aliased(OrgUnit)
    q = (
        select(StaffRole.id)
        .join(mine, mine.code == StaffRole.unit_code)
        .join(target, target.code == unit_code)
        .where(StaffRole.staff_id == staff_id, StaffRole.active.is_(True), path_under(target.path, mine.path))
        .limit(1)
    )
    return s.scalar(q) is not None


def paths_condition(paths: list[str], path_column=OrgUnit.path) -> ColumnElement[bool]:
    """Condition: `path_column` lies under any of `paths` (false for no paths)."""
    paths = _outermost(paths)
    if not paths:
        return false()
    return or_(*[path_under(path_column, p) for p in paths])


def jurisdiction_clause(paths: list[str], unit_column) -> ColumnElement[bool]:
    """Condition: `unit_column` (a unit code) is in the jurisdiction given by `paths`."""
    if not paths:
        return false()
    return unit_column.in_(select(OrgUnit.code).where(paths_condition(paths)))


def jurisdiction_filter(s: Session, staff_id: str, unit_column) -> ColumnElement[bool]:
    """Condition: `unit_column` is in this person's jurisdiction, e.g.
    `select(WorkItem).where(jurisdiction_filter(s, uid, WorkItem.unit_id))`."""
    return jurisdiction_clause(jurisdiction_paths(s, staff_id), unit_column)


# ---------------------------------------------------------------------------------------------
# Login


def locked_for(staff: Staff, now: datetime) -> timedelta | None:
    """How much longer the account stays locked, or None."""
    if staff.locked_until is not None and staff.locked_until > now:
        return staff.locked_until - now
    return None


def _plain_username(username: str) -> bool:
    """Whether a username can be looked up at all: no NUL or other control characters (which
    no account has, and which PostgreSQL refuses in a query parameter)."""
    return not any(ord(ch) < 32 or 127 <= ord(ch) < 160 for ch in username)


def authenticate(s: Session, username: str, password: str, now: datetime) -> Staff | None:
    """Check a login; returns the person or None.

    Every attempt costs exactly one password-hash verification and gives the same None,
    whether the username is unknown, the account disabled or throttled, or the password
    empty or wrong: neither timing nor answer tells which usernames exist. After LOCK_AFTER
    failures in a row the account is throttled (see LOCK_BASE, LOCK_MAX); attempts while
    throttled are refused, even with the right password, and not counted. Success resets the
    counter. Changes the Staff row, so run it in a write session.
    """
    if now.tzinfo is None:
        raise ValueError("authenticate needs an aware datetime")
    username = username or ""
    staff = staff_by_username(s, username) if _plain_username(username) else None
    if staff is not None and not staff.active:
        staff = None
    ok = verify_password(staff.password_hash if staff is not None else None, password)
    if staff is None or locked_for(staff, now):
        return None
    if ok:
        staff.failed_logins = 0
        staff.locked_until = None
        s.flush()
        return staff
    staff.failed_logins = (staff.failed_logins or 0) + 1
    if staff.failed_logins % LOCK_AFTER == 0:
        rounds = staff.failed_logins // LOCK_AFTER
        staff.locked_until = now + min(LOCK_BASE * 2 ** min(rounds - 1, 16), LOCK_MAX)
    s.flush()
    return None


def unlock(s: Session, staff_id: str) -> None:
    """Lift a sign-in throttle and reset the failure count (an administrator's action, e.g.
    when someone keeps a colleague's account throttled with wrong passwords)."""
    staff = s.get(Staff, staff_id)
    if staff is None:
        raise OrgError(f"unknown staff {staff_id}")
    staff.failed_logins = 0
    staff.locked_until = None
    s.flush()


def set_password(s: Session, staff_id: str, password: str) -> None:
    """Store a new password and clear any lockout."""
    staff = s.get(Staff, staff_id)
    if staff is None:
        raise OrgError(f"unknown staff {staff_id}")
    staff.password_hash = hash_password(password)
    staff.failed_logins = 0
    staff.locked_until = None
    s.flush()
