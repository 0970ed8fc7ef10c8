"""The Alembic history builds exactly the schema the models describe, on both databases."""
from __future__ import annotations

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext

import engine.models  # noqa: F401
import engine.version_models  # noqa: F401
import grid.cases.models  # noqa: F401
import grid.org.models  # noqa: F401
import grid.registry.models  # noqa: F401
from engine.db import Base
from engine.migrate import current


def test_migrated_schema_matches_models(db):
    assert current(db) is not None
    with db.engine.connect() as conn:
        diff = compare_metadata(MigrationContext.configure(conn), Base.metadata)
    assert diff == [], diff
