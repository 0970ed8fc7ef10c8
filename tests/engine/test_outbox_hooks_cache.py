"""engine.outbox reads the active webhooks once per transaction (issue 16: not once per event of a
step), and still sees a webhook registered by another process in its next transaction, one added
or switched off in the same session at once, and forgets what a rolled-back savepoint did."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from sqlalchemy import event, select

from engine import outbox
from engine.outbox import OutboxRow, Webhook

ROOT = Path(__file__).resolve().parents[2]


def _event(n: int) -> dict:
    return outbox.cloud_event("case.test", "/test", f"case-{n}", {"n": n})


class _Selects:
    """SELECTs of the webhook table issued while counting."""

    def __init__(self, engine):
        self.n = 0
        event.listen(engine, "before_cursor_execute", self._seen)

    def _seen(self, conn, cursor, statement, *a):
        if statement.lstrip().upper().startswith("SELECT") and " webhook" in statement.lower():
            self.n += 1


def _pushed(db) -> list[str]:
    with db.read() as s:
        return list(s.scalars(select(OutboxRow.destination).where(OutboxRow.destination.is_not(None))
                              .order_by(OutboxRow.id)))


def test_one_read_of_the_webhooks_per_transaction(db):
    with db.write() as s:
        outbox.add_webhook(s, "a", "http://127.0.0.1:9/a")
    selects = _Selects(db.engine)
    with db.write() as s:
        for i in range(5):
            outbox.add(s, "case.test", _event(i))
    assert selects.n == 1
    with db.write() as s:  # the next transaction reads again
        outbox.add(s, "case.test", _event(9))
    assert selects.n == 2
    assert len(_pushed(db)) == 6


def test_a_webhook_added_by_another_process_is_seen_by_the_next_transaction(db):
    with db.write() as s:
        outbox.add(s, "case.test", _event(1))  # no webhook yet: the feed row only
    assert _pushed(db) == []
    code = ("import sys; from engine.db import Database; from engine import outbox_admin; "
            "db = Database(sys.argv[1]); print(outbox_admin.add_webhook(db, 'other', 'http://127.0.0.1:9/x')[0]); "
            "db.dispose()")
    out = subprocess.run([sys.executable, "-c", code, db.url_with_password], cwd=ROOT, capture_output=True,
                         text=True, check=True, env={**os.environ, "PYTHONPATH": str(ROOT)})
    hook_id = int(out.stdout.strip().splitlines()[-1])
    with db.write() as s:
        outbox.add(s, "case.test", _event(2))
    assert _pushed(db) == [f"webhook:{hook_id}"]


def test_a_webhook_changed_in_the_same_session_is_seen_at_once(db):
    with db.write() as s:
        outbox.add(s, "case.test", _event(1))  # remembers: none
        hook = outbox.add_webhook(s, "new", "http://127.0.0.1:9/n")
        outbox.add(s, "case.test", _event(2))  # sees the one just added
        hook.active = False
        s.flush()
        outbox.add(s, "case.test", _event(3))  # and that it is switched off
        hook_id = hook.id
    assert _pushed(db) == [f"webhook:{hook_id}"]
    with db.write() as s:
        s.get(Webhook, hook_id).active = True
    with db.write() as s:
        outbox.add(s, "case.test", _event(4))
        from sqlalchemy import update

        s.execute(update(Webhook).values(active=False))  # a bulk update forgets too
        outbox.add(s, "case.test", _event(5))
    assert _pushed(db) == [f"webhook:{hook_id}"] * 2


def test_a_rolled_back_savepoint_is_forgotten(db):
    with db.write() as s:
        sp = s.begin_nested()
        outbox.add_webhook(s, "gone", "http://127.0.0.1:9/g")
        outbox.add(s, "case.test", _event(1))
        sp.rollback()
        outbox.add(s, "case.test", _event(2))  # the hook of the rolled-back savepoint is not pushed to
    assert _pushed(db) == []
