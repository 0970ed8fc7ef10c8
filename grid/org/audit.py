"""The security audit log: an append-only record of sign-ins, failures, throttled attempts,
sign-outs, password changes and sessions ended, kept for GRIDFLOW_AUDIT_RETENTION_DAYS
(default 365, at least 180 as 等保 asks), then purged.

`record` writes inside the caller's transaction, so an event and what it reports commit
together. The client address comes from the caller, else from `origin` (the web layer sets it
for each request, so domain functions need no request object). Details are scrubbed: keys that
name passwords, ID numbers or phones are dropped, and values that look like a mainland phone or
ID number are masked, whatever the caller passes.
"""
from __future__ import annotations

import re
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import delete, func, or_, select
from sqlalchemy.engine import Connection
from sqlalchemy.orm import Session

from engine import audit_chain, clock
from engine.models import ChainHead
from grid.config import env_number
from grid.org.models import OrgUnit, SecurityEvent, StaffRole

SIGN_IN = "sign_in"
SIGN_OUT = "sign_out"
SIGN_IN_FAILURE = "sign_in_failure"
THROTTLED = "sign_in_throttled"
PASSWORD_CHANGE = "password_change"
PASSWORD_CHANGE_FAILURE = "password_change_failure"
SESSION_ENDED = "session_ended"
# administrators' changes (grid.org.admin, grid.org.importer): detail holds "before" and "after"
ROLE_ASSIGNED = "role_assigned"
ROLE_REMOVED = "role_removed"
PASSWORD_RESET = "password_reset"
UNLOCKED = "account_unlocked"
ACCOUNT_CREATED = "account_created"
ACCOUNT_EDITED = "account_edited"
ACCOUNT_DEACTIVATED = "account_deactivated"
ACCOUNT_MOVED = "account_moved"
TASKS_HANDED_OVER = "tasks_handed_over"
UNIT_ADDED = "unit_added"
UNIT_RENAMED = "unit_renamed"
UNIT_RETIRED = "unit_retired"
ORG_IMPORT = "org_import"
ACCESS_DENIED = "access_denied"
REVEAL = "personal_data_revealed"  # an ID number or phone shown in full (granted or refused)
EXACT_SEARCH = "exact_search"  # a search by a full ID number or phone (grid.registry.pages)
EXPORT = "export"  # an unmasked export (registry, cases)
API_CALL = "api_call"  # an API client's call (grid.org.api_clients)
AUDIT_PURGED = "audit_purged"  # the retention purge removed the oldest events (the chain's anchor)
ADMIN_KINDS = (ROLE_ASSIGNED, ROLE_REMOVED, PASSWORD_RESET, UNLOCKED, ACCOUNT_CREATED, ACCOUNT_EDITED,
               ACCOUNT_DEACTIVATED, ACCOUNT_MOVED, TASKS_HANDED_OVER, UNIT_ADDED, UNIT_RENAMED, UNIT_RETIRED,
               ORG_IMPORT, ACCESS_DENIED)
KINDS = (SIGN_IN, SIGN_OUT, SIGN_IN_FAILURE, THROTTLED, PASSWORD_CHANGE, PASSWORD_CHANGE_FAILURE, SESSION_ENDED,
         *ADMIN_KINDS, REVEAL, EXACT_SEARCH, EXPORT, API_CALL, AUDIT_PURGED)
CHAIN = "security"

RETENTION_DEFAULT = 365
RETENTION_MIN = 180  # 等保 2.0: audit records kept at least six months
PER_PAGE_MAX = 200

origin: ContextVar[str | None] = ContextVar("gridflow_audit_origin", default=None)
"""The client address of the request being served (set by the web layer), used when `record`
is not given one."""

_SECRET_KEY = re.compile(r"pass|pwd|secret|token|phone|mobile|tel|id_?(card|no|number)|identity|身份证|手机|电话|密码",
                         re.IGNORECASE)
_PHONE = re.compile(r"(?<!\d)1[3-9]\d{9}(?!\d)")
_ID_NUMBER = re.compile(r"(?<![0-9A-Za-z])\d{17}[\dXx](?![0-9A-Za-z])")


denied: ContextVar[bool] = ContextVar("gridflow_audit_denied", default=False)
"""Whether an access_denial was recorded while serving this request (the web layer resets it per
request and records a refusal itself only when no service did)."""


@contextmanager
def client(ip: str | None) -> Iterator[None]:
    """Within the block, events without an explicit ip carry this one."""
    token = origin.set(ip)
    try:
        yield
    finally:
        origin.reset(token)


def retention_days() -> int:
    """GRIDFLOW_AUDIT_RETENTION_DAYS (default 365; fewer than 180 is a configuration error).

    Read here until grid/config.py carries it as a Settings field."""
    return int(env_number("GRIDFLOW_AUDIT_RETENTION_DAYS", RETENTION_DEFAULT, int, RETENTION_MIN))


