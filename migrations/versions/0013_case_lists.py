"""Case lists: "cases I acted on" reads work items by who closed them.

Revision ID: 0013_case_lists
Revises: 0012_notifications
"""
from __future__ import annotations

from alembic import op

revision = "0013_case_lists"
down_revision = "0012_notifications"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index("ix_work_item_closed_by", "work_item", ["closed_by", "closed_at"])


def downgrade() -> None:
    op.drop_index("ix_work_item_closed_by", table_name="work_item")
