"""Reading back migration runs and their per-instance records, for pages and the CLI."""
from __future__ import annotations

from sqlalchemy import select

from ..db import Database
from ..errors import NotFound
from ..models import Instance, ProcessVersion
from ..version_models import MigrationRecord, MigrationRun
from .labels import vlabel


def get_run(db: Database, run_id: int) -> MigrationRun:
    """One run (dry or not) with its counters, or NotFound."""
    with db.read() as s:
        run = s.get(MigrationRun, run_id)
        if run is None:
            raise NotFound(f"migration run {run_id} does not exist")
        return run


def records(db: Database, run_id: int, outcome: str | None = None, limit: int | None = None,
            offset: int = 0) -> list[MigrationRecord]:
    """The records of a run in id order, optionally only one outcome, paged."""
    with db.read() as s:
        q = select(MigrationRecord).where(MigrationRecord.run_id == run_id)
        if outcome:
            q = q.where(MigrationRecord.outcome == outcome)
        q = q.order_by(MigrationRecord.id).offset(offset)
        if limit:
            q = q.limit(limit)
        return list(s.scalars(q))


def record_rows(db: Database, run_id: int, outcome: str | None = None, limit: int | None = None,
                offset: int = 0) -> list[dict]:
    """Records of a run with the instance's business key and version numbers, for pages."""
    recs = records(db, run_id, outcome, limit, offset)
    with db.read() as s:
        nums = dict(s.execute(select(ProcessVersion.id, ProcessVersion.number)).all())
        ids = [r.instance_id for r in recs]
        keys = dict(s.execute(select(Instance.id, Instance.business_key).where(Instance.id.in_(ids))).all()) \
            if ids else {}
    return [{"id": r.id, "instance_id": r.instance_id, "business_key": keys.get(r.instance_id),
             "outcome": r.outcome, "reasons": r.reasons or [], "notes": r.notes or [],
             "from": nums.get(r.from_version_id), "to": nums.get(r.to_version_id), "at": r.at,
             "reverted_at": r.reverted_at, "reverted_by": r.reverted_by} for r in recs]


def version_label(db: Database, version_id: int) -> str:
    """`process vN` for a version id (the id itself if the version is gone)."""
    with db.read() as s:
        v = s.get(ProcessVersion, version_id)
        return vlabel(v) if v else str(version_id)


def runs(db: Database, process_id: str | None = None, limit: int = 50) -> list[MigrationRun]:
    """The latest runs, newest first, of one process or of all."""
    with db.read() as s:
        q = select(MigrationRun).order_by(MigrationRun.id.desc()).limit(limit)
        if process_id:
            q = q.where(MigrationRun.process_id == process_id)
        return list(s.scalars(q))
