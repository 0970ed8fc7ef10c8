"""Server-side web sessions and the security audit log.

Revision ID: 0006_sessions_audit
Revises: 0005_registry
"""

import sqlalchemy as sa
from alembic import op

from engine.db import UTCDateTime
from engine.models import JSONType

revision = "0006_sessions_audit"
down_revision = "0005_registry"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "web_session",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("token_hash", sa.String(length=64), nullable=False),
        sa.Column("staff_id", sa.String(length=20), nullable=True),
        sa.Column("data", sa.Text(), nullable=False),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.Column("last_seen", UTCDateTime(), nullable=False),
        sa.Column("user_agent", sa.String(length=300), nullable=True),
        sa.Column("ip", sa.String(length=64), nullable=True),
        sa.ForeignKeyConstraint(["staff_id"], ["staff.id"], name=op.f("fk_web_session_staff_id_staff")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_web_session")),
        sa.UniqueConstraint("token_hash", name=op.f("uq_web_session_token_hash")),
    )
    op.create_index(op.f("ix_web_session_staff_id"), "web_session", ["staff_id"], unique=False)
    op.create_index(op.f("ix_web_session_last_seen"), "web_session", ["last_seen"], unique=False)

    op.create_table(
        "security_event",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("at", UTCDateTime(), nullable=False),
        sa.Column("kind", sa.String(length=30), nullable=False),
        sa.Column("actor_staff_id", sa.String(length=20), nullable=True),
        sa.Column("subject_staff_id", sa.String(length=20), nullable=True),
        sa.Column("unit_code", sa.String(length=20), nullable=True),
        sa.Column("ip", sa.String(length=64), nullable=True),
        sa.Column("detail", JSONType, nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_security_event")),
    )
    op.create_index(op.f("ix_security_event_at"), "security_event", ["at"], unique=False)
    op.create_index("ix_security_event_kind_at", "security_event", ["kind", "at"], unique=False)
    op.create_index("ix_security_event_actor_at", "security_event", ["actor_staff_id", "at"], unique=False)
    op.create_index("ix_security_event_subject_at", "security_event", ["subject_staff_id", "at"], unique=False)
    op.create_index("ix_security_event_unit_at", "security_event", ["unit_code", "at"], unique=False)


def downgrade() -> None:
    op.drop_table("security_event")
    op.drop_table("web_session")
