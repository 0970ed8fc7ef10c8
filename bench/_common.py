"""What several benchmarks share: a scratch database of one dialect (a SQLite file in a temporary folder,
or a PostgreSQL database created on a server and dropped after), so each benchmark runs on its own data
and leaves nothing behind."""
from __future__ import annotations

import os
import shutil
import tempfile

from tests.pg_admin import admin_engine, create_database, drop_database

PG_DEFAULT = "postgresql://postgres@127.0.0.1:5432/test"

__all__ = ["PG_DEFAULT", "Scratch", "admin_engine"]


class Scratch:
    """A scratch database: `url`, and for SQLite `tmp` (the folder) and `path` (the file); `close()` removes it.

    `prefix` names the folder (`<prefix>_…`) and the PostgreSQL database (`<prefix>_<pid>`).
    """

    def __init__(self, dialect: str, pg_base: str | None, prefix: str, filename: str = "bench.sqlite"):
        self.dialect, self.pg_base = dialect, pg_base
        self.tmp: str | None = None
        self.pg_name: str | None = None
        if dialect == "sqlite":
            self.tmp = tempfile.mkdtemp(prefix=f"{prefix}_")
            self.path = os.path.join(self.tmp, filename)
            self.url = f"sqlite:///{self.path}"
        else:
            self.pg_name = f"{prefix}_{os.getpid()}"
            self.url = create_database(pg_base, self.pg_name, replace=True)

    def close(self) -> None:
        """Remove the folder or drop the database (dispose of engines on it first)."""
        if self.tmp:
            shutil.rmtree(self.tmp, ignore_errors=True)
        if self.pg_name:
            drop_database(self.pg_base, self.pg_name)
