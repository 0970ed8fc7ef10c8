"""Every table Gridflow keeps, in one import: Alembic's environment, the schema test and the
test fixtures all need the complete metadata, and a table module forgotten in one of them would
make that one disagree with the others."""
from __future__ import annotations

from engine.db import Base

MODEL_MODULES = (
    "engine.models",
    "engine.version_models",
    "engine.outbox",
    "grid.org.models",
    "grid.org.api_clients",
    "grid.cases.models",
    "grid.cases.rollups",
    "grid.cases.notification_models",
    "grid.cases.accountability_models",
    "grid.cases.routing",
    "grid.registry.models",
    "grid.registry.counts",
)


def metadata():
    """Base.metadata with every model module imported."""
    import importlib

    for name in MODEL_MODULES:
        importlib.import_module(name)
    return Base.metadata


def managed(name: str | None, type_: str, parent_names: dict) -> bool:
    """Alembic's `include_name`: leave out what the database makes for itself (SQLite's FTS5
    shadow tables behind the archive's full-text index), which no model describes."""
    return not (type_ == "table" and name is not None and name.startswith("case_fts"))
