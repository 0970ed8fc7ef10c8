"""Run Alembic migrations programmatically (the CLI and the tests use this)."""
from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.script import ScriptDirectory

from .db import Database
from .errors import EngineError


class NoSchema(EngineError):
    """The database has not been set up (or is behind the code): commands must not run on it."""

MIGRATIONS = Path(__file__).resolve().parent.parent / "migrations"


def _config() -> Config:
    cfg = Config(str(MIGRATIONS / "alembic.ini"))
    cfg.set_main_option("script_location", str(MIGRATIONS))
    cfg.set_main_option("version_locations", str(MIGRATIONS / "versions"))
    cfg.set_main_option("path_separator", "os")
    return cfg


def upgrade(db: Database, revision: str = "head", progress: Callable[[int, int, str], None] | None = None) -> None:
    """Upgrade the database one revision at a time, reporting progress."""
    cfg = _config()
    script = ScriptDirectory.from_config(cfg)
    revs = list(reversed(list(script.walk_revisions("base", "heads"))))
    with db.engine.connect() as conn:
        from alembic.runtime.migration import MigrationContext
        current = MigrationContext.configure(conn).get_current_revision()
    ids = [r.revision for r in revs]
    start = ids.index(current) + 1 if current in ids else 0
    todo = ids[start:] if revision == "head" else ids[start: ids.index(revision) + 1]
    for i, rev in enumerate(todo, 1):
        with db.engine.begin() as conn:
            cfg.attributes["connection"] = conn
            command.upgrade(cfg, rev)
        if progress:
            progress(i, len(todo), rev)


def current(db: Database) -> str | None:
    from alembic.runtime.migration import MigrationContext
    with db.engine.connect() as conn:
        return MigrationContext.configure(conn).get_current_revision()


def require_schema(db: Database) -> None:
    """Raise NoSchema with what to do, instead of a "no such table" traceback later, when the
    database has no schema or is not at the newest revision."""
    cur = current(db)
    script = ScriptDirectory.from_config(_config())
    head = script.get_current_head()
    if cur is None:
        raise NoSchema(f"the database has no schema: run gridflow db upgrade ({db.engine.url.render_as_string()})")
    if cur != head:
        raise NoSchema(f"the database schema is at revision {cur}, the code needs {head}: run gridflow db upgrade")


def exit_if_no_schema(db: Database) -> None:
    """For command-line entry points: exit with status 1 and the message, not a traceback."""
    try:
        require_schema(db)
    except NoSchema as e:
        raise SystemExit(f"error: {e}") from None
