"""The composition root: one object holding the database, the engine runtime and the domain hooks.

The web layer and the CLI call functions on this object; it is the service layer.
"""
from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import text

from engine import clock
from engine.calendar import WorkCalendar
from engine.db import Database
from engine.runtime import Runtime
from grid.config import Settings


@dataclass
class Services:
    settings: Settings
    db: Database
    runtime: Runtime

    @classmethod
    def build(cls, settings: Settings | None = None, db: Database | None = None) -> Services:
        from grid.schema import metadata

        metadata()  # every table known wherever services run

        settings = settings or Settings()
        db = db or Database(settings.database_url)
        runtime = Runtime(db, calendar=WorkCalendar.load(settings.calendar))
        svc = cls(settings=settings, db=db, runtime=runtime)
        from grid.cases import feed, listener, notifications
        from grid.cases import service as cases
        from grid.registry import party_check, visits

        listener.install(svc)  # the case row and its records first:
        feed.install(svc)  # the feed and the notifications read the updated case row
        notifications.install(svc)
        visits.install(svc)
        from grid.cases import accountability

        accountability.install(svc)  # the 问责/督办 registers (after the case listener: it reads its records)
        cases.party_checker = party_check.unknown_residents  # a party's resident id must exist
        return svc

    def periodic_jobs(self) -> list[tuple[str, float, object]]:
        """The domain's housekeeping, run by every scheduler beside the timer sweep: expired
        sessions and security events past their retention (GRIDFLOW_AUDIT_RETENTION_DAYS) go."""
        from grid.org import audit, sessions

        def retention() -> None:
            sessions.purge_expired(self)
            audit.purge(self)

        def uploads() -> None:  # uploads no finished form owns, past GRIDFLOW_UPLOAD_GRACE_HOURS
            from grid.cases import attachments

            attachments.cleanup(self)

        return [("gridflow-retention", 3600.0, retention), ("gridflow-uploads-cleanup", 3600.0, uploads)]

    def health(self) -> dict:
        try:
            with self.db.read() as s:
                s.execute(text("select 1"))
            ok = True
        except Exception:  # noqa: BLE001
            ok = False
        return {"status": "ok" if ok else "degraded", "database": self.db.dialect, "db_ok": ok,
                "time": clock.now().isoformat()}
