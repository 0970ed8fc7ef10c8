"""Backup and restore (engine/backup.py, `gridflow backup|restore` in web/cli_org.py): a backup
taken from a live database restores into a fresh one, on SQLite and PostgreSQL, with every case,
task, timer and attachment - the originals and the photos' renditions (thumbnail, screen size),
bytes compared - from whichever store is configured (the uploads directory, or an S3 bucket on a
real S3 server, moto's server mode)."""
from __future__ import annotations

import hashlib
import io
import tarfile
from contextlib import contextmanager

import pytest
from click.testing import CliRunner
from sqlalchemy import select

from engine import backup
from engine.db import Database
from engine.models import Instance, WorkItem
from grid import storage
from grid.cases import attachments, media
from grid.cases.models import Attachment, DisputeCase
from tests.server_helpers import scratch_pg
from tests.web_helpers import dispatch, png, report_case, staff_id

PDF = b"%PDF-1.4\n1 0 obj << /Type /Catalog >> endobj\ntrailer << /Root 1 0 R >>\n%%EOF\n"


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
            "attachments": sorted((a.id, a.sha256, a.storage_key, a.content_type)
                                  for a in s.scalars(select(Attachment))),
        }


def _objects(store: storage.Store) -> dict[str, str]:
    """Every object of a store: key -> SHA-256 of its bytes."""
    return {k: hashlib.sha256(store.get(k)).hexdigest() for k, _m in store.keys()}


def _expected_keys(snap: dict) -> set[str]:
    """What the store should hold for the attachments: each original, and a photo's renditions."""
    out = set()
    for _id, _sha, key, ctype in snap["attachments"]:
        out.add(key)
        if media.kind_of(ctype) == "photo":
            out |= {f"{key}.{r}" for r in media.RENDITIONS}
    return out


def _city_with_attachments(svc) -> dict:
    """Two cases (one dispatched), two photos and a PDF on them; the snapshot of it all."""
    worker = staff_id(svc, "jiangranran")
    cases = [report_case(svc) for _ in range(2)]
    dispatch(svc, cases[0].id)
    attachments.store(svc, worker, "photo.png", io.BytesIO(png()), case_id=cases[0].id)
    attachments.store(svc, worker, "photo2.png", io.BytesIO(png(8, 8)), case_id=cases[1].id)
    attachments.store(svc, worker, "协议.pdf", io.BytesIO(PDF), case_id=cases[1].id)
    snap = _snapshot(svc.db)
    assert len(snap["cases"]) == 2 and snap["timers"] and len(snap["attachments"]) == 3
    assert any(state == "open" for _g, state, _u in snap["tasks"])
    return snap


def test_backup_restores_into_a_fresh_database(svc, db_url, tmp_path):
    svc.settings.uploads = tmp_path / "uploads"
    before = _city_with_attachments(svc)
    source = storage.from_settings(svc.settings)
    objects = _objects(source)
    # 2 photos x (original + thumb + screen) + 1 PDF (no renditions) = 7, all named by a record
    assert set(objects) == _expected_keys(before) and len(objects) == 2 * (1 + len(media.RENDITIONS)) + 1
    (tmp_path / "uploads" / "zz").mkdir()
    (tmp_path / "uploads" / "zz" / "half.part").write_bytes(b"being written")  # never archived

    manifest = backup.backup(svc.db, tmp_path / "gridflow.tar.gz", source)
    assert manifest["dialect"] == svc.db.dialect
    assert {f["path"]: f["sha256"] for f in manifest["uploads"]} == {"uploads/" + k: h for k, h in objects.items()}
    with tarfile.open(tmp_path / "gridflow.tar.gz") as tar:
        assert "manifest.json" in tar.getnames()

    with fresh_database(db_url, tmp_path) as target:
        restored = storage.LocalStore(tmp_path / "restored-uploads")
        backup.restore(tmp_path / "gridflow.tar.gz", target, restored)
        db2 = Database(target)
        try:
            assert _snapshot(db2) == before
        finally:
            db2.dispose()
        assert _objects(restored) == objects  # every original and rendition, byte for byte
        with pytest.raises(backup.BackupError):  # never over a database that has data
            backup.restore(tmp_path / "gridflow.tar.gz", target, restored)


def test_a_write_while_the_database_is_copied_is_wholly_in_or_out(svc, db_url, tmp_path):
    """The row counts the restore checks are those of the copied snapshot: a case reported while
    the copy runs (here: when the backup says it starts copying; on PostgreSQL that is after the
    snapshot is taken and counted, before pg_dump reads it) does not make the restore fail."""
    svc.settings.uploads = tmp_path / "uploads"
    before = _snapshot(svc.db)

    def progress(done, total, note=""):
        if note == "database":
            report_case(svc)

    manifest = backup.backup(svc.db, tmp_path / "b.tar.gz", storage.from_settings(svc.settings), progress=progress)
    after = _snapshot(svc.db)
    assert len(after["cases"]) == len(before["cases"]) + 1
    with fresh_database(db_url, tmp_path) as target:
        backup.restore(tmp_path / "b.tar.gz", target, None)  # checks every table's count
        db2 = Database(target)
        try:
            got = _snapshot(db2)
        finally:
            db2.dispose()
    assert got in (before, after)
    # PostgreSQL: pg_dump reads the snapshot exported before the write; SQLite copies after it
    assert got == (before if svc.db.dialect == "postgresql" else after)
    assert manifest["tables"]["dispute_case"] == len(got["cases"])


