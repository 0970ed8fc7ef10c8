"""Alembic environment: runs against the connection handed in by engine.migrate, or a URL."""
from alembic import context

import engine.models  # noqa: F401
import engine.version_models  # noqa: F401
import grid.cases.models  # noqa: F401  - the domain tables share the history
import grid.org.models  # noqa: F401
import grid.registry.models  # noqa: F401
from engine.db import Base, make_engine

config = context.config
target_metadata = Base.metadata


def run() -> None:
    connection = config.attributes.get("connection")
    if connection is not None:
        context.configure(connection=connection, target_metadata=target_metadata, render_as_batch=True)
        with context.begin_transaction():
            context.run_migrations()
        return
    eng = make_engine(config.get_main_option("sqlalchemy.url"))
    with eng.connect() as conn:
        context.configure(connection=conn, target_metadata=target_metadata, render_as_batch=True)
        with context.begin_transaction():
            context.run_migrations()


run()
