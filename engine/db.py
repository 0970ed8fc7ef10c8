"""Database plumbing: the declarative base, engines for SQLite and PostgreSQL, sessions.

SQLite runs in WAL mode. Write steps open with BEGIN IMMEDIATE so that two writers
serialise instead of failing on a snapshot upgrade; reads stay deferred.
"""
from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime

from sqlalchemy import DateTime, MetaData, create_engine, event
from sqlalchemy.engine import Engine
from sqlalchemy.orm import DeclarativeBase, Session, sessionmaker
from sqlalchemy.types import TypeDecorator

from . import clock

NAMING = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING)


class UTCDateTime(TypeDecorator):
    """Stores aware datetimes as UTC; always hands back aware UTC (SQLite forgets the zone)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect):
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to a UTC column")
        value = value.astimezone(clock.UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value, dialect):
        return clock.to_utc(value)


def default_url() -> str:
    return os.environ.get("GRIDFLOW_DATABASE_URL", "sqlite:///instance/gridflow.sqlite")


def make_engine(url: str | None = None, **kw) -> Engine:
    """Create an engine with the pragmas and pool settings Gridflow relies on."""
    url = url or default_url()
    # statement parameters (ID numbers, phones) must never reach an exception text or a log line
    kw.setdefault("hide_parameters", True)
    if url.startswith("postgresql://"):
        url = "postgresql+psycopg://" + url[len("postgresql://"):]
    if url.startswith("sqlite"):
        path = url.split("///", 1)[1] if "///" in url else ""
        if path and path != ":memory:":
            os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
        eng = create_engine(url, connect_args={"timeout": 30, "check_same_thread": False}, **kw)

        @event.listens_for(eng, "connect")
        def _on_connect(dbapi_conn, _rec):
            dbapi_conn.isolation_level = None  # we issue BEGIN ourselves
            cur = dbapi_conn.cursor()
            cur.execute("PRAGMA journal_mode=WAL")
            cur.execute("PRAGMA synchronous=NORMAL")
            cur.execute("PRAGMA foreign_keys=ON")
            cur.execute("PRAGMA busy_timeout=30000")
            cur.close()

        @event.listens_for(eng, "begin")
        def _on_begin(conn):
            if conn.get_execution_options().get("gridflow_write"):
                conn.exec_driver_sql("BEGIN IMMEDIATE")
            else:
                conn.exec_driver_sql("BEGIN")

        return eng
    kw.setdefault("pool_size", 10)
    kw.setdefault("max_overflow", 20)
    kw.setdefault("pool_recycle", 1800)  # no pre-ping: it costs a round trip per checkout
    # JIT compilation cost 82-181 ms on the app's short indexed queries (issue 16): off
    args = dict(kw.pop("connect_args", None) or {})
    args["options"] = (args.get("options", "") + " -c jit=off").strip()
    return create_engine(url, connect_args=args, **kw)


class Database:
    """An engine plus session factories for reads and for write steps."""

    def __init__(self, url: str | None = None, engine: Engine | None = None):
        self.engine = engine or make_engine(url)
        self.url = str(self.engine.url)
        self.url_with_password = self.engine.url.render_as_string(hide_password=False)
        self.dialect = self.engine.dialect.name
        self._read = sessionmaker(self.engine, expire_on_commit=False)
        self._write = sessionmaker(
            self.engine.execution_options(gridflow_write=True), expire_on_commit=False
        )

    @contextmanager
    def read(self) -> Iterator[Session]:
        """A read-only unit of work; objects stay usable (detached) after it ends."""
        with self._read() as s:
            yield s

    @contextmanager
    def write(self) -> Iterator[Session]:
        """One transaction: commit on success, roll back on any error."""
        with self._write() as s:
            with s.begin():
                yield s

    def dispose(self) -> None:
        self.engine.dispose()
