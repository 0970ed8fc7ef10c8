"""Placeholder: filled in by the work that owns it (no schema change yet).

Revision ID: 0024_perf
Revises: 0023_signatures
"""

revision = "0024_perf"
down_revision = "0023_signatures"
branch_labels = None
depends_on = None


def upgrade() -> None:
    pass


def downgrade() -> None:
    pass
