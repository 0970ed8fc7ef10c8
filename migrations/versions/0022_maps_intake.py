"""Placeholder: filled in by the work that owns it (no schema change yet).

Revision ID: 0022_maps_intake
Revises: 0021_media
"""

revision = "0022_maps_intake"
down_revision = "0021_media"
branch_labels = None
depends_on = None


def upgrade() -> None:
    pass


def downgrade() -> None:
    pass
