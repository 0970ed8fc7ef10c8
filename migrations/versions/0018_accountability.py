"""The accountability register (问责台账) and the supervision register (督办台账).

`accountability_entry`: one row per level that ran past its time limit, with the unit, the
people who held the task, how late, and what its own process (workflows/accountability.bpmn)
recorded: review, 情况说明, outcome. `supervision_entry`: one row per 督办 task, open or closed,
with the time to the supervisor's urge. Both written by grid.cases.accountability in the step.
"""
from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from engine.db import UTCDateTime
from engine.models import JSONType

revision = "0018_accountability"
down_revision = "0017_verdict_codes"

Time = UTCDateTime()


def upgrade() -> None:
    op.create_table(
        "accountability_entry",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("entry_no", sa.String(60), nullable=False),
        sa.Column("case_id", sa.Integer(), sa.ForeignKey("dispute_case.id"), nullable=False),
        sa.Column("level", sa.String(20), nullable=False),
        sa.Column("unit_code", sa.String(20), sa.ForeignKey("org_unit.code"), nullable=False),
        sa.Column("unit_path", sa.String(200), nullable=False),
        sa.Column("reviewer_unit", sa.String(20), nullable=False),
        sa.Column("task_spec", sa.String(200)),
        sa.Column("staff_ids", JSONType, nullable=False),
        sa.Column("entered_at", Time),
        sa.Column("due_at", Time),
        sa.Column("overdue_at", Time, nullable=False),
        sa.Column("late_minutes", sa.Integer(), nullable=False),
        sa.Column("held_minutes", sa.Integer(), nullable=False),
        sa.Column("state", sa.String(20), nullable=False),
        sa.Column("instance_id", sa.Integer(), sa.ForeignKey("instance.id")),
        sa.Column("review_action", sa.String(20)),
        sa.Column("review_comment", sa.Text()),
        sa.Column("reviewed_by", sa.String(100)),
        sa.Column("reviewed_at", Time),
        sa.Column("explanation", sa.Text()),
        sa.Column("measures", sa.Text()),
        sa.Column("explained_by", sa.String(100)),
        sa.Column("explained_at", Time),
        sa.Column("explanation_missed", sa.Boolean(), nullable=False),
        sa.Column("outcome", sa.String(20)),
        sa.Column("note", sa.Text()),
        sa.Column("decided_by", sa.String(100)),
        sa.Column("decided_at", Time),
        sa.UniqueConstraint("entry_no"),
        sa.UniqueConstraint("instance_id"),
    )
    op.create_index("ix_accountability_entry_case_id", "accountability_entry", ["case_id"])
    op.create_index("ix_accountability_entry_path_at", "accountability_entry", ["unit_path", "overdue_at"])
    op.create_index("ix_accountability_entry_state", "accountability_entry", ["state", "overdue_at"])
    op.create_table(
        "supervision_entry",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("case_id", sa.Integer(), sa.ForeignKey("dispute_case.id"), nullable=False),
        sa.Column("level", sa.String(20), nullable=False),
        sa.Column("unit_code", sa.String(20), sa.ForeignKey("org_unit.code"), nullable=False),
        sa.Column("unit_path", sa.String(200), nullable=False),
        sa.Column("task_guid", sa.String(36)),
        sa.Column("opened_at", Time, nullable=False),
        sa.Column("due_at", Time),
        sa.Column("state", sa.String(20), nullable=False),
        sa.Column("responded_by", sa.String(100)),
        sa.Column("responded_at", Time),
        sa.Column("response_minutes", sa.Integer()),
        sa.Column("comment", sa.Text()),
        sa.Column("closed_at", Time),
        sa.UniqueConstraint("task_guid"),
    )
    op.create_index("ix_supervision_entry_case_id", "supervision_entry", ["case_id"])
    op.create_index("ix_supervision_entry_path_at", "supervision_entry", ["unit_path", "opened_at"])


def downgrade() -> None:
    op.drop_table("supervision_entry")
    op.drop_table("accountability_entry")
