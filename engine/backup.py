"""Backup and restore: one tar.gz holding a consistent copy of the database, the uploads
directory and a manifest, made while the server keeps running.

- SQLite: the online backup API (`sqlite3.Connection.backup`) copies a consistent snapshot
  page by page, even with writers in WAL mode.
- PostgreSQL: `pg_dump --format=custom` (one snapshot transaction, so consistent as well);
  restored with `pg_restore --no-owner` into an empty database.

The database is copied first, the uploads after: uploads are written before the row that names
them commits and never change, so every attachment the snapshot knows is in the archive (files
uploaded meanwhile are extra and harmless). The manifest lists the schema revision, each table's
row count (checked after a restore) and every file with its size and SHA-256.

Attachments kept in an object store (S3-compatible, `grid.storage`) are included when the caller
passes the store instead of a directory: anything with `keys()` (key, modified) and `get(key)`
for a backup, `put(key, data)` for a restore. They are copied through a temporary directory, so
the host needs room for them; for a large bucket, back it up with its own tools (versioning,
replication, `rclone`/`mc mirror`) and leave it out (docs/storage.md).

Generic: knows no table of the domain. `restore` refuses a database that already has tables
unless told to overwrite (SQLite only); the PostgreSQL target must be empty.
"""
from __future__ import annotations

import hashlib
import io
import json
import os
import shutil
import sqlite3
import subprocess
import tarfile
import tempfile
from collections.abc import Callable
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path

from sqlalchemy import func, inspect, select, table
from sqlalchemy.engine import make_url
from sqlalchemy.exc import OperationalError

FORMAT = 1
Progress = Callable[[int, int, str], None]


class BackupError(RuntimeError):
    """A backup or restore that cannot be done (a tool missing, a target not empty, a bad archive)."""


def _libpq_url(url: str) -> str:
    u = make_url(url)
    return u.set(drivername="postgresql").render_as_string(hide_password=False)


def _sqlite_path(url: str) -> Path:
    path = make_url(url).database
    if not path or path == ":memory:":
        raise BackupError("an in-memory SQLite database cannot be backed up")
    return Path(path)


def table_counts(db) -> dict[str, int | None]:
    """Rows per table (every table the database has, alembic's too); None for a table that
    cannot be scanned (e.g. a contentless SQLite full-text index: its shadow tables count)."""
    out: dict[str, int | None] = {}
    with db.engine.connect() as c:
        for n in sorted(inspect(c).get_table_names()):
            try:
                with c.begin_nested() if db.dialect == "postgresql" else _nothing():
                    out[n] = int(c.execute(select(func.count()).select_from(table(n))).scalar() or 0)
            except OperationalError:
                out[n] = None
    return out


@contextmanager
def _nothing():
    yield


def _revision(db) -> str | None:
    from alembic.runtime.migration import MigrationContext

    with db.engine.connect() as c:
        return MigrationContext.configure(c).get_current_revision()


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(1 << 20):
            h.update(chunk)
    return h.hexdigest()


def _dump_database(db, work: Path) -> str:
    """Write the snapshot into `work`; its file name in the archive."""
    if db.dialect == "sqlite":
        out = work / "database.sqlite"
        src = sqlite3.connect(str(_sqlite_path(db.url_with_password)))
        dst = sqlite3.connect(str(out))
        try:
            with dst:
                src.backup(dst, pages=1024)
        finally:
            dst.close()
            src.close()
        return out.name
    if db.dialect == "postgresql":
        tool = shutil.which("pg_dump")
        if tool is None:
            raise BackupError("pg_dump is not installed (apt-get install postgresql-client)")
        out = work / "database.pgdump"
        done = subprocess.run([tool, "--format=custom", "--no-owner", "--no-privileges", "--file", str(out),
                               "--dbname", _libpq_url(db.url_with_password)], capture_output=True, text=True)
        if done.returncode != 0:
            raise BackupError(f"pg_dump failed: {done.stderr.strip()[:500]}")
        return out.name
    raise BackupError(f"no backup method for {db.dialect}")


def _is_store(uploads) -> bool:
    return uploads is not None and not isinstance(uploads, str | os.PathLike) and hasattr(uploads, "keys")


