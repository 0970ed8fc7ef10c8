"""Dispute cases, their countable records and attachments.

Revision ID: 0003_cases
Revises: 0002_org
"""

import sqlalchemy as sa
from alembic import op

from engine.db import UTCDateTime
from engine.models import JSONType

revision = "0003_cases"
down_revision = "0002_org"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "dispute_case",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("case_no", sa.String(length=40), nullable=False),
        sa.Column("instance_id", sa.Integer(), nullable=True),
        sa.Column("category", sa.String(length=20), nullable=False),
        sa.Column("description", sa.Text(), nullable=False),
        sa.Column("location_text", sa.String(length=300), nullable=True),
        sa.Column("lat", sa.Float(), nullable=True),
        sa.Column("lng", sa.Float(), nullable=True),
        sa.Column("parties", JSONType, nullable=False),
        sa.Column("photos", JSONType, nullable=False),
        sa.Column("reporter_id", sa.String(length=20), nullable=False),
        sa.Column("grid_code", sa.String(length=20), nullable=False),
        sa.Column("unit_path", sa.String(length=200), nullable=False),
        sa.Column("current_level", sa.String(length=20), nullable=True),
        sa.Column("current_unit", sa.String(length=20), nullable=True),
        sa.Column("status", sa.String(length=20), nullable=False),
        sa.Column("result", sa.String(length=30), nullable=True),
        sa.Column("duplicate_of", sa.String(length=40), nullable=True),
        sa.Column("disposition", sa.String(length=40), nullable=True),
        sa.Column("resolved_level", sa.String(length=20), nullable=True),
        sa.Column("resolved_unit", sa.String(length=20), nullable=True),
        sa.Column("escalations", sa.Integer(), nullable=False),
        sa.Column("rework_count", sa.Integer(), nullable=False),
        sa.Column("warnings", sa.Integer(), nullable=False),
        sa.Column("overdue", sa.Integer(), nullable=False),
        sa.Column("reported_at", UTCDateTime(), nullable=False),
        sa.Column("resolved_at", UTCDateTime(), nullable=True),
        sa.Column("archived_at", UTCDateTime(), nullable=True),
        sa.Column("updated_at", UTCDateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ["grid_code"], ["org_unit.code"], name=op.f("fk_dispute_case_grid_code_org_unit")
        ),
        sa.ForeignKeyConstraint(
            ["instance_id"], ["instance.id"], name=op.f("fk_dispute_case_instance_id_instance")
        ),
        sa.ForeignKeyConstraint(
            ["reporter_id"], ["staff.id"], name=op.f("fk_dispute_case_reporter_id_staff")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_dispute_case")),
        sa.UniqueConstraint("case_no", name=op.f("uq_dispute_case_case_no")),
        sa.UniqueConstraint("instance_id", name=op.f("uq_dispute_case_instance_id")),
    )
    op.create_index("ix_dispute_case_archived", "dispute_case", ["status", "archived_at"], unique=False)
    op.create_index(op.f("ix_dispute_case_category"), "dispute_case", ["category"], unique=False)
    op.create_index(op.f("ix_dispute_case_current_unit"), "dispute_case", ["current_unit"], unique=False)
    op.create_index(op.f("ix_dispute_case_grid_code"), "dispute_case", ["grid_code"], unique=False)
    op.create_index(op.f("ix_dispute_case_reported_at"), "dispute_case", ["reported_at"], unique=False)
    op.create_index(op.f("ix_dispute_case_reporter_id"), "dispute_case", ["reporter_id"], unique=False)
    op.create_index("ix_dispute_case_status_unit_path", "dispute_case", ["status", "unit_path"], unique=False)
    op.create_table(
        "attachment",
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("case_id", sa.Integer(), nullable=True),
        sa.Column("unit_code", sa.String(length=20), nullable=True),
        sa.Column("uploaded_by", sa.String(length=20), nullable=False),
        sa.Column("filename", sa.String(length=200), nullable=False),
        sa.Column("content_type", sa.String(length=100), nullable=False),
        sa.Column("size", sa.Integer(), nullable=False),
        sa.Column("sha256", sa.String(length=64), nullable=False),
        sa.Column("storage_key", sa.String(length=200), nullable=False),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ["case_id"], ["dispute_case.id"], name=op.f("fk_attachment_case_id_dispute_case")
        ),
        sa.ForeignKeyConstraint(["uploaded_by"], ["staff.id"], name=op.f("fk_attachment_uploaded_by_staff")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_attachment")),
    )
    op.create_index(op.f("ix_attachment_case_id"), "attachment", ["case_id"], unique=False)
    op.create_table(
        "case_record",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("case_id", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(length=30), nullable=False),
        sa.Column("level", sa.String(length=20), nullable=True),
        sa.Column("unit_code", sa.String(length=20), nullable=True),
        sa.Column("at", UTCDateTime(), nullable=False),
        sa.Column("actor", sa.String(length=100), nullable=True),
        sa.Column("data", JSONType, nullable=False),
        sa.ForeignKeyConstraint(
            ["case_id"], ["dispute_case.id"], name=op.f("fk_case_record_case_id_dispute_case")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_case_record")),
    )
    op.create_index(op.f("ix_case_record_case_id"), "case_record", ["case_id"], unique=False)
    op.create_index("ix_case_record_kind_unit_at", "case_record", ["kind", "unit_code", "at"], unique=False)


def downgrade() -> None:
    op.drop_index("ix_case_record_kind_unit_at", table_name="case_record")
    op.drop_index(op.f("ix_case_record_case_id"), table_name="case_record")
    op.drop_table("case_record")
    op.drop_index(op.f("ix_attachment_case_id"), table_name="attachment")
    op.drop_table("attachment")
    op.drop_index("ix_dispute_case_status_unit_path", table_name="dispute_case")
    op.drop_index(op.f("ix_dispute_case_reporter_id"), table_name="dispute_case")
    op.drop_index(op.f("ix_dispute_case_reported_at"), table_name="dispute_case")
    op.drop_index(op.f("ix_dispute_case_grid_code"), table_name="dispute_case")
    op.drop_index(op.f("ix_dispute_case_current_unit"), table_name="dispute_case")
    op.drop_index(op.f("ix_dispute_case_category"), table_name="dispute_case")
    op.drop_index("ix_dispute_case_archived", table_name="dispute_case")
    op.drop_table("dispute_case")
