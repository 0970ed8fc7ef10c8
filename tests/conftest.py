"""Shared fixtures: real SQLite files and a real PostgreSQL database, never mocks.

Every test that takes `db` runs on both backends. PostgreSQL comes from
GRIDFLOW_TEST_PG_URL (set by .ci/run), else the local server at 127.0.0.1:5432 if it
answers. With GRIDFLOW_REQUIRE_PG=1 (CI) a missing server is an error, not a skip.
"""
from __future__ import annotations

import os
import shutil
import uuid
from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text

from engine import clock
from engine.db import Database
from engine.migrate import upgrade

ROOT = Path(__file__).resolve().parent.parent
FIXTURES = Path(__file__).resolve().parent / "fixtures"
PG_DEFAULT = "postgresql://postgres@127.0.0.1:5432/test"


def _pg_base_url() -> str | None:
    url = os.environ.get("GRIDFLOW_TEST_PG_URL")
    candidates = [url] if url else [PG_DEFAULT]
    for u in candidates:
        try:
            eng = create_engine(u.replace("postgresql://", "postgresql+psycopg://", 1),
                                connect_args={"connect_timeout": 3})
            with eng.connect() as c:
                c.execute(text("select 1"))
            eng.dispose()
            return u
        except Exception:  # noqa: BLE001
            if os.environ.get("GRIDFLOW_REQUIRE_PG") == "1":
                raise
    return None


def _admin(url: str):
    return create_engine(url.replace("postgresql://", "postgresql+psycopg://", 1), isolation_level="AUTOCOMMIT")


@pytest.fixture(scope="session")
def pg_url(request):
    base = _pg_base_url()
    if base is None:
        pytest.skip("PostgreSQL is not reachable (set GRIDFLOW_TEST_PG_URL); CI runs these")
    name = f"gridflow_t_{os.getpid()}_{uuid.uuid4().hex[:6]}"
    admin = _admin(base)
    with admin.connect() as c:
        c.execute(text(f'CREATE DATABASE "{name}"'))
    url = base.rsplit("/", 1)[0] + "/" + name
    db = Database(url)
    upgrade(db)
    db.dispose()
    yield url
    with admin.connect() as c:
        c.execute(text(f"SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = '{name}' "
                       "AND pid <> pg_backend_pid()"))
        c.execute(text(f'DROP DATABASE IF EXISTS "{name}"'))
    admin.dispose()


@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("tpl") / "template.sqlite"
    db = Database(f"sqlite:///{path}")
    upgrade(db)
    with db.engine.connect() as c:
        c.exec_driver_sql("PRAGMA wal_checkpoint(TRUNCATE)")
    db.dispose()
    return path


def _truncate_all(url: str) -> None:
    eng = _admin(url)
    from grid.schema import metadata

    names = ", ".join(f'"{t.name}"' for t in metadata().sorted_tables)
    with eng.connect() as c:
        c.execute(text(f"TRUNCATE {names} RESTART IDENTITY CASCADE"))
    eng.dispose()


@pytest.fixture(params=["sqlite", "postgresql"])
def db_url(request, tmp_path, sqlite_template) -> str:
    if request.param == "sqlite":
        path = tmp_path / "gridflow.sqlite"
        shutil.copy(sqlite_template, path)
        return f"sqlite:///{path}"
    url = request.getfixturevalue("pg_url")
    _truncate_all(url)
    return url


@pytest.fixture
def db(db_url):
    database = Database(db_url)
    yield database
    database.dispose()


@pytest.fixture
def sqlite_db(tmp_path, sqlite_template):
    path = tmp_path / "gridflow.sqlite"
    shutil.copy(sqlite_template, path)
    database = Database(f"sqlite:///{path}")
    yield database
    database.dispose()


@pytest.fixture
def fake_clock():
    c = clock.install_fake(datetime(2026, 1, 5, 8, 0, tzinfo=UTC))  # Monday 16:00 in Beijing
    yield c
    clock.set_source(None)


@pytest.fixture
def pg_db(pg_url):
    """PostgreSQL only, for behaviour SQLite does not have (SKIP LOCKED, concurrent writers)."""
    _truncate_all(pg_url)
    database = Database(pg_url)
    yield database
    database.dispose()


@pytest.fixture
def svc(db):
    """Services over `db` with ./workflows deployed and the small demo city generated."""
    from grid.cases.scenario import prepare

    return prepare(db, ROOT / "workflows", ROOT / "forms")