def backup(db, archive: Path, uploads=None, *, note: dict | None = None,
           progress: Progress | None = None) -> dict:
    """Write a backup of `db` (and the `uploads` directory or object store, if any) to `archive` (.tar.gz);
    returns the manifest."""
    progress = progress or (lambda done, total, note="": None)
    archive = Path(archive)
    archive.parent.mkdir(parents=True, exist_ok=True)
    files: list[tuple[Path, str]] = []
    with tempfile.TemporaryDirectory(prefix="gridflow-backup-") as tmp:
        work = Path(tmp)
        progress(0, 3, "database")
        counts = table_counts(db)
        name = _dump_database(db, work)
        progress(1, 3, "uploads")
        if _is_store(uploads):  # an object store: its objects into the work directory first
            for key, _modified in sorted(uploads.keys()):
                dest = work / "store" / key
                if key.endswith(".part") or work / "store" not in dest.resolve().parents:
                    continue
                dest.parent.mkdir(parents=True, exist_ok=True)
                dest.write_bytes(uploads.get(key))
            uploads = work / "store"
        if uploads and Path(uploads).is_dir():
            root = Path(uploads)
            files = [(p, "uploads/" + p.relative_to(root).as_posix()) for p in sorted(root.rglob("*")) if p.is_file()]
        manifest = {
            "format": FORMAT, "created_at": datetime.now(UTC).isoformat(), "dialect": db.dialect,
            "revision": _revision(db), "database": {"file": name, "sha256": _sha256(work / name)},
            "tables": counts, "note": note or {},
            "uploads": [{"path": arc, "size": p.stat().st_size, "sha256": _sha256(p)} for p, arc in files],
        }
        partial = archive.with_name(archive.name + ".part")
        with tarfile.open(partial, "w:gz") as tar:
            data = json.dumps(manifest, ensure_ascii=False, indent=1).encode()
            info = tarfile.TarInfo("manifest.json")
            info.size, info.mtime = len(data), int(datetime.now(UTC).timestamp())
            tar.addfile(info, io.BytesIO(data))
            tar.add(work / name, arcname=name)
            for i, (p, arc) in enumerate(files, 1):
                tar.add(p, arcname=arc)
                if i % 100 == 0:
                    progress(1, 3, f"uploads {i}/{len(files)}")
        os.replace(partial, archive)
    progress(3, 3, "done")
    return manifest


def read_manifest(archive: Path) -> dict:
    with tarfile.open(archive, "r:gz") as tar:
        member = tar.extractfile("manifest.json")
        if member is None:
            raise BackupError("not a Gridflow backup: no manifest.json")
        return json.loads(member.read())


def _empty(url: str) -> bool:
    from .db import Database

    db = Database(url)
    try:
        with db.engine.connect() as c:
            return not inspect(c).get_table_names()
    finally:
        db.dispose()


def restore(archive: Path, database_url: str, uploads: Path | None = None, *, overwrite: bool = False,
            progress: Progress | None = None) -> dict:
    """Put a backup back: the database into `database_url` (which must be empty, or for SQLite
    `overwrite`), the uploads into `uploads`. Checks every checksum and, afterwards, every
    table's row count against the manifest. Returns the manifest."""
    progress = progress or (lambda done, total, note="": None)
    manifest = read_manifest(archive)
    if manifest.get("format") != FORMAT:
        raise BackupError(f"unknown backup format {manifest.get('format')!r}")
    dialect = make_url(database_url).get_backend_name()
    if dialect != manifest["dialect"]:
        raise BackupError(f"the backup is of a {manifest['dialect']} database, the target is {dialect}")
    with tempfile.TemporaryDirectory(prefix="gridflow-restore-") as tmp:
        work = Path(tmp)
        with tarfile.open(archive, "r:gz") as tar:
            tar.extractall(work, filter="data")
        dump = work / manifest["database"]["file"]
        if _sha256(dump) != manifest["database"]["sha256"]:
            raise BackupError("the database copy in the archive is damaged (checksum)")
        for f in manifest["uploads"]:
            if _sha256(work / f["path"]) != f["sha256"]:
                raise BackupError(f"{f['path']} in the archive is damaged (checksum)")
        progress(1, 3, "database")
        if dialect == "sqlite":
            target = _sqlite_path(database_url)
            if target.exists() and not overwrite and not _empty(database_url):
                raise BackupError(f"{target} already holds a database (restore into a new file, or overwrite)")
            target.parent.mkdir(parents=True, exist_ok=True)
            for suffix in ("-wal", "-shm"):
                Path(str(target) + suffix).unlink(missing_ok=True)
            shutil.copyfile(dump, target)
        else:
            if not _empty(database_url):
                raise BackupError("the target PostgreSQL database is not empty (create a fresh one)")
            tool = shutil.which("pg_restore")
            if tool is None:
                raise BackupError("pg_restore is not installed (apt-get install postgresql-client)")
            done = subprocess.run([tool, "--no-owner", "--no-privileges", "--exit-on-error", "--dbname",
                                   _libpq_url(database_url), str(dump)], capture_output=True, text=True)
            if done.returncode != 0:
                raise BackupError(f"pg_restore failed: {done.stderr.strip()[:500]}")
        progress(2, 3, "uploads")
        if _is_store(uploads):
            for f in manifest["uploads"]:
                uploads.put(f["path"][len("uploads/"):], (work / f["path"]).read_bytes())
        elif uploads is not None and manifest["uploads"]:
            root = Path(uploads)
            for f in manifest["uploads"]:
                dest = root / f["path"][len("uploads/"):]
                dest.parent.mkdir(parents=True, exist_ok=True)
                shutil.copyfile(work / f["path"], dest)
    from .db import Database

    db = Database(database_url)
    try:
        counts = table_counts(db)
    finally:
        db.dispose()
    if counts != manifest["tables"]:
        diff = {k: (manifest["tables"].get(k), counts.get(k)) for k in set(counts) | set(manifest["tables"])
                if counts.get(k) != manifest["tables"].get(k)}
        raise BackupError(f"restored row counts differ from the backup's: {diff}")
    progress(3, 3, "done")
    return manifest
