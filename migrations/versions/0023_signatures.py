"""Placeholder: filled in by the work that owns it (no schema change yet).

Revision ID: 0023_signatures
Revises: 0022_maps_intake
"""

revision = "0023_signatures"
down_revision = "0022_maps_intake"
branch_labels = None
depends_on = None


def upgrade() -> None:
    pass


def downgrade() -> None:
    pass
