"""Notification tables: what a person was told (in-app, with a read mark) and how they want to
be told outside the app (channels per kind, addresses, quiet hours).

Written by the notification listener (`grid.cases.notifications`) in the step's own
transaction, so a notification never tells of a step that was rolled back.
"""
from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey, Index, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from engine.db import Base, UTCDateTime
from engine.models import JSONType


class Notification(Base):
    """One in-app notification for one person. `args` holds the values its text is built from
    (case number, task name, comment ...), so the text is rendered in the reader's language."""

    __tablename__ = "notification"
    __table_args__ = (Index("ix_notification_staff_read", "staff_id", "read_at", "id"),)
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    staff_id: Mapped[str] = mapped_column(ForeignKey("staff.id"))
    kind: Mapped[str] = mapped_column(String(30))
    case_id: Mapped[int | None] = mapped_column(ForeignKey("dispute_case.id"), index=True)
    task_guid: Mapped[str | None] = mapped_column(String(36))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    read_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    args: Mapped[dict] = mapped_column(JSONType, default=dict)


class NotificationPref(Base):
    """A person's outbound preferences: which kinds go by which channel (`channels`:
    {kind: [channel, ...]}; a kind not named uses the defaults), the addresses, and quiet hours
    ("HH:MM" in Asia/Shanghai; SMS and WeCom wait until the end; empty: no quiet hours)."""

    __tablename__ = "notification_pref"
    staff_id: Mapped[str] = mapped_column(ForeignKey("staff.id"), primary_key=True)
    channels: Mapped[dict] = mapped_column(JSONType, default=dict)
    email: Mapped[str | None] = mapped_column(String(200))
    wecom_user: Mapped[str | None] = mapped_column(String(64))
    phone: Mapped[str | None] = mapped_column(String(20))  # None: the staff record's phone
    quiet_start: Mapped[str | None] = mapped_column(String(5))
    quiet_end: Mapped[str | None] = mapped_column(String(5))
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime)
