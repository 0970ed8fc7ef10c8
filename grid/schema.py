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
    "grid.cases.routing",
    "grid.registry.models",
)


def metadata():
    """Base.metadata with every model module imported."""
    import importlib

    for name in MODEL_MODULES:
        importlib.import_module(name)
    return Base.metadata
