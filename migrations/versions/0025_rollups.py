"""Indicator totals per unit subtree and period bucket (issue 11): `indicator_total`, kept in step
with `indicator_rollup` by triggers (grid/cases/rollups.py), filled from the rows already there.

Revision ID: 0025_rollups
Revises: 0024_perf
"""
import sqlalchemy as sa
from alembic import op
from sqlalchemy.orm import Session

revision = "0025_rollups"
down_revision = "0024_perf"
branch_labels = None
depends_on = None


def upgrade() -> None:
    from grid.cases import rollups

    bind = op.get_bind()
    op.create_table(
        "indicator_total",
        sa.Column("scope", sa.String(length=20), nullable=False),
        sa.Column("bucket", sa.String(length=1), nullable=False),
        sa.Column("period_start", sa.Date(), nullable=False),
        sa.Column("category", sa.String(length=20), nullable=False),
        sa.Column("level", sa.String(length=20), nullable=False),
        sa.Column("measure", sa.String(length=40), nullable=False),
        sa.Column("value", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("scope", "bucket", "period_start", "category", "level", "measure",
                                name=op.f("pk_indicator_total")),
    )
    for stmt in rollups.trigger_ddl(bind.dialect.name):
        op.execute(stmt)
    s = Session(bind=bind)
    rollups.rebuild(s)
    s.flush()


def downgrade() -> None:
    from grid.cases import rollups

    for stmt in rollups.drop_ddl(op.get_bind().dialect.name):
        op.execute(stmt)
    op.drop_table("indicator_total")
