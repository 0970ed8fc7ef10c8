"""The source of a case (grid_worker | hotline | window | open311 | api), and its per-source counts.

Existing cases all came from a grid worker's phone (the server default). The rollup gains the
per-source measures `reported_<source>` for them, so `gridflow indicators rebuild --check` agrees
right after the upgrade.

Revision ID: 0014_case_source
Revises: 0013_case_lists
"""
from __future__ import annotations

from collections import Counter
from datetime import timedelta

import sqlalchemy as sa
from alembic import op

from engine.db import UTCDateTime

revision = "0014_case_source"
down_revision = "0013_case_lists"
branch_labels = None
depends_on = None

SOURCES = ("grid_worker", "hotline", "window", "open311", "api")
BEIJING = timedelta(hours=8)  # Asia/Shanghai: no daylight saving since 1991

_case = sa.table("dispute_case", sa.column("grid_code", sa.String), sa.column("category", sa.String),
                 sa.column("reported_at", UTCDateTime()), sa.column("instance_id", sa.Integer),
                 sa.column("source", sa.String))
_rollup = sa.table("indicator_rollup", sa.column("unit_code", sa.String), sa.column("day", sa.Date),
                   sa.column("category", sa.String), sa.column("level", sa.String),
                   sa.column("measure", sa.String), sa.column("value", sa.BigInteger))


def upgrade() -> None:
    with op.batch_alter_table("dispute_case") as batch:
        batch.add_column(sa.Column("source", sa.String(length=20), server_default="grid_worker", nullable=False))
    conn = op.get_bind()
    totals: Counter = Counter()
    q = sa.select(_case.c.grid_code, _case.c.category, _case.c.reported_at, _case.c.source).where(
        _case.c.instance_id.is_not(None))
    for grid, category, at, source in conn.execute(q):
        day = (at.replace(tzinfo=None) - (at.utcoffset() or timedelta()) + BEIJING).date()
        totals[(grid, day, category, f"reported_{source}")] += 1
    rows = [{"unit_code": g, "day": d, "category": c, "level": "", "measure": m, "value": v}
            for (g, d, c, m), v in sorted(totals.items())]
    for i in range(0, len(rows), 1000):
        conn.execute(sa.insert(_rollup), rows[i:i + 1000])


def downgrade() -> None:
    op.get_bind().execute(sa.delete(_rollup).where(_rollup.c.measure.in_([f"reported_{s}" for s in SOURCES])))
    with op.batch_alter_table("dispute_case") as batch:
        batch.drop_column("source")
