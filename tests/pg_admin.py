"""Creating and dropping scratch PostgreSQL databases, for the test fixtures and the benchmarks alike
(no pytest here, so bench/ can import it)."""
from __future__ import annotations

import os

from sqlalchemy import create_engine, text
from sqlalchemy.engine import Engine

PG_DEFAULT = "postgresql://postgres@127.0.0.1:5432/test"


def pg_base_url() -> str | None:
    """GRIDFLOW_TEST_PG_URL (else the local server) if it answers; None if not, unless
    GRIDFLOW_REQUIRE_PG=1 (CI), where an unreachable server is an error."""
    url = os.environ.get("GRIDFLOW_TEST_PG_URL") or PG_DEFAULT
    try:
        eng = create_engine(url.replace("postgresql://", "postgresql+psycopg://", 1), connect_args={"connect_timeout": 3})
        with eng.connect() as c:
            c.execute(text("select 1"))
        eng.dispose()
        return url
    except Exception:  # noqa: BLE001 - unreachable, for whatever reason
        if os.environ.get("GRIDFLOW_REQUIRE_PG") == "1":
            raise
        return None


def admin_engine(url: str) -> Engine:
    """An AUTOCOMMIT engine on a PostgreSQL server URL (CREATE/DROP DATABASE cannot run in a transaction)."""
    return create_engine(url.replace("postgresql://", "postgresql+psycopg://", 1), isolation_level="AUTOCOMMIT")


def create_database(base: str, name: str, replace: bool = False) -> str:
    """Create database `name` on the server of `base` (dropping one of that name first if `replace`); its URL."""
    admin = admin_engine(base)
    with admin.connect() as c:
        if replace:
            c.execute(text(f'DROP DATABASE IF EXISTS "{name}"'))
        c.execute(text(f'CREATE DATABASE "{name}"'))
    admin.dispose()
    return base.rsplit("/", 1)[0] + "/" + name


def drop_database(base: str, name: str) -> None:
    """Drop database `name`, ending the sessions still connected to it first."""
    admin = admin_engine(base)
    with admin.connect() as c:
        c.execute(text("SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                       "WHERE datname = :n AND pid <> pg_backend_pid()"), {"n": name})
        c.execute(text(f'DROP DATABASE IF EXISTS "{name}"'))
    admin.dispose()
