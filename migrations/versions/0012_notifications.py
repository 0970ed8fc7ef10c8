"""Notifications: the in-app notification list and each person's outbound preferences.

Revision ID: 0012_notifications
Revises: 0011_api_outbox
"""
from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from engine.db import UTCDateTime
from engine.models import JSONType

revision = "0012_notifications"
down_revision = "0011_api_outbox"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "notification",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("staff_id", sa.String(length=20), nullable=False),
        sa.Column("kind", sa.String(length=30), nullable=False),
        sa.Column("case_id", sa.Integer(), nullable=True),
        sa.Column("task_guid", sa.String(length=36), nullable=True),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.Column("read_at", UTCDateTime(), nullable=True),
        sa.Column("args", JSONType, nullable=False),
        sa.ForeignKeyConstraint(["case_id"], ["dispute_case.id"], name=op.f("fk_notification_case_id_dispute_case")),
        sa.ForeignKeyConstraint(["staff_id"], ["staff.id"], name=op.f("fk_notification_staff_id_staff")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_notification")),
    )
    op.create_index(op.f("ix_notification_case_id"), "notification", ["case_id"], unique=False)
    op.create_index("ix_notification_staff_read", "notification", ["staff_id", "read_at", "id"], unique=False)
    op.create_table(
        "notification_pref",
        sa.Column("staff_id", sa.String(length=20), nullable=False),
        sa.Column("channels", JSONType, nullable=False),
        sa.Column("email", sa.String(length=200), nullable=True),
        sa.Column("wecom_user", sa.String(length=64), nullable=True),
        sa.Column("phone", sa.String(length=20), nullable=True),
        sa.Column("quiet_start", sa.String(length=5), nullable=True),
        sa.Column("quiet_end", sa.String(length=5), nullable=True),
        sa.Column("updated_at", UTCDateTime(), nullable=False),
        sa.ForeignKeyConstraint(["staff_id"], ["staff.id"], name=op.f("fk_notification_pref_staff_id_staff")),
        sa.PrimaryKeyConstraint("staff_id", name=op.f("pk_notification_pref")),
    )


def downgrade() -> None:
    op.drop_table("notification_pref")
    op.drop_index("ix_notification_staff_read", table_name="notification")
    op.drop_index(op.f("ix_notification_case_id"), table_name="notification")
    op.drop_table("notification")
