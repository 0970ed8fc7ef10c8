"""API clients: machine credentials for /api/v1 and Open311 POSTs, created by an administrator.

A client has a name, scopes, a jurisdiction (a unit: it sees that unit's subtree) and one
secret, shown once at creation as the bearer token `gf_<id>_<secret>`; only the SHA-256 of the
secret is stored (the secret is 32 random bytes, so a fast hash is enough and a lookup is one
row by id). Revoking sets `revoked_at`: the token stops working on every worker at once.

Every call is audited (`api_call`, no personal data: client, method, path, status) and rate
limited with a per-minute counter row in the database, so the limit holds across gunicorn
workers and hosts (Flask-Limiter offers only memory/redis/memcached/mongodb storage).
"""
from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import Integer, String, delete, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Mapped, mapped_column

from engine import clock
from engine.db import Base, UTCDateTime
from engine.models import JSONType
from grid.org import audit
from grid.org.models import OrgUnit, SecurityEvent

SCOPES = ("cases:read", "indicators:read", "registry:aggregates", "reports:create", "personal:read")
API_CALL = "api_call"
RATE_PER_MINUTE = 600


class ApiClient(Base):
    __tablename__ = "api_client"
    id: Mapped[str] = mapped_column(String(16), primary_key=True)
    name: Mapped[str] = mapped_column(String(100))
    scopes: Mapped[list] = mapped_column(JSONType, default=list)
    unit_code: Mapped[str] = mapped_column(String(20))  # jurisdiction: this unit and below
    secret_hash: Mapped[str] = mapped_column(String(64))
    rate_per_minute: Mapped[int] = mapped_column(Integer, default=RATE_PER_MINUTE)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    created_by: Mapped[str | None] = mapped_column(String(64))
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    last_used_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class ApiRate(Base):
    """Calls per client per minute window (fixed window)."""

    __tablename__ = "api_rate"
    client_id: Mapped[str] = mapped_column(String(16), primary_key=True)
    window: Mapped[datetime] = mapped_column(UTCDateTime, primary_key=True)
    count: Mapped[int] = mapped_column(Integer, default=0)


@dataclass(frozen=True)
class Caller:
    """An authenticated client as the API layer sees it."""

    id: str
    name: str
    scopes: frozenset[str]
    unit_code: str
    path: str  # the jurisdiction's materialised path
    rate_per_minute: int

    def has(self, scope: str) -> bool:
        return scope in self.scopes


def _hash(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def create(svc, name: str, scopes: list[str], unit_code: str, *, actor: str | None = None,
           rate_per_minute: int = RATE_PER_MINUTE) -> tuple[ApiClient, str]:
    """A new client and its token (returned once, never stored)."""
    bad = [sc for sc in scopes if sc not in SCOPES]
    if bad:
        raise ValueError(f"unknown scope(s): {', '.join(bad)} (known: {', '.join(SCOPES)})")
    if not name.strip():
        raise ValueError("a client needs a name")
    secret = secrets.token_urlsafe(32)
    with svc.db.write() as s:
        if s.get(OrgUnit, unit_code) is None:
            raise ValueError(f"no unit with code {unit_code}")
        cid = secrets.token_hex(6)
        c = ApiClient(id=cid, name=name.strip(), scopes=sorted(set(scopes)), unit_code=unit_code,
                      secret_hash=_hash(secret), rate_per_minute=rate_per_minute, created_at=clock.now(),
                      created_by=actor)
        s.add(c)
        s.flush()
        s.expunge(c)
    return c, f"gf_{cid}_{secret}"


def clients(svc) -> list[ApiClient]:
    with svc.db.read() as s:
        rows = list(s.scalars(select(ApiClient).order_by(ApiClient.created_at, ApiClient.id)))
        for r in rows:
            s.expunge(r)
        return rows


def revoke(svc, client_id: str) -> bool:
    """Revoke a client; False when there is no such (unrevoked) client."""
    with svc.db.write() as s:
        n = s.execute(update(ApiClient).where(ApiClient.id == client_id, ApiClient.revoked_at.is_(None))
                      .values(revoked_at=clock.now())).rowcount
    return bool(n)


def authenticate(svc, token: str | None) -> Caller | None:
    """The client a bearer token belongs to, or None (malformed, unknown, wrong secret, revoked)."""
    if not token or not token.startswith("gf_"):
        return None
    parts = token.split("_", 2)
    if len(parts) != 3 or not parts[1] or not parts[2]:
        return None
    with svc.db.read() as s:
        c = s.get(ApiClient, parts[1])
        if c is None or c.revoked_at is not None or not hmac.compare_digest(c.secret_hash, _hash(parts[2])):
            return None
        unit = s.get(OrgUnit, c.unit_code)
        if unit is None:
            return None
        return Caller(c.id, c.name, frozenset(c.scopes or ()), c.unit_code, unit.path, c.rate_per_minute)


def allow(svc, caller: Caller) -> tuple[bool, int]:
    """Count one call; (allowed, seconds until the window resets)."""
    now = clock.now()
    window = now.replace(second=0, microsecond=0)
    retry = 60 - now.second
    with svc.db.write() as s:
        n = s.execute(update(ApiRate).where(ApiRate.client_id == caller.id, ApiRate.window == window)
                      .values(count=ApiRate.count + 1)).rowcount
        if not n:
            try:
                with s.begin_nested():
                    s.add(ApiRate(client_id=caller.id, window=window, count=1))
            except IntegrityError:  # another worker created the row first
                s.execute(update(ApiRate).where(ApiRate.client_id == caller.id, ApiRate.window == window)
                          .values(count=ApiRate.count + 1))
        count = s.scalar(select(ApiRate.count).where(ApiRate.client_id == caller.id, ApiRate.window == window))
        s.execute(delete(ApiRate).where(ApiRate.client_id == caller.id, ApiRate.window < window - timedelta(minutes=5)))
    return (count or 0) <= caller.rate_per_minute, retry


def record_call(svc, client_id: str | None, method: str, path: str, status: int, unit_code: str | None = None) -> None:
    """Audit one call: who, what, outcome; never query values (they may hold personal data)."""
    detail = {"client": client_id, "method": method, "path": path[:200], "status": status}
    with svc.db.write() as s:
        if API_CALL in audit.KINDS:
            audit.record(s, API_CALL, unit=unit_code, detail=detail)
        else:  # until grid/org/audit.py lists api_call among its KINDS
            s.add(SecurityEvent(at=clock.now(), kind=API_CALL, unit_code=unit_code,
                                ip=(audit.origin.get() or None), detail=audit._scrub(detail)))
        if client_id:
            s.execute(update(ApiClient).where(ApiClient.id == client_id).values(last_used_at=clock.now()))
