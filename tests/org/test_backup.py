"""Backup and restore (engine/backup.py): a backup taken from a live database restores into a
fresh one, on SQLite and PostgreSQL, with every case, task, timer and attachment (bytes too)."""
from __future__ import annotations

import io
import tarfile
from contextlib import contextmanager

import pytest
from sqlalchemy import select

from engine import backup
from engine.db import Database
from engine.models import Instance, WorkItem
from grid.cases import attachments
from grid.cases.models import Attachment, DisputeCase
from tests.server_helpers import scratch_pg
from tests.web_helpers import dispatch, png, report_case, staff_id


@contextmanager
def fresh_database(db_url: str, tmp_path):
    """An empty database of the same kind as `db_url`."""
    if db_url.startswith("sqlite"):
        yield f"sqlite:///{tmp_path}/restored.sqlite"
        return
    with scratch_pg("gridflow_restore", db_url) as url:
        yield url


def _snapshot(db: Database) -> dict:
    with db.read() as s:
        return {
            "cases": sorted((c.case_no, c.status) for c in s.scalars(select(DisputeCase))),
            "tasks": sorted((w.task_guid, w.state, w.user_id) for w in s.scalars(select(WorkItem))),
            "timers": sorted((i.id, i.next_timer_at) for i in s.scalars(select(Instance))
                             if i.next_timer_at is not None),
            "attachments": sorted((a.id, a.sha256, a.storage_key) for a in s.scalars(select(Attachment))),
        }


def test_backup_restores_into_a_fresh_database(svc, db_url, tmp_path):
    svc.settings.uploads = tmp_path / "uploads"
    worker = staff_id(svc, "jiangranran")
    cases = [report_case(svc) for _ in range(2)]
    dispatch(svc, cases[0].id)
    attachments.store(svc, worker, "photo.png", io.BytesIO(png()), case_id=cases[0].id)
    attachments.store(svc, worker, "photo2.png", io.BytesIO(png(8, 8)), case_id=cases[1].id)
    before = _snapshot(svc.db)
    assert len(before["cases"]) == 2 and before["timers"] and len(before["attachments"]) == 2

    manifest = backup.backup(svc.db, tmp_path / "gridflow.tar.gz", svc.settings.uploads)
    assert manifest["dialect"] == svc.db.dialect and len(manifest["uploads"]) == 6  # 2 photos, 2 renditions each
    with tarfile.open(tmp_path / "gridflow.tar.gz") as tar:
        assert "manifest.json" in tar.getnames()

    with fresh_database(db_url, tmp_path) as target:
        restored_uploads = tmp_path / "restored-uploads"
        backup.restore(tmp_path / "gridflow.tar.gz", target, restored_uploads)
        db2 = Database(target)
        try:
            assert _snapshot(db2) == before
        finally:
            db2.dispose()
        for _id, sha, key in before["attachments"]:
            import hashlib

            assert hashlib.sha256((restored_uploads / key).read_bytes()).hexdigest() == sha
        with pytest.raises(backup.BackupError):  # never over a database that has data
            backup.restore(tmp_path / "gridflow.tar.gz", target, restored_uploads)


def test_a_damaged_archive_is_refused(svc, db_url, tmp_path):
    archive = tmp_path / "b.tar.gz"
    backup.backup(svc.db, archive, None)
    data = bytearray(archive.read_bytes())
    broken = tmp_path / "broken.tar.gz"
    with tarfile.open(archive) as src, tarfile.open(broken, "w:gz") as dst:
        for m in src.getmembers():
            f = src.extractfile(m)
            content = f.read() if f else b""
            if m.name.startswith("database"):
                content = content[:-100] + b"\0" * 100
            m.size = len(content)
            dst.addfile(m, io.BytesIO(content))
    assert data
    with fresh_database(db_url, tmp_path) as target:
        with pytest.raises(backup.BackupError, match="damaged"):
            backup.restore(broken, target, None)
