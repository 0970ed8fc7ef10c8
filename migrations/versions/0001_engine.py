"""Engine tables: process versions, instances, work items, audit events.

Revision ID: 0001_engine
Revises:
"""

import sqlalchemy as sa
from alembic import op

from engine.db import UTCDateTime
from engine.models import JSONType

revision = "0001_engine"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "process_version",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("process_id", sa.String(length=200), nullable=False),
        sa.Column("number", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=300), nullable=True),
        sa.Column("tag", sa.String(length=100), nullable=True),
        sa.Column("sha256", sa.String(length=64), nullable=False),
        sa.Column("spec_json", sa.Text(), nullable=False),
        sa.Column("files", JSONType, nullable=False),
        sa.Column("forms", JSONType, nullable=False),
        sa.Column("deployed_by", sa.String(length=100), nullable=True),
        sa.Column("deployed_at", UTCDateTime(), nullable=False),
        sa.Column("state", sa.String(length=20), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_process_version")),
        sa.UniqueConstraint("process_id", "number", name="uq_process_version_number"),
    )
    op.create_index(op.f("ix_process_version_process_id"), "process_version", ["process_id"], unique=False)
    op.create_index(op.f("ix_process_version_sha256"), "process_version", ["sha256"], unique=False)
    op.create_table(
        "process_definition",
        sa.Column("process_id", sa.String(length=200), nullable=False),
        sa.Column("name", sa.String(length=300), nullable=True),
        sa.Column("active_version_id", sa.Integer(), nullable=True),
        sa.ForeignKeyConstraint(
            ["active_version_id"],
            ["process_version.id"],
            name="fk_process_definition_active_version",
        ),
        sa.PrimaryKeyConstraint("process_id", name=op.f("pk_process_definition")),
    )
    op.create_table(
        "instance",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("process_id", sa.String(length=200), nullable=False),
        sa.Column("version_id", sa.Integer(), nullable=False),
        sa.Column("business_key", sa.String(length=100), nullable=True),
        sa.Column("status", sa.String(length=20), nullable=False),
        sa.Column("state_json", sa.Text(), nullable=False),
        sa.Column("next_timer_at", UTCDateTime(), nullable=True),
        sa.Column("lock_version", sa.Integer(), nullable=False),
        sa.Column("event_seq", sa.Integer(), nullable=False),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.Column("updated_at", UTCDateTime(), nullable=False),
        sa.Column("started_by", sa.String(length=100), nullable=True),
        sa.Column("error_task", sa.String(length=200), nullable=True),
        sa.Column("error_message", sa.Text(), nullable=True),
        sa.ForeignKeyConstraint(
            ["version_id"], ["process_version.id"], name=op.f("fk_instance_version_id_process_version")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_instance")),
    )
    op.create_index(op.f("ix_instance_business_key"), "instance", ["business_key"], unique=False)
    op.create_index(op.f("ix_instance_next_timer_at"), "instance", ["next_timer_at"], unique=False)
    op.create_index(op.f("ix_instance_process_id"), "instance", ["process_id"], unique=False)
    op.create_index("ix_instance_timer_due", "instance", ["status", "next_timer_at"], unique=False)
    op.create_index(op.f("ix_instance_version_id"), "instance", ["version_id"], unique=False)
    op.create_table(
        "version_pin",
        sa.Column("process_id", sa.String(length=200), nullable=False),
        sa.Column("scope", sa.String(length=200), nullable=False),
        sa.Column("version_id", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(
            ["version_id"], ["process_version.id"], name=op.f("fk_version_pin_version_id_process_version")
        ),
        sa.PrimaryKeyConstraint("process_id", "scope", name=op.f("pk_version_pin")),
    )
    op.create_table(
        "instance_event",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("instance_id", sa.Integer(), nullable=False),
        sa.Column("seq", sa.Integer(), nullable=False),
        sa.Column("at", UTCDateTime(), nullable=False),
        sa.Column("actor", sa.String(length=100), nullable=True),
        sa.Column("kind", sa.String(length=40), nullable=False),
        sa.Column("task", sa.String(length=200), nullable=True),
        sa.Column("data", JSONType, nullable=False),
        sa.ForeignKeyConstraint(
            ["instance_id"], ["instance.id"], name=op.f("fk_instance_event_instance_id_instance")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_instance_event")),
        sa.UniqueConstraint("instance_id", "seq", name="uq_instance_event_seq"),
    )
    op.create_index(op.f("ix_instance_event_instance_id"), "instance_event", ["instance_id"], unique=False)
    op.create_index(op.f("ix_instance_event_kind"), "instance_event", ["kind"], unique=False)
    op.create_table(
        "work_item",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("instance_id", sa.Integer(), nullable=False),
        sa.Column("task_guid", sa.String(length=36), nullable=False),
        sa.Column("task_spec", sa.String(length=200), nullable=False),
        sa.Column("process_id", sa.String(length=200), nullable=False),
        sa.Column("name", sa.String(length=300), nullable=True),
        sa.Column("form", sa.String(length=200), nullable=True),
        sa.Column("unit_id", sa.String(length=64), nullable=True),
        sa.Column("role", sa.String(length=64), nullable=True),
        sa.Column("user_id", sa.String(length=64), nullable=True),
        sa.Column("state", sa.String(length=20), nullable=False),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.Column("warn_at", UTCDateTime(), nullable=True),
        sa.Column("due_at", UTCDateTime(), nullable=True),
        sa.Column("closed_at", UTCDateTime(), nullable=True),
        sa.Column("closed_by", sa.String(length=100), nullable=True),
        sa.Column("props", JSONType, nullable=False),
        sa.ForeignKeyConstraint(
            ["instance_id"], ["instance.id"], name=op.f("fk_work_item_instance_id_instance")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_work_item")),
        sa.UniqueConstraint("task_guid", name=op.f("uq_work_item_task_guid")),
    )
    op.create_index(op.f("ix_work_item_instance_id"), "work_item", ["instance_id"], unique=False)
    op.create_index("ix_work_item_role", "work_item", ["role", "state"], unique=False)
    op.create_index("ix_work_item_unit_inbox", "work_item", ["unit_id", "state", "due_at"], unique=False)
    op.create_index("ix_work_item_user_inbox", "work_item", ["user_id", "state", "due_at"], unique=False)


def downgrade() -> None:
    op.drop_index("ix_work_item_user_inbox", table_name="work_item")
    op.drop_index("ix_work_item_unit_inbox", table_name="work_item")
    op.drop_index("ix_work_item_role", table_name="work_item")
    op.drop_index(op.f("ix_work_item_instance_id"), table_name="work_item")
    op.drop_table("work_item")
    op.drop_index(op.f("ix_instance_event_kind"), table_name="instance_event")
    op.drop_index(op.f("ix_instance_event_instance_id"), table_name="instance_event")
    op.drop_table("instance_event")
    op.drop_table("version_pin")
    op.drop_index(op.f("ix_instance_version_id"), table_name="instance")
    op.drop_index("ix_instance_timer_due", table_name="instance")
    op.drop_index(op.f("ix_instance_process_id"), table_name="instance")
    op.drop_index(op.f("ix_instance_next_timer_at"), table_name="instance")
    op.drop_index(op.f("ix_instance_business_key"), table_name="instance")
    op.drop_table("instance")
    op.drop_index(op.f("ix_process_version_sha256"), table_name="process_version")
    op.drop_index(op.f("ix_process_version_process_id"), table_name="process_version")
    op.drop_table("process_definition")
    op.drop_table("process_version")
