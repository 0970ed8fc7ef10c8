"""Alembic migrations for every Gridflow table (engine and domain share one history)."""
