"""The city's own organisation: unit boundary and retirement, forced password change, password history.

Revision ID: 0010_org_admin
Revises: 0009_performance
"""
from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from engine.db import UTCDateTime

revision = "0010_org_admin"
down_revision = "0009_performance"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("org_unit") as t:
        t.add_column(sa.Column("boundary", sa.Text(), nullable=True))
        t.add_column(sa.Column("retired_on", sa.Date(), nullable=True))
    with op.batch_alter_table("staff") as t:
        t.add_column(sa.Column("must_change_password", sa.Boolean(), nullable=False, server_default=sa.false()))
        t.add_column(sa.Column("password_changed_at", UTCDateTime(), nullable=True))
        t.add_column(sa.Column("title", sa.String(length=50), nullable=True))
    op.create_table(
        "password_history",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("staff_id", sa.String(length=20), nullable=False),
        sa.Column("password_hash", sa.String(length=255), nullable=False),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.ForeignKeyConstraint(["staff_id"], ["staff.id"], name=op.f("fk_password_history_staff_id_staff")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_password_history")),
    )
    op.create_index(op.f("ix_password_history_staff_id"), "password_history", ["staff_id"], unique=False)


def downgrade() -> None:
    op.drop_table("password_history")
    with op.batch_alter_table("staff") as t:
        t.drop_column("title")
        t.drop_column("password_changed_at")
        t.drop_column("must_change_password")
    with op.batch_alter_table("org_unit") as t:
        t.drop_column("retired_on")
        t.drop_column("boundary")
