"""A report remembers the one-time token of the form it came from, so a retried POST finds it.

Revision ID: 0016_report_token
Revises: 0015_case_checks
"""
from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0016_report_token"
down_revision = "0015_case_checks"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("dispute_case") as b:
        b.add_column(sa.Column("submit_token", sa.String(length=40), nullable=True))
        b.create_unique_constraint("uq_dispute_case_submit_token", ["submit_token"])


def downgrade() -> None:
    with op.batch_alter_table("dispute_case") as b:
        b.drop_constraint("uq_dispute_case_submit_token", type_="unique")
        b.drop_column("submit_token")
