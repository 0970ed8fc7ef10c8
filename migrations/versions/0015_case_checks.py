"""Case checks: the 现场化解情况 text on the case, and links between cases (重复件, both ways).

Existing 重复件 are linked to their originals (by case number) so both case pages list them.
The settlement text of cases settled on the spot before this revision stays in their workflow
state only (it is not backfilled), so their archive search entries are unchanged.

Revision ID: 0015_case_checks
Revises: 0014_case_source
"""
from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from engine.db import UTCDateTime

revision = "0015_case_checks"
down_revision = "0014_case_source"
branch_labels = None
depends_on = None

_case = sa.table("dispute_case", sa.column("id", sa.Integer), sa.column("case_no", sa.String),
                 sa.column("duplicate_of", sa.String), sa.column("archived_at", UTCDateTime()))
_link = sa.table("case_link", sa.column("from_case_id", sa.Integer), sa.column("to_case_id", sa.Integer),
                 sa.column("kind", sa.String), sa.column("at", UTCDateTime()), sa.column("actor", sa.String))


def upgrade() -> None:
    with op.batch_alter_table("dispute_case") as batch:
        batch.add_column(sa.Column("settlement", sa.Text(), nullable=True))
    op.create_table(
        "case_link",
        sa.Column("from_case_id", sa.Integer(), nullable=False),
        sa.Column("to_case_id", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(length=20), nullable=False),
        sa.Column("at", UTCDateTime(), nullable=False),
        sa.Column("actor", sa.String(length=100), nullable=True),
        sa.ForeignKeyConstraint(["from_case_id"], ["dispute_case.id"],
                                name=op.f("fk_case_link_from_case_id_dispute_case")),
        sa.ForeignKeyConstraint(["to_case_id"], ["dispute_case.id"], name=op.f("fk_case_link_to_case_id_dispute_case")),
        sa.PrimaryKeyConstraint("from_case_id", "to_case_id", "kind", name=op.f("pk_case_link")),
    )
    op.create_index("ix_case_link_to", "case_link", ["to_case_id"], unique=False)
    conn = op.get_bind()
    orig = _case.alias("orig")
    q = (sa.select(_case.c.id, orig.c.id, _case.c.archived_at)
         .join(orig, orig.c.case_no == _case.c.duplicate_of)
         .where(_case.c.duplicate_of.is_not(None), orig.c.id != _case.c.id, _case.c.archived_at.is_not(None)))
    rows = [{"from_case_id": a, "to_case_id": b, "kind": "duplicate", "at": at, "actor": "migration"}
            for a, b, at in conn.execute(q)]
    for i in range(0, len(rows), 1000):
        conn.execute(sa.insert(_link), rows[i:i + 1000])


def downgrade() -> None:
    op.drop_index("ix_case_link_to", table_name="case_link")
    op.drop_table("case_link")
    with op.batch_alter_table("dispute_case") as batch:
        batch.drop_column("settlement")
