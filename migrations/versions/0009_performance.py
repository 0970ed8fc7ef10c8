"""History-independent pages: indexes and search tables (placeholder until the change lands).

Revision ID: 0009_performance
Revises: 0008_personal_data
"""
from __future__ import annotations

revision = "0009_performance"
down_revision = "0008_personal_data"
branch_labels = None
depends_on = None


def upgrade() -> None:
    pass


def downgrade() -> None:
    pass
