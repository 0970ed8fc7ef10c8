"""Placeholder: filled in by the work that owns it (no schema change yet).

Revision ID: 0019_audit_chain
Revises: 0018_accountability
"""

revision = "0019_audit_chain"
down_revision = "0018_accountability"
branch_labels = None
depends_on = None


def upgrade() -> None:
    pass


def downgrade() -> None:
    pass