def _scrub(value):
    if isinstance(value, dict):
        return {str(k): _scrub(v) for k, v in value.items() if not _SECRET_KEY.search(str(k))}
    if isinstance(value, (list, tuple)):
        return [_scrub(v) for v in value]
    if isinstance(value, str):
        return _PHONE.sub("1**********", _ID_NUMBER.sub("******************", value))[:500]
    if value is None or isinstance(value, (bool, int, float)):
        return value
    return _scrub(str(value))


def home_unit(s: Session, staff_id: str | None) -> str | None:
    """The unit of a person's first active role: where their events are filed for unit queries."""
    if not staff_id:
        return None
    return s.scalar(select(StaffRole.unit_code).where(StaffRole.staff_id == staff_id, StaffRole.active.is_(True))
                    .order_by(StaffRole.id).limit(1))


def record(s: Session, kind: str, *, actor: str | None = None, subject: str | None = None,
           unit: str | None = None, ip: str | None = None, detail: dict | None = None,
           at: datetime | None = None) -> SecurityEvent:
    """Append one event in the caller's transaction. `unit` defaults to the subject's (else the
    actor's) home unit; `ip` to the request's; `detail` is scrubbed of secrets."""
    if kind not in KINDS:
        raise ValueError(f"unknown security event kind {kind!r}")
    ev = SecurityEvent(at=at or clock.now(), kind=kind, actor_staff_id=actor, subject_staff_id=subject,
                       unit_code=unit or home_unit(s, subject or actor),
                       ip=(ip if ip is not None else origin.get() or None), detail=_scrub(detail or {}))
    if ev.ip:
        ev.ip = ev.ip[:64]
    if kind == ACCESS_DENIED:
        denied.set(True)
    s.add(ev)
    s.flush()
    return ev


def log(svc, kind: str, **kw) -> None:
    """`record` in a transaction of its own (for events that belong to no other write)."""
    with svc.db.write() as s:
        record(s, kind, **kw)


@dataclass(frozen=True)
class EventView:
    id: int
    at: datetime
    kind: str
    actor: str | None
    subject: str | None
    unit: str | None
    ip: str | None
    detail: dict


