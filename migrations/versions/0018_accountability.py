"""Placeholder: filled in by the work that owns it (no schema change yet).

Revision ID: 0018_accountability
Revises: 0017_verdict_codes
"""

revision = "0018_accountability"
down_revision = "0017_verdict_codes"
branch_labels = None
depends_on = None


def upgrade() -> None:
    pass


def downgrade() -> None:
    pass
