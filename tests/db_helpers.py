"""Scratch databases for tests that need their own (e.g. a module-scoped demo city).

PostgreSQL is found the way tests/conftest.py finds it (GRIDFLOW_TEST_PG_URL, else the local
server); with GRIDFLOW_REQUIRE_PG=1 a missing server is an error, not a skip.
"""
from __future__ import annotations

import uuid
from collections.abc import Iterator
from contextlib import contextmanager

import pytest
from sqlalchemy import text

from engine.db import Base, Database, make_engine
from tests.conftest import _pg_base_url
from tests.pg_admin import admin_engine

PG_URL = _pg_base_url()
BACKENDS = [
    "sqlite",
    pytest.param("postgresql", marks=pytest.mark.skipif(not PG_URL, reason="PostgreSQL is not reachable")),
]


@contextmanager
def fresh_db(backend: str, tmp_dir) -> Iterator[Database]:
    """An empty database with every mapped table: a SQLite file, or a scratch PostgreSQL schema."""
    import engine.version_models  # noqa: F401
    import grid.cases.models  # noqa: F401
    import grid.org.models  # noqa: F401
    import grid.registry.models  # noqa: F401

    if backend == "sqlite":
        db = Database(f"sqlite:///{tmp_dir}/t.sqlite")
        Base.metadata.create_all(db.engine)
        try:
            yield db
        finally:
            db.dispose()
        return
    schema = f"t_{uuid.uuid4().hex[:10]}"
    admin = admin_engine(PG_URL)
    with admin.connect() as c:
        c.execute(text(f'CREATE SCHEMA "{schema}"'))
    db = Database(engine=make_engine(PG_URL, connect_args={"options": f"-c search_path={schema}"}))
    try:
        Base.metadata.create_all(db.engine)
        yield db
    finally:
        db.dispose()
        with admin.connect() as c:
            c.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
        admin.dispose()
