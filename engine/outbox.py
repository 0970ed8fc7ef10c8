"""A transactional outbox: events written in the same transaction as the step that caused them,
delivered afterwards by pull (a cursor over `outbox.id`) and by push (webhooks), at least once.

Generic: this module knows CloudEvents, HMAC signatures and back-off, nothing of cases. A domain
listener calls `add(session, ...)` inside the step's transaction; `deliver_due` (a scheduler job)
claims due push rows (SKIP LOCKED on PostgreSQL, so several scheduler processes never send a row
twice at once), POSTs them, and backs off or dead-letters on failure. The event id (`payload.id`)
is the idempotency key receivers deduplicate on.

Rows with `destination` NULL are the feed itself (what pull clients read); each registered
webhook gets its own row per event (destination = "webhook:<id>"), so one slow receiver never
holds up another and each keeps its own attempts. Messages to people (`add_message`) are rows
too, destination = "<channel>:<recipient>" (e.g. "sms:u000012"), sent by `engine.channels` with
the same retries; one that falls in the recipient's quiet hours waits until they end.
"""
from __future__ import annotations

import hashlib
import hmac
import json
import logging
import secrets
import urllib.error
import urllib.request
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import Boolean, Index, Integer, String, Text, event, select
from sqlalchemy.orm import Mapped, Session, mapped_column

from . import clock
from .db import Base, UTCDateTime
from .models import JSONType

log = logging.getLogger("gridflow.outbox")

MAX_ATTEMPTS = 8
BASE_DELAY = 2.0  # seconds; the n-th retry waits BASE_DELAY * 2**(n-1), capped at MAX_DELAY
MAX_DELAY = 3600.0
SIGNATURE_HEADER = "X-Gridflow-Signature"  # "sha256=<hex HMAC-SHA256 of the body with the hook's secret>"


class OutboxRow(Base):
    __tablename__ = "outbox"
    __table_args__ = (Index("ix_outbox_due", "destination", "delivered_at", "dead", "next_attempt_at"),)
    id: Mapped[int] = mapped_column(primary_key=True)
    kind: Mapped[str] = mapped_column(String(60))
    payload: Mapped[dict] = mapped_column(JSONType)  # a CloudEvents 1.0 JSON event
    destination: Mapped[str | None] = mapped_column(String(60))  # None: the pull feed
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    delivered_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    dead: Mapped[bool] = mapped_column(Boolean, default=False)
    last_error: Mapped[str | None] = mapped_column(String(300))


class Webhook(Base):
    __tablename__ = "webhook"
    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(100))
    url: Mapped[str] = mapped_column(String(500))
    secret: Mapped[str] = mapped_column(String(100))  # HMAC key; the receiver holds the same
    personal: Mapped[bool] = mapped_column(Boolean, default=False)  # receives the personal-data variant
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    note: Mapped[str | None] = mapped_column(Text)


def cloud_event(type_: str, source: str, subject: str | None, data: dict, *, time: datetime | None = None,
                event_id: str | None = None) -> dict:
    """A CloudEvents 1.0 structured-mode JSON event."""
    ev = {"specversion": "1.0", "id": event_id or str(uuid.uuid4()), "type": type_, "source": source,
          "time": (time or clock.now()).isoformat().replace("+00:00", "Z"), "datacontenttype": "application/json",
          "data": data}
    if subject:
        ev["subject"] = subject
    return ev


def add(s: Session, kind: str, event: dict, personal_event: dict | None = None) -> None:
    """Write one event to the feed and a push row per active webhook, in the caller's transaction.
    Webhooks marked personal get `personal_event` (same id) when one is given."""
    now = clock.now()
    s.add(OutboxRow(kind=kind, payload=event, destination=None, attempts=0, delivered_at=now, dead=False))
    for hook in _active_hooks(s):
        body = personal_event if (hook.personal and personal_event is not None) else event
        s.add(OutboxRow(kind=kind, payload=body, destination=f"webhook:{hook.id}", attempts=0,
                        next_attempt_at=now, dead=False))


