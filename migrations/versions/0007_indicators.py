"""Indicator rollup: running totals per unit, day, category, level and measure.

After upgrading a database that already holds cases, run `gridflow indicators rebuild` once to
fill the table from the case records.

Revision ID: 0007_indicators
Revises: 0006_sessions_audit
"""

import sqlalchemy as sa
from alembic import op

revision = "0007_indicators"
down_revision = "0006_sessions_audit"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "indicator_rollup",
        sa.Column("unit_code", sa.String(length=20), nullable=False),
        sa.Column("day", sa.Date(), nullable=False),
        sa.Column("category", sa.String(length=20), nullable=False),
        sa.Column("level", sa.String(length=20), nullable=False),
        sa.Column("measure", sa.String(length=40), nullable=False),
        sa.Column("value", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("unit_code", "day", "category", "level", "measure", name=op.f("pk_indicator_rollup")),
    )
    op.create_index("ix_indicator_rollup_day_unit", "indicator_rollup", ["day", "unit_code"], unique=False)


def downgrade() -> None:
    op.drop_index("ix_indicator_rollup_day_unit", table_name="indicator_rollup")
    op.drop_table("indicator_rollup")
