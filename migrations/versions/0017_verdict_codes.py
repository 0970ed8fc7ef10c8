"""Placeholder: filled in by the work that owns it (no schema change yet).

Revision ID: 0017_verdict_codes
Revises: 0016_report_token
"""

revision = "0017_verdict_codes"
down_revision = "0016_report_token"
branch_labels = None
depends_on = None


def upgrade() -> None:
    pass


def downgrade() -> None:
    pass
