"""Engine tables: process versions, instances, work items, audit events and audit chain heads.

Inbox pages, counts and indicators read these projections (and domain tables), never
the state JSON.
"""
from __future__ import annotations

from datetime import datetime

from sqlalchemy import JSON, ForeignKey, Index, Integer, String, Text, UniqueConstraint
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import Mapped, mapped_column

from .db import Base, UTCDateTime

JSONType = JSON().with_variant(JSONB(), "postgresql")


class ProcessDefinition(Base):
    """A process id and which of its versions new instances use."""

    __tablename__ = "process_definition"
    process_id: Mapped[str] = mapped_column(String(200), primary_key=True)
    name: Mapped[str | None] = mapped_column(String(300))
    active_version_id: Mapped[int | None] = mapped_column(
        ForeignKey("process_version.id", name="fk_process_definition_active_version")
    )


class ProcessVersion(Base):
    """An immutable deployed version: the parsed spec (stored once) plus the raw files."""

    __tablename__ = "process_version"
    __table_args__ = (UniqueConstraint("process_id", "number", name="uq_process_version_number"),)
    id: Mapped[int] = mapped_column(primary_key=True)
    process_id: Mapped[str] = mapped_column(String(200), index=True)
    number: Mapped[int] = mapped_column(Integer)
    name: Mapped[str | None] = mapped_column(String(300))
    tag: Mapped[str | None] = mapped_column(String(100))
    sha256: Mapped[str] = mapped_column(String(64), index=True)
    spec_json: Mapped[str] = mapped_column(Text)
    files: Mapped[dict] = mapped_column(JSONType)  # file name -> text, as deployed
    forms: Mapped[dict] = mapped_column(JSONType)  # form name -> JSON Schema
    deployed_by: Mapped[str | None] = mapped_column(String(100))
    deployed_at: Mapped[datetime] = mapped_column(UTCDateTime)
    state: Mapped[str] = mapped_column(String(20), default="deployed")  # deployed | retired


class VersionPin(Base):
    """Pins a version for a scope (e.g. a jurisdiction path) so a pilot can run there."""

    __tablename__ = "version_pin"
    process_id: Mapped[str] = mapped_column(String(200), primary_key=True)
    scope: Mapped[str] = mapped_column(String(200), primary_key=True)
    version_id: Mapped[int] = mapped_column(ForeignKey("process_version.id"))


class Instance(Base):
    __tablename__ = "instance"
    __table_args__ = (Index("ix_instance_timer_due", "status", "next_timer_at"),)
    id: Mapped[int] = mapped_column(primary_key=True)
    process_id: Mapped[str] = mapped_column(String(200), index=True)
    version_id: Mapped[int] = mapped_column(ForeignKey("process_version.id"), index=True)
    business_key: Mapped[str | None] = mapped_column(String(100), index=True)
    status: Mapped[str] = mapped_column(String(20))  # running | completed | cancelled | failed
    state_json: Mapped[str] = mapped_column(Text)
    next_timer_at: Mapped[datetime | None] = mapped_column(UTCDateTime, index=True)
    lock_version: Mapped[int] = mapped_column(Integer, default=0)
    event_seq: Mapped[int] = mapped_column(Integer, default=0)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime)
    started_by: Mapped[str | None] = mapped_column(String(100))
    error_task: Mapped[str | None] = mapped_column(String(200))
    error_message: Mapped[str | None] = mapped_column(Text)


class WorkItem(Base):
    """A READY user task, projected for inboxes."""

    __tablename__ = "work_item"
    __table_args__ = (
        Index("ix_work_item_unit_inbox", "unit_id", "state", "due_at"),
        Index("ix_work_item_user_inbox", "user_id", "state", "due_at"),
        Index("ix_work_item_role", "role", "state"),
        Index("ix_work_item_spec_state", "task_spec", "state"),  # the open tasks of one kind (e.g. 督办)
        Index("ix_work_item_closed_by", "closed_by", "closed_at"),  # "cases I acted on"
    )
    id: Mapped[int] = mapped_column(primary_key=True)
    instance_id: Mapped[int] = mapped_column(ForeignKey("instance.id"), index=True)
    task_guid: Mapped[str] = mapped_column(String(36), unique=True)
    task_spec: Mapped[str] = mapped_column(String(200))
    process_id: Mapped[str] = mapped_column(String(200))
    name: Mapped[str | None] = mapped_column(String(300))
    form: Mapped[str | None] = mapped_column(String(200))
    unit_id: Mapped[str | None] = mapped_column(String(64))
    role: Mapped[str | None] = mapped_column(String(64))
    user_id: Mapped[str | None] = mapped_column(String(64))
    state: Mapped[str] = mapped_column(String(20), default="open")  # open | completed | cancelled
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    warn_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    due_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    closed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    closed_by: Mapped[str | None] = mapped_column(String(100))
    props: Mapped[dict] = mapped_column(JSONType, default=dict)


class InstanceEvent(Base):
    """Append-only audit trail, written in the same transaction as the step."""

    __tablename__ = "instance_event"
    __table_args__ = (UniqueConstraint("instance_id", "seq", name="uq_instance_event_seq"),)
    id: Mapped[int] = mapped_column(primary_key=True)
    instance_id: Mapped[int] = mapped_column(ForeignKey("instance.id"), index=True)
    seq: Mapped[int] = mapped_column(Integer)
    at: Mapped[datetime] = mapped_column(UTCDateTime)
    actor: Mapped[str | None] = mapped_column(String(100))
    kind: Mapped[str] = mapped_column(String(40), index=True)
    task: Mapped[str | None] = mapped_column(String(200))
    data: Mapped[dict] = mapped_column(JSONType, default=dict)
    # HMAC over this row's content and the previous row's hash (engine.audit_chain)
    hash: Mapped[str | None] = mapped_column(String(64))


class ChainHead(Base):
    """The head of a named audit chain (engine.audit_chain): the last seq and hash, and the anchor
    (the last purged row) that verification starts from."""

    __tablename__ = "audit_chain_head"
    name: Mapped[str] = mapped_column(String(40), primary_key=True)
    seq: Mapped[int] = mapped_column(Integer, default=0)
    hash: Mapped[str | None] = mapped_column(String(64))
    anchor_seq: Mapped[int] = mapped_column(Integer, default=0)
    anchor_hash: Mapped[str | None] = mapped_column(String(64))
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime)
