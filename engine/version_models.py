"""Tables for version administration: the audit trail of version changes, migration runs and
one record per instance a run looked at (with what is needed to revert a migrated instance).
"""
from __future__ import annotations

from datetime import datetime

from sqlalchemy import JSON, Boolean, ForeignKey, Index, Integer, String, Text
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import Mapped, mapped_column
from sqlalchemy.types import TypeDecorator

from .db import Base, UTCDateTime
from .models import JSONType


class Messages(TypeDecorator):
    """A list of verdicts or notes, stored as codes with arguments ({"code", "args"}: no English
    sentence in the database) and read back as engine.migration.labels.Msg (English text for the
    CLI, `code` and `args` for pages in other languages)."""

    impl = JSON
    cache_ok = True

    def load_dialect_impl(self, dialect):
        return dialect.type_descriptor(JSONB() if dialect.name == "postgresql" else JSON())

    def process_bind_param(self, value, dialect):
        from .migration.labels import store

        return None if value is None else store(value)

    def process_result_value(self, value, dialect):
        from .migration.labels import load

        return None if value is None else [load(m) for m in value]


VERSION_ACTIONS = ("deploy", "activate", "pin", "unpin", "retire", "migrate", "revert")


class VersionEvent(Base):
    """Who changed which version, when and how (deploy, activate, pin, unpin, retire, migrate, revert)."""

    __tablename__ = "version_event"
    id: Mapped[int] = mapped_column(primary_key=True)
    at: Mapped[datetime] = mapped_column(UTCDateTime, index=True)
    actor: Mapped[str | None] = mapped_column(String(100))
    action: Mapped[str] = mapped_column(String(20), index=True)
    process_id: Mapped[str | None] = mapped_column(String(200), index=True)
    version_id: Mapped[int | None] = mapped_column(ForeignKey("process_version.id"))
    scope: Mapped[str | None] = mapped_column(String(200))
    data: Mapped[dict] = mapped_column(JSONType, default=dict)


class MigrationRun(Base):
    """A dry run or an execution of moving selected instances to another version."""

    __tablename__ = "migration_run"
    id: Mapped[int] = mapped_column(primary_key=True)
    process_id: Mapped[str] = mapped_column(String(200), index=True)
    to_version_id: Mapped[int] = mapped_column(ForeignKey("process_version.id"))
    dry_run: Mapped[bool] = mapped_column(Boolean, default=False)
    selection: Mapped[dict] = mapped_column(JSONType, default=dict)
    status: Mapped[str] = mapped_column(String(20), default="pending")  # pending | running | done
    actor: Mapped[str | None] = mapped_column(String(100))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    total: Mapped[int] = mapped_column(Integer, default=0)
    done: Mapped[int] = mapped_column(Integer, default=0)
    migrated: Mapped[int] = mapped_column(Integer, default=0)
    blocked: Mapped[int] = mapped_column(Integer, default=0)
    skipped: Mapped[int] = mapped_column(Integer, default=0)
    failed: Mapped[int] = mapped_column(Integer, default=0)


class MigrationRecord(Base):
    """One instance in a run: its verdict or outcome, and (once migrated) its state before."""

    __tablename__ = "migration_record"
    __table_args__ = (Index("ix_migration_record_run_outcome", "run_id", "outcome"),)
    id: Mapped[int] = mapped_column(primary_key=True)
    run_id: Mapped[int] = mapped_column(ForeignKey("migration_run.id"))
    instance_id: Mapped[int] = mapped_column(ForeignKey("instance.id"), index=True)
    # pending | can_move | blocked | migrated | skipped | failed | reverted
    outcome: Mapped[str] = mapped_column(String(20), default="pending")
    reasons: Mapped[list] = mapped_column(Messages, default=list)
    notes: Mapped[list] = mapped_column(Messages, default=list)
    from_version_id: Mapped[int | None] = mapped_column(ForeignKey("process_version.id"))
    to_version_id: Mapped[int | None] = mapped_column(ForeignKey("process_version.id"))
    lock_before: Mapped[int | None] = mapped_column(Integer)
    lock_after: Mapped[int | None] = mapped_column(Integer)
    state_before: Mapped[str | None] = mapped_column(Text)
    next_timer_before: Mapped[datetime | None] = mapped_column(UTCDateTime)
    work_items_before: Mapped[list | None] = mapped_column(JSONType)
    at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    reverted_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    reverted_by: Mapped[str | None] = mapped_column(String(100))
