"""Personal data encrypted at rest (placeholder until the change lands; no schema change yet).

Revision ID: 0008_personal_data
Revises: 0007_indicators
"""
from __future__ import annotations

revision = "0008_personal_data"
down_revision = "0007_indicators"
branch_labels = None
depends_on = None


def upgrade() -> None:
    pass


def downgrade() -> None:
    pass
