"""The accountability register (问责台账) and the supervision register (督办台账).

Both are projections kept by `grid.cases.accountability` in the step's own transaction:
- an `AccountabilityEntry` is written when a level runs past its time limit (the `accountability`
  event of workflows/handle_level.bpmn), and then follows its own process,
  workflows/accountability.bpmn (review by the level above, the unit's 情况说明, the outcome);
- a `SupervisionEntry` is written when a level's warning opens a 督办 task, and is closed when
  the supervisor urges (催办) or the level finishes first.
The counts that feed the indicators are case records and rollup rows, as for every other measure.
"""
from __future__ import annotations

from datetime import datetime

from sqlalchemy import JSON, ForeignKey, Index, Integer, String, Text
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import Mapped, mapped_column

from engine.db import Base, UTCDateTime

JSONType = JSON().with_variant(JSONB(), "postgresql")

ENTRY_STATES = ("review", "explain", "decide", "closed", "unstarted")
OUTCOMES = ("exempt", "notice", "interview", "accountable")  # 免责 / 通报 / 约谈 / 问责
SUPERVISION_STATES = ("open", "urged", "ended")


class AccountabilityEntry(Base):
    """One 问责 entry: a level of a case ran past its time limit."""

    __tablename__ = "accountability_entry"
    __table_args__ = (
        Index("ix_accountability_entry_path_at", "unit_path", "overdue_at"),
        Index("ix_accountability_entry_state", "state", "overdue_at"),
    )
    id: Mapped[int] = mapped_column(primary_key=True)
    entry_no: Mapped[str] = mapped_column(String(60), unique=True)  # the accountability instance's business key
    case_id: Mapped[int] = mapped_column(ForeignKey("dispute_case.id"), index=True)
    level: Mapped[str] = mapped_column(String(20))
    unit_code: Mapped[str] = mapped_column(ForeignKey("org_unit.code"))  # the unit that ran late
    unit_path: Mapped[str] = mapped_column(String(200))  # its path: subtree filter and jurisdiction
    reviewer_unit: Mapped[str] = mapped_column(String(20))  # the level above (the top level reviews itself)
    task_spec: Mapped[str | None] = mapped_column(String(200))  # what was waiting: dispatch, mediate ...
    staff_ids: Mapped[list] = mapped_column(JSONType, default=list)  # who held that task at that moment
    entered_at: Mapped[datetime | None] = mapped_column(UTCDateTime)  # the level started
    due_at: Mapped[datetime | None] = mapped_column(UTCDateTime)  # its time limit
    overdue_at: Mapped[datetime] = mapped_column(UTCDateTime)  # when the entry was made
    late_minutes: Mapped[int] = mapped_column(Integer, default=0)  # working minutes past due_at then
    held_minutes: Mapped[int] = mapped_column(Integer, default=0)  # working minutes the level held it
    state: Mapped[str] = mapped_column(String(20), default="review")  # ENTRY_STATES
    instance_id: Mapped[int | None] = mapped_column(ForeignKey("instance.id"), unique=True)
    review_action: Mapped[str | None] = mapped_column(String(20))  # explain | decide
    review_comment: Mapped[str | None] = mapped_column(Text)
    reviewed_by: Mapped[str | None] = mapped_column(String(100))
    reviewed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    explanation: Mapped[str | None] = mapped_column(Text)  # 情况说明
    measures: Mapped[str | None] = mapped_column(Text)  # 整改措施
    explained_by: Mapped[str | None] = mapped_column(String(100))
    explained_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    explanation_missed: Mapped[bool] = mapped_column(default=False)  # its time limit passed without one
    outcome: Mapped[str | None] = mapped_column(String(20))  # OUTCOMES
    note: Mapped[str | None] = mapped_column(Text)
    decided_by: Mapped[str | None] = mapped_column(String(100))
    decided_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class SupervisionEntry(Base):
    """One 督办: a level reached its warning time and a supervision task opened."""

    __tablename__ = "supervision_entry"
    __table_args__ = (Index("ix_supervision_entry_path_at", "unit_path", "opened_at"),)
    id: Mapped[int] = mapped_column(primary_key=True)
    case_id: Mapped[int] = mapped_column(ForeignKey("dispute_case.id"), index=True)
    level: Mapped[str] = mapped_column(String(20))
    unit_code: Mapped[str] = mapped_column(ForeignKey("org_unit.code"))  # the supervised unit
    unit_path: Mapped[str] = mapped_column(String(200))
    task_guid: Mapped[str | None] = mapped_column(String(36), unique=True)  # the 督办催办 task
    opened_at: Mapped[datetime] = mapped_column(UTCDateTime)
    due_at: Mapped[datetime | None] = mapped_column(UTCDateTime)  # the level's time limit
    state: Mapped[str] = mapped_column(String(20), default="open")  # SUPERVISION_STATES
    responded_by: Mapped[str | None] = mapped_column(String(100))
    responded_at: Mapped[datetime | None] = mapped_column(UTCDateTime)  # the urge (催办)
    response_minutes: Mapped[int | None] = mapped_column(Integer)  # working minutes from opening to the urge
    comment: Mapped[str | None] = mapped_column(Text)
    closed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
