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
from sqlalchemy import text

from engine import clock
from engine.db import Database
from engine.migrate import upgrade
from tests.pg_admin import admin_engine, create_database, drop_database, pg_base_url
from tests.server_helpers import DATA_KEY  # noqa: F401 - sets the data key shared with the servers tests start

ROOT = Path(__file__).resolve().parent.parent
FIXTURES = Path(__file__).resolve().parent / "fixtures"


_pg_base_url = pg_base_url  # tests/db_helpers.py and older imports name it so


@pytest.fixture(scope="session")
def pg_url(request):
    base = _pg_base_url()
    if base is None:
        pytest.skip("PostgreSQL is not reachable (set GRIDFLOW_TEST_PG_URL); CI runs these")
    name = f"gridflow_t_{os.getpid()}_{uuid.uuid4().hex[:6]}"
    url = create_database(base, name)
    db = Database(url)
    upgrade(db)
    db.dispose()
    yield url
    drop_database(base, name)


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
    eng = admin_engine(url)
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


@pytest.fixture
def app_svc(svc):
    """The services the `app` fixture serves: `svc`. A module that needs more before the app is
    made (a listener installed, boundaries filled, a bare database) overrides this fixture."""
    return svc


@pytest.fixture
def app_config() -> dict:
    """Extra Flask config for the `app` fixture; a module overrides it to add some."""
    return {}


@pytest.fixture
def app(app_svc, app_config, tmp_path):
    """The Flask app over `app_svc` (uploads under tmp_path), for the tests that drive pages."""
    from tests.web_helpers import make_app

    return make_app(app_svc, tmp_path, **app_config)


@pytest.fixture
def reg(fake_clock, svc):
    """`svc` with the registry's visit listener installed (the registry and security tests)."""
    from grid.registry import visits

    visits.install(svc)
    return svc
