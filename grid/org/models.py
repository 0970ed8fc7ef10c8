"""Organisation tables: the unit tree (city → county → township → village → grid), staff, roles,
web sign-in sessions and the security audit log.

`OrgUnit.path` is a materialised path of codes, each followed by '/', ending with the
unit's own code: a county reads '420600000000/420602000000/'. "X and everything below
it" is `path LIKE X.path || '%'` (see `grid.org.path_under`, which also picks a form
that SQLite can answer from the index).
"""
from __future__ import annotations

from datetime import date, datetime

from sqlalchemy import Boolean, Date, Float, ForeignKey, Index, Integer, String, Text, event
from sqlalchemy.orm import Mapped, mapped_column

from engine.db import Base, UTCDateTime
from engine.models import JSONType
from grid import crypto

LEVELS = ("city", "county", "township", "village", "grid")
"""Unit levels from the top; `OrgUnit.depth` is the 1-based position in this tuple."""

DEPARTMENT = "department"
"""The level of a functional department (职能部门: 城管, 住建, 司法所, 派出所 ...): a unit under a
township, county or city (`DEPARTMENT_PARENTS`), one deeper than its parent and outside the
escalation chain, with its own staff (role `department_handler`); the level's dispatcher sends it
a case, or a part of one (部门协同, grid.cases.departments)."""
DEPARTMENT_PARENTS = frozenset({"township", "county", "city"})

ROLES = ("grid_worker", "grid_head", "mediator", "dispatcher", "supervisor", "admin", "operator")
"""grid_worker 网格员, grid_head 网格长, mediator 调解人员, dispatcher 派件员, supervisor 督办, admin 系统管理员,
operator 热线/窗口受理员 (takes a resident's report at the 12345 hotline or a service window, web/intake.py)."""

ROLE_LEVELS: dict[str, frozenset[str]] = {
    "grid_worker": frozenset({"grid"}),
    "grid_head": frozenset({"village"}),
    "mediator": frozenset({"village", "township", "county", "city"}),
    "supervisor": frozenset({"village", "township", "county", "city"}),
    "dispatcher": frozenset({"township", "county", "city"}),
    "admin": frozenset({"city", "county"}),  # a county administrator manages the county (grid.org.admin)
    "operator": frozenset({"city", "county"}),  # the city's 12345 hotline, a county's hotline or service window
}
"""Which unit levels each role may be held on."""

ROLES = (*ROLES, "department_handler")  # 部门承办人: does what the level sends the department
ROLE_LEVELS["department_handler"] = frozenset({DEPARTMENT})


class OrgUnit(Base):
    """One node of the administrative tree; grids are the leaves."""

    __tablename__ = "org_unit"
    __table_args__ = (
        # varchar_pattern_ops lets PostgreSQL answer `path LIKE 'prefix%'` from the index
        # whatever the database collation; SQLite ignores the option.
        Index("ix_org_unit_path", "path", postgresql_ops={"path": "varchar_pattern_ops"}),
    )
    code: Mapped[str] = mapped_column(String(20), primary_key=True)
    name: Mapped[str] = mapped_column(String(100))
    level: Mapped[str] = mapped_column(String(10))  # city | county | township | village | grid
    depth: Mapped[int] = mapped_column(Integer)  # 1..5
    parent_code: Mapped[str | None] = mapped_column(ForeignKey("org_unit.code"), index=True)
    path: Mapped[str] = mapped_column(String(200))
    kind: Mapped[str] = mapped_column(String(20))  # 市/区/县/开发区/街道/镇/乡/社区/村/网格
    lat: Mapped[float | None] = mapped_column(Float)
    lng: Mapped[float | None] = mapped_column(Float)
    boundary: Mapped[str | None] = mapped_column(Text)  # a grid's outline, GeoJSON text (from the org import)
    retired_on: Mapped[date | None] = mapped_column(Date)  # set when retired: kept for history, no new roles

    def __repr__(self) -> str:
        return f"OrgUnit({self.code} {self.name} {self.level})"


class UnitBoundary(Base):
    """A unit's outline as GeoJSON text ([lng, lat], WGS-84), one row per unit: the demo city's
    generated tiling or a city's own; see grid.org.boundaries (reads fall back to `boundary`)."""

    __tablename__ = "unit_boundary"
    unit_code: Mapped[str] = mapped_column(String(20), primary_key=True)
    geojson: Mapped[str] = mapped_column(Text)  # a GeoJSON Polygon/MultiPolygon


