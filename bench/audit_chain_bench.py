"""Audit chain benchmark: what the tamper-evident hash chain (engine.audit_chain) costs per engine step.

    .venv/bin/python -m bench.audit_chain_bench [--instances 60] [--pg URL] [--dialects sqlite,postgresql]

In one run, per database: start + 4 completions of four_tasks for N instances with the chain as
shipped, then the same with the chain switched off (events inserted without a hash, no previous-hash
read), alternating rounds so the machine's noise hits both. Reports the time per step of each and the
ratio; also `gridflow audit verify`'s rate (events per second).
"""
from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time
from contextlib import contextmanager
from datetime import timedelta

from engine import audit_chain, clock, store
from engine.db import Database
from engine.migrate import upgrade
from engine.runtime import Runtime
from tests.engine_helpers import deploy_fixture, open_items

PG_DEFAULT = "postgresql://postgres@127.0.0.1:5432/test"


def _db(dialect: str, pg: str, tmp: str) -> Database:
    if dialect == "sqlite":
        db = Database(f"sqlite:///{tmp}/bench.sqlite")
    else:
        import uuid

        from sqlalchemy import create_engine, text
        name = f"gridflow_bench_{uuid.uuid4().hex[:6]}"
        admin = create_engine(pg.replace("postgresql://", "postgresql+psycopg://", 1), isolation_level="AUTOCOMMIT")
        with admin.connect() as c:
            c.execute(text(f'CREATE DATABASE "{name}"'))
        admin.dispose()
        db = Database(pg.rsplit("/", 1)[0] + "/" + name)
        db.bench_drop = (pg, name)  # type: ignore[attr-defined]
    upgrade(db)
    return db


def _drop(db: Database) -> None:
    db.dispose()
    if hasattr(db, "bench_drop"):
        from sqlalchemy import create_engine, text
        pg, name = db.bench_drop
        admin = create_engine(pg.replace("postgresql://", "postgresql+psycopg://", 1), isolation_level="AUTOCOMMIT")
        with admin.connect() as c:
            c.execute(text(f'DROP DATABASE IF EXISTS "{name}"'))
        admin.dispose()


@contextmanager
def chain_off():
    real = audit_chain.seal_events
    audit_chain.seal_events = lambda conn, rows: rows
    store.audit_chain.seal_events = audit_chain.seal_events
    try:
        yield
    finally:
        audit_chain.seal_events = real


def _round(rt: Runtime, db: Database, n: int) -> tuple[float, int]:
    steps = 0
    t0 = time.perf_counter()
    for _ in range(n):
        iid = rt.start("four_tasks", {"unit": "420602003005"}, actor="bench").instance_id
        steps += 1
        for _ in range(4):
            (wi,) = open_items(db, iid)
            rt.complete(iid, wi.task_guid, {"note": "done", "amount": 1}, actor="bench")
            steps += 1
    return time.perf_counter() - t0, steps


def run(dialect: str, pg: str, n: int, rounds: int) -> dict:
    with tempfile.TemporaryDirectory() as tmp:
        db = _db(dialect, pg, tmp)
        try:
            deploy_fixture(db)
            rt = Runtime(db)
            _round(rt, db, 3)  # warm up
            on, off = [], []
            for _ in range(rounds):
                t, k = _round(rt, db, n)
                on.append(t / k)
                with chain_off():
                    t, k = _round(rt, db, n)
                off.append(t / k)

            @contextmanager
            def conn():
                with db.engine.connect() as c:
                    yield c
            from sqlalchemy import func, select

            from engine.models import InstanceEvent
            with db.read() as s:
                events = s.scalar(select(func.count()).select_from(InstanceEvent))
            t0 = time.perf_counter()
            problems = list(audit_chain.verify_instances(conn))
            verify_s = time.perf_counter() - t0
        finally:
            _drop(db)
    on_ms, off_ms = statistics.median(on) * 1000, statistics.median(off) * 1000
    return {"dialect": dialect, "step_ms_chain": round(on_ms, 3), "step_ms_no_chain": round(off_ms, 3),
            "ratio": round(on_ms / off_ms, 3), "per_step_us": round((on_ms - off_ms) * 1000, 1),
            "verify_events_per_s": round(events / verify_s), "verify_problems": len(problems) - n * rounds}


def main() -> None:
    ap = argparse.ArgumentParser(prog="python -m bench.audit_chain_bench", description=__doc__.split("\n\n")[0])
    ap.add_argument("--instances", type=int, default=60)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--pg", default=os.environ.get("GRIDFLOW_BENCH_PG_URL", PG_DEFAULT))
    ap.add_argument("--dialects", default="sqlite,postgresql")
    a = ap.parse_args()
    clock.install_fake(clock.now() - timedelta(days=1))
    for d in a.dialects.split(","):
        print(run(d, a.pg, a.instances, a.rounds))


if __name__ == "__main__":
    main()
