"""Web sessions kept in the database, so that ending one takes effect at once on every node.

The browser's cookie holds only a random token; the `web_session` row holds its SHA-256, the
session's data and when it was created and last seen. A session dies when idle longer than
GRIDFLOW_SESSION_IDLE_MINUTES or older than GRIDFLOW_SESSION_HOURS (see `Limits`), or when it is
ended: sign-out, "end this session" on the settings page, a password change or reset,
deactivation or an administrator's "sign out everywhere" (`end_all`). Ending deletes the row.
"""
from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import delete, or_, select, update
from sqlalchemy.orm import Session

from engine import clock
from grid.org import audit
from grid.org.models import WebSession

TOUCH_EVERY = timedelta(seconds=30)  # last_seen is written at most this often per session


@dataclass(frozen=True)
class Limits:
    idle: timedelta
    lifetime: timedelta

    @classmethod
    def of(cls, svc) -> Limits:
        settings = svc.settings
        return cls(timedelta(minutes=float(settings.session_idle_minutes)), settings.session_lifetime)


@dataclass(frozen=True)
class Loaded:
    """A live session as read for a request."""

    id: int
    staff_id: str | None
    data: str
    created_at: datetime
    last_seen: datetime


@dataclass(frozen=True)
class SessionView:
    """A session as its owner sees it on the settings page."""

    id: int
    created_at: datetime
    last_seen: datetime
    user_agent: str | None
    ip: str | None


def token_hash(token: str) -> str:
    """What the table stores of a cookie token: a leaked table opens no session."""
    return hashlib.sha256(token.encode("utf-8", "surrogateescape")).hexdigest()


def _expired(row: WebSession, now: datetime, limits: Limits) -> bool:
    return now - row.last_seen > limits.idle or now - row.created_at > limits.lifetime


def create(svc, staff_id: str | None, *, data: str = "{}", user_agent: str | None = None, ip: str | None = None,
           limits: Limits | None = None, now: datetime | None = None) -> str:
    """Start a session; returns the token for the cookie (never stored). A sign-in also clears
    expired sessions, so the table stays small without a job of its own."""
    now = now or clock.now()
    token = secrets.token_urlsafe(32)
    with svc.db.write() as s:
        s.add(WebSession(token_hash=token_hash(token), staff_id=staff_id, data=data, created_at=now, last_seen=now,
                         user_agent=(user_agent or None) and user_agent[:300], ip=(ip or None) and ip[:64]))
        if staff_id is not None:
            _purge(s, now, limits or Limits.of(svc))
    return token


def load(svc, token: str, *, limits: Limits | None = None, now: datetime | None = None) -> tuple[Loaded | None, bool]:
    """(the live session for this token or None, whether it just expired). An expired session
    is deleted; the flag is True only for a signed-in one, so the page can say why."""
    now = now or clock.now()
    limits = limits or Limits.of(svc)
    digest = token_hash(token)
    with svc.db.read() as s:
        row = s.scalar(select(WebSession).where(WebSession.token_hash == digest))
    if row is None:
        return None, False
    if _expired(row, now, limits):
        with svc.db.write() as s:
            s.execute(delete(WebSession).where(WebSession.id == row.id))
        return None, row.staff_id is not None
    return Loaded(row.id, row.staff_id, row.data, row.created_at, row.last_seen), False


def touch(svc, token: str, *, data: str | None = None, now: datetime | None = None) -> bool:
    """Mark the session seen now (and store new data if given); False if it was ended meanwhile
    (a concurrent request's save never brings an ended session back)."""
    values: dict = {"last_seen": now or clock.now()}
    if data is not None:
        values["data"] = data
    with svc.db.write() as s:
        done = s.execute(update(WebSession).where(WebSession.token_hash == token_hash(token)).values(**values))
        return bool(done.rowcount)


def end_token(svc, token: str) -> None:
    """End the session this cookie token names (its own sign-out, or a new id at sign-in)."""
    with svc.db.write() as s:
        s.execute(delete(WebSession).where(WebSession.token_hash == token_hash(token)))


def end(svc, session_id: int, reason: str, *, actor: str | None = None, staff_id: str | None = None) -> bool:
    """End one session (only if it belongs to `staff_id`, when given) and record who ended it."""
    with svc.db.write() as s:
        row = s.get(WebSession, session_id)
        if row is None or (staff_id is not None and row.staff_id != staff_id):
            return False
        owner = row.staff_id
        s.delete(row)
        if owner is not None:
            audit.record(s, audit.SESSION_ENDED, actor=actor, subject=owner, detail={"reason": reason, "count": 1})
    return True


def end_all_in(s: Session, staff_id: str, reason: str, *, actor: str | None = None,
               keep: int | None = None) -> int:
    """`end_all` inside the caller's transaction (e.g. with the password change it follows)."""
    q = delete(WebSession).where(WebSession.staff_id == staff_id)
    if keep is not None:
        q = q.where(WebSession.id != keep)
    count = s.execute(q).rowcount or 0
    if count:
        audit.record(s, audit.SESSION_ENDED, actor=actor, subject=staff_id, detail={"reason": reason, "count": count})
    return count


def end_all(svc, staff_id: str, reason: str, *, actor: str | None = None, keep: int | None = None) -> int:
    """End every session of a staff member (but `keep`, a session id), on every node at once:
    sign out everywhere, password change or reset, deactivation. The number ended."""
    with svc.db.write() as s:
        return end_all_in(s, staff_id, reason, actor=actor, keep=keep)


def active(svc, staff_id: str, *, limits: Limits | None = None, now: datetime | None = None) -> list[SessionView]:
    """A person's live sessions, most recently seen first."""
    now = now or clock.now()
    limits = limits or Limits.of(svc)
    with svc.db.read() as s:
        rows = s.scalars(select(WebSession).where(WebSession.staff_id == staff_id)
                         .order_by(WebSession.last_seen.desc(), WebSession.id.desc())).all()
    return [SessionView(r.id, r.created_at, r.last_seen, r.user_agent, r.ip) for r in rows
            if not _expired(r, now, limits)]


def _purge(s: Session, now: datetime, limits: Limits) -> int:
    return s.execute(delete(WebSession).where(or_(WebSession.last_seen < now - limits.idle,
                                                  WebSession.created_at < now - limits.lifetime))).rowcount or 0


def purge_expired(svc, *, limits: Limits | None = None, now: datetime | None = None) -> int:
    """Delete sessions past their idle or absolute limit; the number deleted."""
    with svc.db.write() as s:
        return _purge(s, now or clock.now(), limits or Limits.of(svc))