def add_message(s: Session, channel: str, recipient: str, message: dict, *, quiet: dict | None = None,
                kind: str = "message") -> OutboxRow:
    """Queue one message (an `engine.channels.Message` payload) for `channel`, in the caller's
    transaction. `quiet` ({"start": "22:00", "end": "07:00", "tz": ...}) holds it back while the
    recipient's quiet hours last (for the channels in `channels.QUIET_CHANNELS`)."""
    from . import channels

    now = clock.now()
    payload = dict(message)
    if quiet and channel in channels.QUIET_CHANNELS:
        payload["quiet"] = quiet
    row = OutboxRow(kind=kind, payload=payload, destination=f"{channel}:{recipient}"[:60], attempts=0,
                    next_attempt_at=_quiet_end(payload, now) or now, dead=False)
    s.add(row)
    return row


def _quiet_end(payload: dict, now: datetime) -> datetime | None:
    from . import channels

    q = payload.get("quiet") or None
    if not q:
        return None
    return channels.quiet_until(now, q.get("start"), q.get("end"), q.get("tz") or "Asia/Shanghai")


_HOOKS_KEY = "gridflow_active_hooks"


@dataclass(frozen=True)
class _Hook:
    id: int
    personal: bool


def _active_hooks(s: Session) -> list[_Hook]:
    """The active webhooks (id, personal), read once per transaction: a step that writes several
    events reads the table once. A new transaction reads it again, so a webhook registered or
    switched off by another process is seen by the next step; one changed in this session (or a
    rollback, of a savepoint too) drops the remembered list."""
    tx = s.get_transaction()
    known = s.info.get(_HOOKS_KEY)
    if tx is not None and known is not None and known[0] is tx:
        return known[1]
    hooks = [_Hook(h.id, bool(h.personal)) for h in
             s.scalars(select(Webhook).where(Webhook.active.is_(True)).order_by(Webhook.id))]
    if tx is not None:
        s.info[_HOOKS_KEY] = (tx, hooks)
    return hooks


@event.listens_for(Session, "after_flush")
def _forget_hooks(s: Session, _ctx) -> None:
    if _HOOKS_KEY in s.info and any(isinstance(o, Webhook) for o in (*s.new, *s.dirty, *s.deleted)):
        s.info.pop(_HOOKS_KEY, None)


@event.listens_for(Session, "after_soft_rollback")
def _forget_hooks_on_rollback(s: Session, _previous) -> None:
    s.info.pop(_HOOKS_KEY, None)  # a savepoint rolled back may have added or changed one


@event.listens_for(Session, "do_orm_execute")
def _forget_hooks_on_bulk(state) -> None:
    if (state.is_update or state.is_delete) and _HOOKS_KEY in state.session.info:
        if any(m.class_ is Webhook for m in state.all_mappers):
            state.session.info.pop(_HOOKS_KEY, None)


# ---- pull ------------------------------------------------------------------------------------
def feed(s: Session, after: int = 0, limit: int = 100) -> list[OutboxRow]:
    """Feed rows with id > after, oldest first: the cursor is the last id a client saw."""
    q = (select(OutboxRow).where(OutboxRow.destination.is_(None), OutboxRow.id > after)
         .order_by(OutboxRow.id).limit(limit))
    return list(s.scalars(q))


# ---- webhooks --------------------------------------------------------------------------------
def add_webhook(s: Session, name: str, url: str, *, secret: str | None = None, personal: bool = False) -> Webhook:
    """Register a receiver; events written from now on are pushed to it."""
    if not url.startswith(("http://", "https://")):
        raise ValueError("a webhook URL starts with http:// or https://")
    hook = Webhook(name=name, url=url, secret=secret or secrets.token_urlsafe(32), personal=personal,
                   active=True, created_at=clock.now())
    s.add(hook)
    s.flush()
    return hook


def webhooks(s: Session) -> list[Webhook]:
    return list(s.scalars(select(Webhook).order_by(Webhook.id)))


def sign(secret: str, body: bytes) -> str:
    """The signature header value: receivers recompute it and compare in constant time."""
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def backoff(attempts: int) -> timedelta:
    """Delay before the next try after `attempts` failures (exponential, capped)."""
    return timedelta(seconds=min(MAX_DELAY, BASE_DELAY * 2 ** max(0, attempts - 1)))