class Staff(Base):
    """A login account for a person working in the system."""

    __tablename__ = "staff"
    id: Mapped[str] = mapped_column(String(20), primary_key=True)  # 'u000001'
    username: Mapped[str] = mapped_column(String(64), unique=True)
    name: Mapped[str] = mapped_column(String(50))
    phone: Mapped[str | None] = mapped_column(crypto.Sealed("staff.phone"))  # sealed at rest (grid.crypto)
    password_hash: Mapped[str] = mapped_column(String(255))
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    locale: Mapped[str] = mapped_column(String(10), default="zh_CN")
    failed_logins: Mapped[int] = mapped_column(Integer, default=0)
    locked_until: Mapped[datetime | None] = mapped_column(UTCDateTime)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    # set by an administrator's reset and for imported accounts: the next sign-in must choose a password
    must_change_password: Mapped[bool] = mapped_column(Boolean, default=False)
    password_changed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    title: Mapped[str | None] = mapped_column(String(50))  # 职务 as imported (roles carry their own)

    def __repr__(self) -> str:
        return f"Staff({self.id} {self.username} {self.name})"


class StaffRole(Base):
    """A role a person holds on a unit, for a period; only `active` rows count."""

    __tablename__ = "staff_role"
    __table_args__ = (Index("ix_staff_role_unit_role_active", "unit_code", "role", "active"),)
    id: Mapped[int] = mapped_column(primary_key=True)
    staff_id: Mapped[str] = mapped_column(ForeignKey("staff.id"), index=True)
    unit_code: Mapped[str] = mapped_column(ForeignKey("org_unit.code"))
    role: Mapped[str] = mapped_column(String(20))  # see ROLES
    title: Mapped[str | None] = mapped_column(String(50))  # e.g. 综治主任 for a mediator
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    since: Mapped[date] = mapped_column(Date)
    until: Mapped[date | None] = mapped_column(Date)

    def __repr__(self) -> str:
        state = "" if self.active else " ended"
        return f"StaffRole({self.staff_id} {self.role}@{self.unit_code}{state})"


class PasswordHistory(Base):
    """Hashes of a person's previous passwords (the newest few, see grid.org.policy), so a change
    cannot go back to one of them. Never the password itself."""

    __tablename__ = "password_history"
    id: Mapped[int] = mapped_column(primary_key=True)
    staff_id: Mapped[str] = mapped_column(ForeignKey("staff.id"), index=True)
    password_hash: Mapped[str] = mapped_column(String(255))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)


class WebSession(Base):
    """A browser session kept on the server (see grid.org.sessions): the cookie holds only a random
    token and this row only its SHA-256, so ending a session (deleting the row) ends it on every
    node at once. Anonymous sessions (the sign-in form's CSRF token) have no staff_id."""

    __tablename__ = "web_session"
    id: Mapped[int] = mapped_column(primary_key=True)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    staff_id: Mapped[str | None] = mapped_column(ForeignKey("staff.id"), index=True)
    data: Mapped[str] = mapped_column(Text, default="{}")  # Flask's tagged JSON of the session dict
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    last_seen: Mapped[datetime] = mapped_column(UTCDateTime, index=True)
    user_agent: Mapped[str | None] = mapped_column(String(300))
    ip: Mapped[str | None] = mapped_column(String(64))

    def __repr__(self) -> str:
        return f"WebSession({self.id} {self.staff_id or 'anonymous'})"


class SecurityEvent(Base):
    """One entry of the append-only security audit log (see grid.org.audit): sign-ins, failures,
    sign-outs, password changes, sessions ended. No foreign keys: an entry outlives what it names.
    `detail` never holds passwords, ID numbers or phone numbers."""

    __tablename__ = "security_event"
    __table_args__ = (
        Index("ix_security_event_kind_at", "kind", "at"),
        Index("ix_security_event_actor_at", "actor_staff_id", "at"),
        Index("ix_security_event_subject_at", "subject_staff_id", "at"),
        Index("ix_security_event_unit_at", "unit_code", "at"),
        Index("ix_security_event_seq", "seq", unique=True),
    )
    id: Mapped[int] = mapped_column(primary_key=True)
    at: Mapped[datetime] = mapped_column(UTCDateTime, index=True)
    kind: Mapped[str] = mapped_column(String(30))
    actor_staff_id: Mapped[str | None] = mapped_column(String(20))
    subject_staff_id: Mapped[str | None] = mapped_column(String(20))
    unit_code: Mapped[str | None] = mapped_column(String(20))
    ip: Mapped[str | None] = mapped_column(String(64))
    detail: Mapped[dict] = mapped_column(JSONType, default=dict)
    # the row's place in the `security` audit chain and its hash (grid.org.audit.seal)
    seq: Mapped[int | None] = mapped_column(Integer)
    hash: Mapped[str | None] = mapped_column(String(64))

    def __repr__(self) -> str:
        return f"SecurityEvent({self.id} {self.kind} {self.at:%Y-%m-%d %H:%M})"


@event.listens_for(SecurityEvent, "before_insert")
def _chain_security_event(mapper, connection, target: SecurityEvent) -> None:
    """Every security event joins the tamper-evident chain, however it is added."""
    from grid.org.audit import seal  # audit imports this module

    seal(connection, target)
