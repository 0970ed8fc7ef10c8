"""Placeholder: filled in by the work that owns it (no schema change yet).

Revision ID: 0020_departments
Revises: 0019_audit_chain
"""

revision = "0020_departments"
down_revision = "0019_audit_chain"
branch_labels = None
depends_on = None


def upgrade() -> None:
    pass


def downgrade() -> None:
    pass
