"""APScheduler drives the timer sweep: once at start-up (catch-up after downtime), then every N seconds."""
from __future__ import annotations

import logging
from datetime import UTC, datetime

from apscheduler.schedulers.background import BackgroundScheduler

from .runtime import Runtime

log = logging.getLogger("gridflow.timers")


def start_scheduler(runtime: Runtime, seconds: float = 5.0) -> BackgroundScheduler:
    def job() -> None:
        try:
            n = runtime.sweep()
            if n:
                log.info("timer sweep fired %d instance(s)", n)
        except Exception:  # noqa: BLE001 - the scheduler must keep going
            log.exception("timer sweep failed")

    sched = BackgroundScheduler(timezone="UTC")
    sched.add_job(job, "interval", seconds=seconds, id="gridflow-timer-sweep", coalesce=True,
                  max_instances=1, next_run_time=datetime.now(UTC))
    sched.start()
    return sched
