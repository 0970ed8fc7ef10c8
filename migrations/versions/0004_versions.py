"""Process version administration: audit trail of version changes, migration runs and records.

Revision ID: 0004_versions
Revises: 0003_cases
"""

import sqlalchemy as sa
from alembic import op

from engine.db import UTCDateTime
from engine.models import JSONType

revision = "0004_versions"
down_revision = "0003_cases"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "version_event",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("at", UTCDateTime(), nullable=False),
        sa.Column("actor", sa.String(length=100), nullable=True),
        sa.Column("action", sa.String(length=20), nullable=False),
        sa.Column("process_id", sa.String(length=200), nullable=True),
        sa.Column("version_id", sa.Integer(), nullable=True),
        sa.Column("scope", sa.String(length=200), nullable=True),
        sa.Column("data", JSONType, nullable=False),
        sa.ForeignKeyConstraint(["version_id"], ["process_version.id"],
                                name=op.f("fk_version_event_version_id_process_version")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_version_event")),
    )
    op.create_index(op.f("ix_version_event_at"), "version_event", ["at"], unique=False)
    op.create_index(op.f("ix_version_event_action"), "version_event", ["action"], unique=False)
    op.create_index(op.f("ix_version_event_process_id"), "version_event", ["process_id"], unique=False)
    op.create_table(
        "migration_run",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("process_id", sa.String(length=200), nullable=False),
        sa.Column("to_version_id", sa.Integer(), nullable=False),
        sa.Column("dry_run", sa.Boolean(), nullable=False),
        sa.Column("selection", JSONType, nullable=False),
        sa.Column("status", sa.String(length=20), nullable=False),
        sa.Column("actor", sa.String(length=100), nullable=True),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.Column("finished_at", UTCDateTime(), nullable=True),
        sa.Column("total", sa.Integer(), nullable=False),
        sa.Column("done", sa.Integer(), nullable=False),
        sa.Column("migrated", sa.Integer(), nullable=False),
        sa.Column("blocked", sa.Integer(), nullable=False),
        sa.Column("skipped", sa.Integer(), nullable=False),
        sa.Column("failed", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(["to_version_id"], ["process_version.id"],
                                name=op.f("fk_migration_run_to_version_id_process_version")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_migration_run")),
    )
    op.create_index(op.f("ix_migration_run_process_id"), "migration_run", ["process_id"], unique=False)
    op.create_table(
        "migration_record",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("run_id", sa.Integer(), nullable=False),
        sa.Column("instance_id", sa.Integer(), nullable=False),
        sa.Column("outcome", sa.String(length=20), nullable=False),
        sa.Column("reasons", JSONType, nullable=False),
        sa.Column("notes", JSONType, nullable=False),
        sa.Column("from_version_id", sa.Integer(), nullable=True),
        sa.Column("to_version_id", sa.Integer(), nullable=True),
        sa.Column("lock_before", sa.Integer(), nullable=True),
        sa.Column("lock_after", sa.Integer(), nullable=True),
        sa.Column("state_before", sa.Text(), nullable=True),
        sa.Column("next_timer_before", UTCDateTime(), nullable=True),
        sa.Column("work_items_before", JSONType, nullable=True),
        sa.Column("at", UTCDateTime(), nullable=True),
        sa.Column("reverted_at", UTCDateTime(), nullable=True),
        sa.Column("reverted_by", sa.String(length=100), nullable=True),
        sa.ForeignKeyConstraint(["run_id"], ["migration_run.id"],
                                name=op.f("fk_migration_record_run_id_migration_run")),
        sa.ForeignKeyConstraint(["instance_id"], ["instance.id"],
                                name=op.f("fk_migration_record_instance_id_instance")),
        sa.ForeignKeyConstraint(["from_version_id"], ["process_version.id"],
                                name=op.f("fk_migration_record_from_version_id_process_version")),
        sa.ForeignKeyConstraint(["to_version_id"], ["process_version.id"],
                                name=op.f("fk_migration_record_to_version_id_process_version")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_migration_record")),
    )
    op.create_index(op.f("ix_migration_record_instance_id"), "migration_record", ["instance_id"], unique=False)
    op.create_index("ix_migration_record_run_outcome", "migration_record", ["run_id", "outcome"], unique=False)


def downgrade() -> None:
    op.drop_index("ix_migration_record_run_outcome", table_name="migration_record")
    op.drop_index(op.f("ix_migration_record_instance_id"), table_name="migration_record")
    op.drop_table("migration_record")
    op.drop_index(op.f("ix_migration_run_process_id"), table_name="migration_run")
    op.drop_table("migration_run")
    op.drop_index(op.f("ix_version_event_process_id"), table_name="version_event")
    op.drop_index(op.f("ix_version_event_action"), table_name="version_event")
    op.drop_index(op.f("ix_version_event_at"), table_name="version_event")
    op.drop_table("version_event")
