"""Webhook administration in transactions of its own: what the CLI (and an admin page) call, so
that no caller outside the engine opens a database session for it."""
from __future__ import annotations

from dataclasses import dataclass

from engine import outbox
from engine.db import Database


@dataclass(frozen=True)
class WebhookView:
    id: int
    name: str
    url: str
    active: bool
    dead: int  # dead-lettered events waiting for a replay


def add_webhook(db: Database, name: str, url: str, *, personal: bool = False) -> tuple[int, str]:
    """Register a receiver; returns (id, signing secret). The secret is shown once."""
    with db.write() as s:
        h = outbox.add_webhook(s, name, url, personal=personal)
        return h.id, h.secret


def list_webhooks(db: Database) -> list[WebhookView]:
    with db.read() as s:
        return [WebhookView(h.id, h.name, h.url, h.active, len(outbox.dead_letters(s, f"webhook:{h.id}")))
                for h in outbox.webhooks(s)]


def replay(db: Database, webhook_id: int | None = None) -> int:
    """Queue dead-lettered events again (of one webhook, or all); how many."""
    with db.write() as s:
        return outbox.replay(s, destination=f"webhook:{webhook_id}" if webhook_id else None)
