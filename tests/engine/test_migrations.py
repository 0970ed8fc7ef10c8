"""The Alembic history builds exactly the schema the models describe, on both databases."""
from __future__ import annotations

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext

from engine.migrate import current
from grid.schema import managed, metadata


def test_migrated_schema_matches_models(db):
    assert current(db) is not None
    with db.engine.connect() as conn:
        diff = compare_metadata(MigrationContext.configure(conn, opts={"include_name": managed}), metadata())
    assert diff == [], diff