def test_a_damaged_archive_is_refused(svc, db_url, tmp_path):
    archive = tmp_path / "b.tar.gz"
    backup.backup(svc.db, archive, None)
    broken = tmp_path / "broken.tar.gz"
    with tarfile.open(archive) as src, tarfile.open(broken, "w:gz") as dst:
        for m in src.getmembers():
            f = src.extractfile(m)
            content = f.read() if f else b""
            if m.name.startswith("database"):
                content = content[:-100] + b"\0" * 100
            m.size = len(content)
            dst.addfile(m, io.BytesIO(content))
    with fresh_database(db_url, tmp_path) as target:
        with pytest.raises(backup.BackupError, match="damaged"):
            backup.restore(broken, target, None)


# ---- the commands, with the store the configuration names -------------------------------------
def _gridflow(env: dict[str, str], *args: str):
    from web import cli_org
    from web.cli import main

    if "backup" not in main.commands:
        cli_org.register(main)
    return CliRunner(env=env).invoke(main, list(args), catch_exceptions=False)


def _clear_gridflow_env(monkeypatch) -> None:
    import os

    for k in list(os.environ):
        if k.startswith("GRIDFLOW_") and k != "GRIDFLOW_TEST_PG_URL":
            monkeypatch.delenv(k)


def test_backup_and_restore_commands_with_the_uploads_directory(svc, db_url, tmp_path, monkeypatch):
    _clear_gridflow_env(monkeypatch)
    svc.settings.uploads = tmp_path / "uploads"
    before = _city_with_attachments(svc)
    objects = _objects(storage.from_settings(svc.settings))
    archive = tmp_path / "city.tar.gz"
    r = _gridflow({"GRIDFLOW_DATABASE_URL": db_url, "GRIDFLOW_UPLOADS": str(tmp_path / "uploads")},
                  "backup", str(archive))
    assert r.exit_code == 0 and f"{len(objects)} upload(s)" in r.output, r.output

    with fresh_database(db_url, tmp_path) as target:
        r = _gridflow({"GRIDFLOW_DATABASE_URL": target, "GRIDFLOW_UPLOADS": str(tmp_path / "new-uploads")},
                      "restore", str(archive))
        assert r.exit_code == 0 and f"{len(objects)} upload(s)" in r.output, r.output
        db2 = Database(target)
        try:
            assert _snapshot(db2) == before
        finally:
            db2.dispose()
    assert _objects(storage.LocalStore(tmp_path / "new-uploads")) == objects


def test_backup_and_restore_commands_with_an_s3_bucket(sqlite_db, tmp_path, monkeypatch):
    from grid.cases.scenario import prepare
    from tests.conftest import ROOT
    from tests.media.s3_helpers import prefix, s3_server

    _clear_gridflow_env(monkeypatch)
    svc = prepare(sqlite_db, ROOT / "workflows", ROOT / "forms")
    with s3_server() as endpoint:
        source_prefix, target_prefix = prefix(), prefix()
        svc.settings.storage, svc.settings.s3_endpoint = f"s3://gridflow/{source_prefix}", endpoint
        svc.settings.uploads = tmp_path / "uploads-unused"
        before = _city_with_attachments(svc)
        objects = _objects(storage.from_settings(svc.settings))
        assert set(objects) == _expected_keys(before) and len(objects) == 7

        archive = tmp_path / "city.tar.gz"
        env = {"GRIDFLOW_DATABASE_URL": sqlite_db.url_with_password, "GRIDFLOW_S3_ENDPOINT": endpoint,
               "GRIDFLOW_UPLOADS": str(tmp_path / "uploads-unused")}
        r = _gridflow({**env, "GRIDFLOW_STORAGE": f"s3://gridflow/{source_prefix}"}, "backup", str(archive))
        assert r.exit_code == 0 and "7 upload(s)" in r.output, r.output
        assert backup.read_manifest(archive)["note"]["store"].startswith(f"s3://gridflow/{source_prefix}/")

        target = f"sqlite:///{tmp_path / 'restored.sqlite'}"  # an empty database and an empty prefix
        r = _gridflow({**env, "GRIDFLOW_DATABASE_URL": target, "GRIDFLOW_STORAGE": f"s3://gridflow/{target_prefix}"},
                      "restore", str(archive))
        assert r.exit_code == 0 and "7 upload(s)" in r.output, r.output
        assert _objects(storage.S3Store("gridflow", target_prefix, endpoint=endpoint)) == objects
        db2 = Database(target)
        try:
            assert _snapshot(db2) == before
        finally:
            db2.dispose()
    assert not (tmp_path / "uploads-unused").exists()


def test_a_bad_storage_setting_is_refused_by_name(sqlite_db, tmp_path, monkeypatch):
    _clear_gridflow_env(monkeypatch)
    r = _gridflow({"GRIDFLOW_DATABASE_URL": sqlite_db.url_with_password, "GRIDFLOW_STORAGE": "/mnt/share"},
                  "backup", str(tmp_path / "x.tar.gz"))
    assert r.exit_code == 1 and "GRIDFLOW_STORAGE" in r.output and not (tmp_path / "x.tar.gz").exists()
