"""Registry counts per grid (issue 14, the registry for leaders): `registry_count`, kept in step
by triggers on building, household, resident and special_flag (grid/registry/counts.py), filled
from the rows already there.
"""
import sqlalchemy as sa
from alembic import op
from sqlalchemy.orm import Session

revision = "0024_perf"
down_revision = "0022_maps_intake"


def upgrade() -> None:
    from grid.registry import counts

    bind = op.get_bind()
    op.create_table(
        "registry_count",
        sa.Column("grid_code", sa.String(length=20), nullable=False),
        sa.Column("buildings", sa.Integer(), nullable=False),
        sa.Column("households", sa.Integer(), nullable=False),
        sa.Column("residents", sa.Integer(), nullable=False),
        sa.Column("flags", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("grid_code", name=op.f("pk_registry_count")),
    )
    for stmt in counts.trigger_ddl(bind.dialect.name):
        op.execute(stmt)
    s = Session(bind=bind)
    counts.rebuild(s)
    s.flush()


def downgrade() -> None:
    from grid.registry import counts

    for stmt in counts.drop_ddl(op.get_bind().dialect.name):
        op.execute(stmt)
    op.drop_table("registry_count")
