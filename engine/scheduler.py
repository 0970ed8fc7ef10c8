"""APScheduler drives the timer sweep: once at start-up (catch-up after downtime), then every N seconds.

`start_scheduler` runs it in the background of another process (the development server);
`run_until_stopped` is the body of a scheduler process of its own (`gridflow scheduler`). Several
such processes may run against one PostgreSQL database: the sweep claims due instances with
SKIP LOCKED, so each timer fires once.
"""
from __future__ import annotations

import logging
import os
import threading
from collections.abc import Callable, Iterable
from datetime import UTC, datetime

from apscheduler.schedulers.background import BackgroundScheduler

from .runtime import Runtime

log = logging.getLogger("gridflow.timers")

# (id, seconds, function): further periodic jobs run beside the sweep, each at most once at a time
PeriodicJob = tuple[str, float, Callable[[], object]]


def _sweep_job(runtime: Runtime) -> Callable[[], None]:
    first = threading.Event()

    def job() -> None:
        try:
            n = runtime.sweep()
        except Exception:  # noqa: BLE001 - the scheduler must keep going
            log.exception("timer sweep failed")
            return
        if n or not first.is_set():
            log.info("timer sweep%s fired %d instance(s)", "" if first.is_set() else " (start-up)", n)
        first.set()

    return job


def _guarded(name: str, fn: Callable[[], object]) -> Callable[[], None]:
    def job() -> None:
        try:
            result = fn()
            if result:
                log.info("%s: %s", name, result)
        except Exception:  # noqa: BLE001 - one failing job must not stop the others
            log.exception("periodic job %s failed", name)

    return job


def outbox_job(runtime: Runtime, seconds: float | None = None) -> PeriodicJob:
    """Push due outbox rows to their webhooks (engine.outbox): every GRIDFLOW_OUTBOX_SECONDS (5)."""
    from . import outbox

    every = seconds or float(os.environ.get("GRIDFLOW_OUTBOX_SECONDS") or 5.0)
    return ("gridflow-outbox", every, lambda: outbox.deliver_due(runtime.db))


def start_scheduler(runtime: Runtime, seconds: float = 5.0, jobs: Iterable[PeriodicJob] = ()) -> BackgroundScheduler:
    """Start the sweep (first run now), the outbox delivery and any further jobs in background threads."""
    sched = BackgroundScheduler(timezone="UTC")
    jobs = [outbox_job(runtime), *jobs]
    sched.add_job(_sweep_job(runtime), "interval", seconds=seconds, id="gridflow-timer-sweep", coalesce=True,
                  max_instances=1, next_run_time=datetime.now(UTC))
    for job_id, every, fn in jobs:
        sched.add_job(_guarded(job_id, fn), "interval", seconds=every, id=job_id, coalesce=True, max_instances=1)
    sched.start()
    return sched


def run_until_stopped(runtime: Runtime, stop: threading.Event, seconds: float = 5.0,
                      jobs: Iterable[PeriodicJob] = ()) -> None:
    """Sweep until `stop` is set (the caller's SIGTERM handler sets it), then let a running sweep
    finish its batch and return: the process exits cleanly, nothing is left half-fired."""
    sched = start_scheduler(runtime, seconds, jobs)
    log.info("scheduler running: timer sweep every %gs", seconds)
    try:
        while not stop.wait(1.0):
            pass
    finally:
        log.info("scheduler stopping")
        sched.shutdown(wait=True)
        log.info("scheduler stopped")
