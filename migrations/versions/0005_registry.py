"""Grid registry: buildings, households, residents, their events, special-population flags,
reveal audit and import batches.

Revision ID: 0005_registry
Revises: 0004_versions
"""

import sqlalchemy as sa
from alembic import op

from engine.db import UTCDateTime
from engine.models import JSONType

revision = "0005_registry"
down_revision = "0004_versions"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "building",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("grid_code", sa.String(length=20), nullable=False),
        sa.Column("address", sa.String(length=200), nullable=False),
        sa.Column("lat", sa.Float(), nullable=True),
        sa.Column("lng", sa.Float(), nullable=True),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.ForeignKeyConstraint(["grid_code"], ["org_unit.code"], name=op.f("fk_building_grid_code_org_unit")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_building")),
        sa.UniqueConstraint("address", name=op.f("uq_building_address")),
    )
    op.create_index(op.f("ix_building_grid_code"), "building", ["grid_code"], unique=False)

    op.create_table(
        "household",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("building_id", sa.Integer(), nullable=False),
        sa.Column("door_no", sa.String(length=20), nullable=False),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.ForeignKeyConstraint(["building_id"], ["building.id"], name=op.f("fk_household_building_id_building")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_household")),
        sa.UniqueConstraint("building_id", "door_no", name="uq_household_building_door"),
    )

    op.create_table(
        "registry_import",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("filename", sa.String(length=300), nullable=False),
        sa.Column("sha256", sa.String(length=64), nullable=False),
        sa.Column("format", sa.String(length=10), nullable=False),
        sa.Column("actor", sa.String(length=100), nullable=True),
        sa.Column("grid_code", sa.String(length=20), nullable=True),
        sa.Column("started_at", UTCDateTime(), nullable=False),
        sa.Column("finished_at", UTCDateTime(), nullable=True),
        sa.Column("status", sa.String(length=20), nullable=False),
        sa.Column("rows", sa.Integer(), nullable=False),
        sa.Column("counts", JSONType, nullable=False),
        sa.Column("errors", JSONType, nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_registry_import")),
    )
    op.create_index(op.f("ix_registry_import_sha256"), "registry_import", ["sha256"], unique=False)

    op.create_table(
        "resident",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("household_id", sa.Integer(), nullable=False),
        sa.Column("grid_code", sa.String(length=20), nullable=False),
        sa.Column("name", sa.String(length=50), nullable=False),
        sa.Column("id_number", sa.String(length=18), nullable=True),
        sa.Column("phone", sa.String(length=20), nullable=True),
        sa.Column("birth_date", sa.Date(), nullable=True),
        sa.Column("sex", sa.String(length=1), nullable=True),
        sa.Column("relation", sa.String(length=20), nullable=False),
        sa.Column("status", sa.String(length=10), nullable=False),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.Column("updated_at", UTCDateTime(), nullable=False),
        sa.Column("created_batch_id", sa.Integer(), nullable=True),
        sa.ForeignKeyConstraint(
            ["created_batch_id"], ["registry_import.id"], name=op.f("fk_resident_created_batch_id_registry_import")
        ),
        sa.ForeignKeyConstraint(["grid_code"], ["org_unit.code"], name=op.f("fk_resident_grid_code_org_unit")),
        sa.ForeignKeyConstraint(["household_id"], ["household.id"], name=op.f("fk_resident_household_id_household")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_resident")),
        sa.UniqueConstraint("id_number", name=op.f("uq_resident_id_number")),
    )
    op.create_index("ix_resident_grid_status", "resident", ["grid_code", "status"], unique=False)
    op.create_index("ix_resident_household", "resident", ["household_id", "status"], unique=False)
    op.create_index(op.f("ix_resident_name"), "resident", ["name"], unique=False)
    op.create_index(op.f("ix_resident_phone"), "resident", ["phone"], unique=False)

    op.create_table(
        "resident_event",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("resident_id", sa.Integer(), nullable=False),
        sa.Column("household_id", sa.Integer(), nullable=True),
        sa.Column("grid_code", sa.String(length=20), nullable=False),
        sa.Column("kind", sa.String(length=20), nullable=False),
        sa.Column("occurred_on", sa.Date(), nullable=True),
        sa.Column("at", UTCDateTime(), nullable=False),
        sa.Column("actor", sa.String(length=100), nullable=True),
        sa.Column("before", JSONType, nullable=False),
        sa.Column("after", JSONType, nullable=False),
        sa.Column("note", sa.Text(), nullable=True),
        sa.ForeignKeyConstraint(
            ["household_id"], ["household.id"], name=op.f("fk_resident_event_household_id_household")
        ),
        sa.ForeignKeyConstraint(["resident_id"], ["resident.id"], name=op.f("fk_resident_event_resident_id_resident")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_resident_event")),
    )
    op.create_index("ix_resident_event_grid_at", "resident_event", ["grid_code", "at"], unique=False)
    op.create_index(op.f("ix_resident_event_resident_id"), "resident_event", ["resident_id"], unique=False)

    op.create_table(
        "special_flag",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("resident_id", sa.Integer(), nullable=False),
        sa.Column("grid_code", sa.String(length=20), nullable=False),
        sa.Column("category", sa.String(length=30), nullable=False),
        sa.Column("risk_level", sa.String(length=10), nullable=False),
        sa.Column("active", sa.Boolean(), nullable=False),
        sa.Column("instance_id", sa.Integer(), nullable=True),
        sa.Column("note", sa.Text(), nullable=True),
        sa.Column("flagged_at", UTCDateTime(), nullable=False),
        sa.Column("flagged_by", sa.String(length=100), nullable=True),
        sa.Column("ended_at", UTCDateTime(), nullable=True),
        sa.Column("ended_by", sa.String(length=100), nullable=True),
        sa.Column("end_reason", sa.String(length=200), nullable=True),
        sa.Column("visits", sa.Integer(), nullable=False),
        sa.Column("last_visit_at", UTCDateTime(), nullable=True),
        sa.Column("next_due_at", UTCDateTime(), nullable=True),
        sa.Column("overdue_since", UTCDateTime(), nullable=True),
        sa.Column("overdue_count", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(["instance_id"], ["instance.id"], name=op.f("fk_special_flag_instance_id_instance")),
        sa.ForeignKeyConstraint(["resident_id"], ["resident.id"], name=op.f("fk_special_flag_resident_id_resident")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_special_flag")),
    )
    op.create_index("ix_special_flag_grid_active", "special_flag", ["grid_code", "active"], unique=False)
    op.create_index(op.f("ix_special_flag_instance_id"), "special_flag", ["instance_id"], unique=False)
    op.create_index(op.f("ix_special_flag_resident_id"), "special_flag", ["resident_id"], unique=False)

    op.create_table(
        "registry_reveal",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("staff_id", sa.String(length=20), nullable=False),
        sa.Column("resident_id", sa.Integer(), nullable=False),
        sa.Column("field", sa.String(length=20), nullable=False),
        sa.Column("granted", sa.Boolean(), nullable=False),
        sa.Column("reason", sa.String(length=200), nullable=True),
        sa.Column("at", UTCDateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ["resident_id"], ["resident.id"], name=op.f("fk_registry_reveal_resident_id_resident")
        ),
        sa.ForeignKeyConstraint(["staff_id"], ["staff.id"], name=op.f("fk_registry_reveal_staff_id_staff")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_registry_reveal")),
    )
    op.create_index(op.f("ix_registry_reveal_resident_id"), "registry_reveal", ["resident_id"], unique=False)
    op.create_index("ix_registry_reveal_staff_at", "registry_reveal", ["staff_id", "at"], unique=False)


def downgrade() -> None:
    op.drop_index("ix_registry_reveal_staff_at", table_name="registry_reveal")
    op.drop_index(op.f("ix_registry_reveal_resident_id"), table_name="registry_reveal")
    op.drop_table("registry_reveal")
    op.drop_index(op.f("ix_special_flag_resident_id"), table_name="special_flag")
    op.drop_index(op.f("ix_special_flag_instance_id"), table_name="special_flag")
    op.drop_index("ix_special_flag_grid_active", table_name="special_flag")
    op.drop_table("special_flag")
    op.drop_index(op.f("ix_resident_event_resident_id"), table_name="resident_event")
    op.drop_index("ix_resident_event_grid_at", table_name="resident_event")
    op.drop_table("resident_event")
    op.drop_index(op.f("ix_resident_phone"), table_name="resident")
    op.drop_index(op.f("ix_resident_name"), table_name="resident")
    op.drop_index("ix_resident_household", table_name="resident")
    op.drop_index("ix_resident_grid_status", table_name="resident")
    op.drop_table("resident")
    op.drop_index(op.f("ix_registry_import_sha256"), table_name="registry_import")
    op.drop_table("registry_import")
    op.drop_table("household")
    op.drop_index(op.f("ix_building_grid_code"), table_name="building")
    op.drop_table("building")
