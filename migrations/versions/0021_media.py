"""Placeholder: filled in by the work that owns it (no schema change yet).

Revision ID: 0021_media
Revises: 0020_departments
"""

revision = "0021_media"
down_revision = "0020_departments"
branch_labels = None
depends_on = None


def upgrade() -> None:
    pass


def downgrade() -> None:
    pass
