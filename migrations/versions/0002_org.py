"""Organisation tables: org_unit, staff, staff_role.

Revision ID: 0002_org
Revises: 0001_engine
"""

import sqlalchemy as sa
from alembic import op

from engine.db import UTCDateTime

revision = "0002_org"
down_revision = "0001_engine"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "org_unit",
        sa.Column("code", sa.String(length=20), nullable=False),
        sa.Column("name", sa.String(length=100), nullable=False),
        sa.Column("level", sa.String(length=10), nullable=False),
        sa.Column("depth", sa.Integer(), nullable=False),
        sa.Column("parent_code", sa.String(length=20), nullable=True),
        sa.Column("path", sa.String(length=200), nullable=False),
        sa.Column("kind", sa.String(length=20), nullable=False),
        sa.Column("lat", sa.Float(), nullable=True),
        sa.Column("lng", sa.Float(), nullable=True),
        sa.ForeignKeyConstraint(
            ["parent_code"], ["org_unit.code"], name=op.f("fk_org_unit_parent_code_org_unit")
        ),
        sa.PrimaryKeyConstraint("code", name=op.f("pk_org_unit")),
    )
    op.create_index(op.f("ix_org_unit_parent_code"), "org_unit", ["parent_code"], unique=False)
    # varchar_pattern_ops: PostgreSQL serves `path LIKE 'prefix%'` from this index in any collation.
    op.create_index(
        "ix_org_unit_path", "org_unit", ["path"], unique=False, postgresql_ops={"path": "varchar_pattern_ops"}
    )

    op.create_table(
        "staff",
        sa.Column("id", sa.String(length=20), nullable=False),
        sa.Column("username", sa.String(length=64), nullable=False),
        sa.Column("name", sa.String(length=50), nullable=False),
        sa.Column("phone", sa.String(length=20), nullable=True),
        sa.Column("password_hash", sa.String(length=255), nullable=False),
        sa.Column("active", sa.Boolean(), nullable=False),
        sa.Column("locale", sa.String(length=10), nullable=False),
        sa.Column("failed_logins", sa.Integer(), nullable=False),
        sa.Column("locked_until", UTCDateTime(), nullable=True),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_staff")),
        sa.UniqueConstraint("username", name=op.f("uq_staff_username")),
    )

    op.create_table(
        "staff_role",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("staff_id", sa.String(length=20), nullable=False),
        sa.Column("unit_code", sa.String(length=20), nullable=False),
        sa.Column("role", sa.String(length=20), nullable=False),
        sa.Column("title", sa.String(length=50), nullable=True),
        sa.Column("active", sa.Boolean(), nullable=False),
        sa.Column("since", sa.Date(), nullable=False),
        sa.Column("until", sa.Date(), nullable=True),
        sa.ForeignKeyConstraint(["staff_id"], ["staff.id"], name=op.f("fk_staff_role_staff_id_staff")),
        sa.ForeignKeyConstraint(
            ["unit_code"], ["org_unit.code"], name=op.f("fk_staff_role_unit_code_org_unit")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_staff_role")),
    )
    op.create_index(op.f("ix_staff_role_staff_id"), "staff_role", ["staff_id"], unique=False)
    op.create_index(
        "ix_staff_role_unit_role_active", "staff_role", ["unit_code", "role", "active"], unique=False
    )


def downgrade() -> None:
    op.drop_index("ix_staff_role_unit_role_active", table_name="staff_role")
    op.drop_index(op.f("ix_staff_role_staff_id"), table_name="staff_role")
    op.drop_table("staff_role")
    op.drop_table("staff")
    op.drop_index("ix_org_unit_path", table_name="org_unit")
    op.drop_index(op.f("ix_org_unit_parent_code"), table_name="org_unit")
    op.drop_table("org_unit")