@dataclass
class Delivery:
    sent: int = 0
    failed: int = 0
    dead: int = 0

    def __bool__(self) -> bool:
        return bool(self.sent or self.failed or self.dead)


def _post(hook: Webhook, payload: dict, timeout: float) -> None:
    body = json.dumps(payload, ensure_ascii=False, separators=(",", ":")).encode()
    req = urllib.request.Request(hook.url, data=body, method="POST", headers={
        "Content-Type": "application/cloudevents+json; charset=utf-8", SIGNATURE_HEADER: sign(hook.secret, body),
        "ce-id": payload.get("id", ""), "User-Agent": "gridflow-outbox"})
    with urllib.request.urlopen(req, timeout=timeout) as resp:  # noqa: S310 - admin-registered URL
        if not 200 <= resp.status < 300:
            raise urllib.error.HTTPError(hook.url, resp.status, "not 2xx", resp.headers, None)


def deliver_due(db, *, batch: int = 100, timeout: float = 10.0, max_attempts: int = MAX_ATTEMPTS,
                channels: dict | None = None) -> Delivery:
    """Push due rows, oldest first per destination. A destination whose oldest due row fails is
    not sent newer rows in this round, so a receiver sees events in order. Claims rows with
    FOR UPDATE SKIP LOCKED (PostgreSQL); SQLite serialises writers anyway. Message rows go
    through `channels` (by name; default: the ones the environment configures)."""
    from . import channels as channel_mod

    out = Delivery()
    now = clock.now()
    senders = channel_mod.configured() if channels is None else channels
    with db.write() as s:
        q = (select(OutboxRow).where(OutboxRow.destination.is_not(None), OutboxRow.delivered_at.is_(None),
                                     OutboxRow.dead.is_(False))
             .order_by(OutboxRow.id).limit(batch))
        if s.bind.dialect.name == "postgresql":
            q = q.with_for_update(skip_locked=True)
        rows = list(s.scalars(q))
        hooks = {f"webhook:{h.id}": h for h in webhooks(s)}
        blocked: set[str] = set()
        for row in rows:
            dest = row.destination or ""
            if dest in blocked:
                continue
            if row.next_attempt_at and row.next_attempt_at > now:
                blocked.add(dest)  # an older row of this destination waits: keep the order
                continue
            hook = channel = None
            if dest.startswith("webhook:"):
                hook = hooks.get(dest)
                if hook is None or not hook.active:
                    row.dead, row.last_error = True, "no such active webhook"
                    out.dead += 1
                    continue
            else:
                channel = senders.get(dest.split(":", 1)[0])
                if channel is None:
                    row.dead, row.last_error = True, "no such channel configured"
                    out.dead += 1
                    continue
                quiet_end = _quiet_end(row.payload, now)
                if quiet_end is not None:  # a retry that fell into quiet hours waits for their end
                    row.next_attempt_at = quiet_end
                    blocked.add(dest)
                    continue
            try:
                if hook is not None:
                    _post(hook, row.payload, timeout)
                else:
                    channel.send(channel_mod.Message.from_payload(row.payload))
            except Exception as e:  # noqa: BLE001 - any failure is a retry
                row.attempts += 1
                row.last_error = str(e)[:300]
                blocked.add(dest)
                if row.attempts >= max_attempts:
                    row.dead = True
                    out.dead += 1
                    blocked.discard(dest)  # dead-lettered: later rows may go
                else:
                    row.next_attempt_at = now + backoff(row.attempts)
                    out.failed += 1
                continue
            row.attempts += 1
            row.delivered_at = clock.now()
            out.sent += 1
    return out


def dead_letters(s: Session, destination: str | None = None) -> list[OutboxRow]:
    q = select(OutboxRow).where(OutboxRow.dead.is_(True))
    if destination:
        q = q.where(OutboxRow.destination == destination)
    return list(s.scalars(q.order_by(OutboxRow.id)))


def replay(s: Session, ids: list[int] | None = None, destination: str | None = None) -> int:
    """Put dead-lettered rows (all, some ids, or one destination's) back in the queue, due now."""
    n = 0
    for row in dead_letters(s, destination):
        if ids and row.id not in ids:
            continue
        row.dead, row.attempts, row.next_attempt_at, row.last_error = False, 0, clock.now(), None
        n += 1
    return n
