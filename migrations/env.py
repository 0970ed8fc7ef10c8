"""Alembic environment: runs against the connection handed in by engine.migrate, or a URL."""
from alembic import context

from engine.db import make_engine
from grid.schema import managed, metadata

config = context.config
target_metadata = metadata()  # the engine's and the domain's tables share one history


def run() -> None:
    connection = config.attributes.get("connection")
    if connection is not None:
        context.configure(connection=connection, target_metadata=target_metadata, render_as_batch=True,
                          include_name=managed)
        with context.begin_transaction():
            context.run_migrations()
        return
    eng = make_engine(config.get_main_option("sqlalchemy.url"))
    with eng.connect() as conn:
        context.configure(connection=conn, target_metadata=target_metadata, render_as_batch=True,
                          include_name=managed)
        with context.begin_transaction():
            context.run_migrations()


run()
