"""The city's own organisation: staff administration, password policy (placeholder until the change lands).

Revision ID: 0010_org_admin
Revises: 0009_performance
"""
from __future__ import annotations

revision = "0010_org_admin"
down_revision = "0009_performance"
branch_labels = None
depends_on = None


def upgrade() -> None:
    pass


def downgrade() -> None:
    pass
