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

Attachments are included when the caller passes their store (`grid.storage`: a local or shared
directory, or an S3-compatible bucket) instead of a directory: anything with `keys()` (key,
modified), `get(key)` and `local_path(key)` for a backup, `put(key, data)` for a restore. Every
object is copied, the renditions (thumbnails, screen sizes) as well as the originals. A store on
local disk is read in place; a bucket's objects go through a temporary directory, so the host
needs room for them; for a large bucket, back it up with its own tools (versioning, replication,
`rclone`/`mc mirror`) and leave it out (docs/storage.md).

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

from sqlalchemy import create_engine, func, inspect, select, table, text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import OperationalError
from sqlalchemy.pool import NullPool

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
    with db.engine.connect() as c:
        return _counts(c, db.dialect)


def _counts(c, dialect: str) -> dict[str, int | None]:
    out: dict[str, int | None] = {}
    for n in sorted(inspect(c).get_table_names()):
        try:
            with c.begin_nested() if dialect == "postgresql" else _nothing():
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


def _dump_database(db, work: Path, progress: Progress) -> tuple[str, dict[str, int | None]]:
    """Write one snapshot of the database into `work`: its file name in the archive and the row
    counts of that same snapshot (counted apart from it, a write in between would make the restore's
    check fail). `progress` is told when the copying starts."""
    if db.dialect == "sqlite":
        out = work / "database.sqlite"
        progress(0, 3, "database")
        src = sqlite3.connect(str(_sqlite_path(db.url_with_password)))
        dst = sqlite3.connect(str(out))
        try:
            with dst:
                src.backup(dst, pages=1024)  # starts again if another connection writes meanwhile
        finally:
            dst.close()
            src.close()
        copy = create_engine("sqlite://", creator=lambda: sqlite3.connect(f"file:{out}?immutable=1", uri=True),
                             poolclass=NullPool)
        try:
            with copy.connect() as c:
                return out.name, _counts(c, "sqlite")
        finally:
            copy.dispose()
    if db.dialect == "postgresql":
        tool = shutil.which("pg_dump")
        if tool is None:
            raise BackupError("pg_dump is not installed (apt-get install postgresql-client)")
        out = work / "database.pgdump"
        with db.engine.connect() as c, c.begin():
            # one snapshot for the counts and for pg_dump (it imports it while this transaction is open)
            c.execute(text("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY"))
            snapshot = c.execute(text("SELECT pg_export_snapshot()")).scalar()
            counts = _counts(c, "postgresql")
            progress(0, 3, "database")
            done = subprocess.run([tool, "--format=custom", "--no-owner", "--no-privileges", "--snapshot", snapshot,
                                   "--file", str(out), "--dbname", _libpq_url(db.url_with_password)],
                                  capture_output=True, text=True)
        if done.returncode != 0:
            raise BackupError(f"pg_dump failed: {done.stderr.strip()[:500]}")
        return out.name, counts
    raise BackupError(f"no backup method for {db.dialect}")


def _is_store(uploads) -> bool:
    return uploads is not None and not isinstance(uploads, str | os.PathLike) and hasattr(uploads, "keys")


def _store_files(store, work: Path) -> list[tuple[Path, str]]:
    """(file on disk, name in the archive) of every object of `store`: a store on local disk names
    its files (`local_path`), any other's objects are fetched into `work` first. Files being
    written (`.part`) and names that are no key of the store are left out."""
    out: list[tuple[Path, str]] = []
    try:
        for key, _modified in sorted(store.keys()):
            if key.endswith(".part"):
                continue
            try:
                local = store.local_path(key) if hasattr(store, "local_path") else None
            except KeyError:  # not a key the store would hand out (a stray file in its directory)
                continue
            if local is None:
                dest = work / key
                if work.resolve() not in dest.resolve().parents:
                    continue
                try:
                    data = store.get(key)
                except KeyError:  # removed since it was listed (the cleanup): nothing names it
                    continue
                dest.parent.mkdir(parents=True, exist_ok=True)
                dest.write_bytes(data)
                local = dest
            out.append((Path(local), "uploads/" + key))
    except Exception as e:  # the store's own errors (network, credentials) end the backup, named
        raise BackupError(f"reading the attachment store {getattr(store, 'description', '')} failed: {e}") from e
    return out


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
        name, counts = _dump_database(db, work, progress)
        progress(1, 3, "uploads")
        if _is_store(uploads):
            files = _store_files(uploads, work / "store")
        elif uploads and Path(uploads).is_dir():
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
                try:
                    uploads.put(f["path"][len("uploads/"):], (work / f["path"]).read_bytes())
                except Exception as e:
                    raise BackupError(f"writing {f['path']} into the attachment store "
                                      f"{getattr(uploads, 'description', '')} failed: {e!r}") from e
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
