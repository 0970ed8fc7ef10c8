"""History-independent pages: the late list's index, the case-party link, archive full-text search.

- `case_late`: open work items of open cases under every ancestor scope of the case's grid,
  with a trigger that carries work-item time changes into it (grid/cases/late_index.py);
- `case_party`: resident -> case links (grid/cases/parties.py);
- `case_search` (+ the SQLite FTS5 table `case_fts`; on PostgreSQL a tsvector with a GIN
  index): bigram full-text search over archived cases (grid/cases/search.py).

All three are filled from the existing cases here, so an upgraded database needs no rebuild.

Revision ID: 0009_performance
Revises: 0008_personal_data
"""
from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql
from sqlalchemy.orm import Session

from engine.db import UTCDateTime

revision = "0009_performance"
down_revision = "0008_personal_data"
branch_labels = None
depends_on = None


def upgrade() -> None:
    from grid.cases import late_index, parties, search
    from grid.cases.models import FTS_DDL, DisputeCase

    bind = op.get_bind()
    dialect = bind.dialect.name
    op.create_table(
        "case_late",
        sa.Column("work_item_id", sa.Integer(), nullable=False),
        sa.Column("scope", sa.String(length=200), nullable=False),
        sa.Column("case_id", sa.Integer(), nullable=False),
        sa.Column("late_at", UTCDateTime(), nullable=True),
        sa.Column("due_key", UTCDateTime(), nullable=False),
        sa.ForeignKeyConstraint(["case_id"], ["dispute_case.id"], name=op.f("fk_case_late_case_id_dispute_case")),
        sa.ForeignKeyConstraint(["work_item_id"], ["work_item.id"], name=op.f("fk_case_late_work_item_id_work_item")),
        sa.PrimaryKeyConstraint("work_item_id", "scope", name=op.f("pk_case_late")),
    )
    op.create_index("ix_case_late_case_id", "case_late", ["case_id"], unique=False)
    op.create_index("ix_case_late_scope_due", "case_late", ["scope", "due_key", "work_item_id", "late_at"],
                    unique=False)
    op.create_table(
        "case_party",
        sa.Column("resident_id", sa.Integer(), nullable=False),
        sa.Column("case_id", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(["case_id"], ["dispute_case.id"], name=op.f("fk_case_party_case_id_dispute_case")),
        sa.PrimaryKeyConstraint("resident_id", "case_id", name=op.f("pk_case_party")),
    )
    op.create_index("ix_case_party_case_id", "case_party", ["case_id"], unique=False)
    op.create_table(
        "case_search",
        sa.Column("seq", sa.Integer(), nullable=False),
        sa.Column("case_id", sa.Integer(), nullable=False),
        sa.Column("tsv", sa.Text().with_variant(postgresql.TSVECTOR(), "postgresql"), nullable=True),
        sa.ForeignKeyConstraint(["case_id"], ["dispute_case.id"], name=op.f("fk_case_search_case_id_dispute_case")),
        sa.PrimaryKeyConstraint("seq", name=op.f("pk_case_search")),
        sa.UniqueConstraint("case_id", name=op.f("uq_case_search_case_id")),
    )
    op.create_index("ix_case_search_tsv", "case_search", ["tsv"], unique=False, postgresql_using="gin",
                    sqlite_where=sa.false())
    if dialect == "sqlite":
        op.execute(FTS_DDL)
    for stmt in late_index.trigger_ddl(dialect):
        op.execute(stmt)

    s = Session(bind=bind)
    late_index.rebuild(s)
    for cid, party_list in s.execute(sa.select(DisputeCase.id, DisputeCase.parties)):
        parties.link(s, cid, party_list)
    search.rebuild(s)
    s.flush()


def downgrade() -> None:
    from grid.cases import late_index

    bind = op.get_bind()
    if bind.dialect.name == "sqlite":
        op.execute(late_index.DROP_SQLITE)
        op.execute("DROP TABLE IF EXISTS case_fts")
    else:
        for stmt in late_index.DROP_PG:
            op.execute(stmt)
    op.drop_index("ix_case_search_tsv", table_name="case_search")
    op.drop_table("case_search")
    op.drop_index("ix_case_party_case_id", table_name="case_party")
    op.drop_table("case_party")
    op.drop_index("ix_case_late_scope_due", table_name="case_late")
    op.drop_index("ix_case_late_case_id", table_name="case_late")
    op.drop_table("case_late")
