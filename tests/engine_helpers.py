"""Small helpers shared by the engine tests."""
from __future__ import annotations

from pathlib import Path

from sqlalchemy import select

from engine.deploy import Bundle, deploy
from engine.models import WorkItem
from engine.runtime import Runtime

FIXTURES = Path(__file__).resolve().parent / "fixtures"


def deploy_fixture(db, name: str = "four_tasks.bpmn", actor: str = "tester", tag: str | None = None):
    bundle = Bundle.from_dirs(FIXTURES / name, FIXTURES / "forms")
    with db.write() as s:
        return deploy(s, bundle, actor=actor, tag=tag)


def open_items(db, instance_id: int) -> list[WorkItem]:
    with db.read() as s:
        return list(s.scalars(select(WorkItem).where(WorkItem.instance_id == instance_id, WorkItem.state == "open")
                              .order_by(WorkItem.id)))


def runtime(db) -> Runtime:
    return Runtime(db)


def sweep_worker(url: str, now_iso: str, barrier, out) -> None:
    """Run in a separate process: sweep with a fixed fake clock, report how many instances it fired."""
    from datetime import datetime

    from engine import clock
    from engine.db import Database

    clock.install_fake(datetime.fromisoformat(now_iso))
    db = Database(url)
    rt = Runtime(db)
    barrier.wait(timeout=60)
    n = rt.sweep(batch=20)
    out.put(n)
    db.dispose()
