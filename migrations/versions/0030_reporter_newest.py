"""A person's reports newest first (issue 16): ix_dispute_case_reporter_id becomes (reporter_id, id),
so 我上报的 reads its page as an index range backwards instead of every report of the person
sorted (a grid worker files a thousand a year). SQLite's one-column index already ended in the
rowid; PostgreSQL's did not.

Revision ID: 0030_reporter_newest
Revises: 0029_search_scope
"""
from alembic import op

revision, down_revision = "0030_reporter_newest", "0029_search_scope"


def upgrade() -> None:
    op.drop_index("ix_dispute_case_reporter_id", table_name="dispute_case")
    op.create_index("ix_dispute_case_reporter_id", "dispute_case", ["reporter_id", "id"])


def downgrade() -> None:
    op.drop_index("ix_dispute_case_reporter_id", table_name="dispute_case")
    op.create_index("ix_dispute_case_reporter_id", "dispute_case", ["reporter_id"])