@dataclass(frozen=True)
class EventPage:
    events: list[EventView]
    total: int
    page: int
    per_page: int

    @property
    def pages(self) -> int:
        return max(1, -(-self.total // self.per_page))


def query(svc, *, person: str | None = None, unit: str | None = None, within: bool = True,
          kind: Iterable[str] | str | None = None, since: datetime | None = None, until: datetime | None = None,
          paths: list[str] | None = None, page: int = 1, per_page: int = 50) -> EventPage:
    """Events, newest first, for an audit page: `person` as actor or subject; `unit` (with
    everything below it unless `within=False`); `kind` (one or several); `since` <= at < `until`; `paths` limits
    to a viewer's jurisdiction (unit paths, as `org.jurisdiction_paths` gives). 1-based paging."""
    from grid.org import service as org

    per_page = max(1, min(int(per_page), PER_PAGE_MAX))
    page = max(1, int(page))
    conds = []
    if person:
        conds.append(or_(SecurityEvent.actor_staff_id == person, SecurityEvent.subject_staff_id == person))
    if kind:
        conds.append(SecurityEvent.kind.in_([kind] if isinstance(kind, str) else list(kind)))
    if since is not None:
        conds.append(SecurityEvent.at >= since)
    if until is not None:
        conds.append(SecurityEvent.at < until)
    with svc.db.read() as s:
        if unit:
            row = s.get(OrgUnit, unit)
            if row is None or not within:
                conds.append(SecurityEvent.unit_code == unit)
            else:
                conds.append(org.jurisdiction_clause([row.path], SecurityEvent.unit_code))
        if paths is not None:
            conds.append(org.jurisdiction_clause(paths, SecurityEvent.unit_code))
        total = s.scalar(select(func.count()).select_from(SecurityEvent).where(*conds)) or 0
        rows = s.scalars(select(SecurityEvent).where(*conds).order_by(SecurityEvent.at.desc(), SecurityEvent.id.desc())
                         .offset((page - 1) * per_page).limit(per_page)).all()
    return EventPage([EventView(r.id, r.at, r.kind, r.actor_staff_id, r.subject_staff_id, r.unit_code, r.ip,
                                dict(r.detail or {})) for r in rows], total, page, per_page)


def purge(svc, now: datetime | None = None, days: int | None = None) -> int:
    """Delete events older than the retention period; the number deleted. Refuses a period
    under RETENTION_MIN days.

    What goes is a prefix of the chain (every event before the first one still inside the
    period), so what stays verifies from the anchor: the chain head keeps the last removed
    event's seq and hash, and an `audit_purged` event in the chain records them too."""
    days = retention_days() if days is None else int(days)
    if days < RETENTION_MIN:
        raise ValueError(f"audit retention must be at least {RETENTION_MIN} days, not {days}")
    cutoff = (now or clock.now()) - timedelta(days=days)
    with svc.db.write() as s:
        conn = s.connection()
        head_seq, _ = audit_chain.lock_head(conn, CHAIN)
        keep_from = s.scalar(select(func.min(SecurityEvent.seq)).where(SecurityEvent.at >= cutoff))
        through = (keep_from - 1) if keep_from is not None else head_seq
        anchor = s.scalar(select(SecurityEvent.hash).where(SecurityEvent.seq == through)) if through else None
        n = s.execute(delete(SecurityEvent).where(or_(SecurityEvent.seq <= through,
                                                     SecurityEvent.seq.is_(None) & (SecurityEvent.at < cutoff))))
        n = n.rowcount or 0
        if n:
            audit_chain.set_anchor(conn, CHAIN, through, anchor)
            record(s, AUDIT_PURGED, detail={"deleted": n, "through_seq": through, "anchor_hash": anchor,
                                            "older_than": cutoff.isoformat()})
        return n


# ---- the chain -----------------------------------------------------------------------------------
def content(seq: int, at, kind, actor, subject, unit, ip, detail) -> bytes:
    """The canonical content of one event, as its chain hash covers it."""
    return audit_chain.canonical([seq, audit_chain.at_text(at), kind, actor, subject, unit, ip,
                                  {} if detail is None else detail])


def seal(conn: Connection, ev: SecurityEvent) -> None:
    """Give a new event its place in the chain (called for every insert, see grid.org.models)."""
    if ev.detail is None:
        ev.detail = {}
    [(ev.seq, ev.hash)] = audit_chain.advance(conn, CHAIN, [lambda n: content(
        n, ev.at, ev.kind, ev.actor_staff_id, ev.subject_staff_id, ev.unit_code, ev.ip, ev.detail)])


def _rows(svc, start: int, chunk: int, progress, total: int):
    cols = (SecurityEvent.id, SecurityEvent.seq, SecurityEvent.hash, SecurityEvent.at, SecurityEvent.kind,
            SecurityEvent.actor_staff_id, SecurityEvent.subject_staff_id, SecurityEvent.unit_code,
            SecurityEvent.ip, SecurityEvent.detail)
    last, done = start - 1, 0
    while True:
        with svc.db.read() as s:
            rows = s.execute(select(*cols).where(SecurityEvent.seq > last).order_by(SecurityEvent.seq)
                             .limit(chunk)).all()
        if not rows:
            return
        yield from rows
        done += len(rows)
        last = rows[-1].seq
        if progress:
            progress(done, max(total, done), f"seq {last}")


def verify_all(svc, progress_for=None) -> list:
    """Every chain: the engine's per-instance event chains, then the security chain; the breaks found.
    `progress_for(name)` gives a progress callback per chain (or None)."""
    from contextlib import contextmanager

    @contextmanager
    def conn():
        with svc.db.engine.connect() as c:
            yield c

    pick = progress_for or (lambda name: None)
    problems = list(audit_chain.verify_instances(conn, progress=pick("instances")))
    sec = verify(svc, progress=pick("security"))
    if sec is not None:
        problems.append(sec)
    return problems


def verify(svc, progress=None, chunk: int = 5000) -> audit_chain.Problem | None:
    """Walk the security chain from its anchor; the first row changed, removed or inserted."""
    def problem(row_id, seq, what, table="security_event"):
        return audit_chain.Problem(table, row_id, CHAIN, seq, what)

    with svc.db.read() as s:
        head = s.get(ChainHead, CHAIN)
        head_seq, anchor_seq, anchor_hash = (head.seq, head.anchor_seq, head.anchor_hash) if head else (0, 0, None)
        stray = s.scalar(select(func.min(SecurityEvent.id)).where(SecurityEvent.seq.is_(None)))
        total = s.scalar(select(func.count()).select_from(SecurityEvent)) or 0
        if anchor_seq:
            purges = s.scalars(select(SecurityEvent.detail).where(SecurityEvent.kind == AUDIT_PURGED)
                               .order_by(SecurityEvent.seq.desc())).all()
            if not any((d or {}).get("through_seq") == anchor_seq and (d or {}).get("anchor_hash") == anchor_hash
                       for d in purges):
                return problem(None, anchor_seq, "removed: the chain's anchor matches no recorded purge",
                               "audit_chain_head")
        below = s.scalar(select(func.max(SecurityEvent.id)).where(SecurityEvent.seq <= anchor_seq)) \
            if anchor_seq else None
    if stray is not None:
        return problem(stray, None, "inserted (not in the chain)")
    if below is not None:
        return problem(below, None, "inserted (before the chain's anchor)")

    class _R:
        __slots__ = ("id", "seq", "hash", "row")

        def __init__(self, r):
            self.id, self.seq, self.hash, self.row = r.id, r.seq, r.hash, r

    return audit_chain.walk(
        (_R(r) for r in _rows(svc, anchor_seq + 1, chunk, progress, total)), table="security_event", chain=CHAIN,
        content=lambda e, n: content(n, e.row.at, e.row.kind, e.row.actor_staff_id, e.row.subject_staff_id,
                                  e.row.unit_code, e.row.ip, e.row.detail),
        head_seq=head_seq, start_seq=anchor_seq + 1, start_hash=anchor_hash)
