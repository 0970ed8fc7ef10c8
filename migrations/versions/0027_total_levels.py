"""Indicator totals only for township, county and city scopes, each also summed over every
category (category "*") (issue 11, grid/cases/rollups.py): the triggers are replaced and the
table recomputed from indicator_rollup. Villages, grids and departments now sum their rollup rows.

Revision ID: 0027_total_levels
Revises: 0026_phones
"""
from alembic import op

revision, down_revision = "0027_total_levels", "0026_phones"


def upgrade() -> None:
    from grid.cases import rollups

    rollups.reinstall(op.get_bind())


def downgrade() -> None:
    """Nothing: the table and its triggers are always those of the running code (0025 installs
    them from grid/cases/rollups.py), so there is no older layout to go back to."""
