"""What one step did: the `Step` record the runtime fills while it acts and hands to listeners
before commit (so domain code reacts inside the same transaction)."""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy.orm import Session

from .calendar import WorkCalendar


def jsonable(v: Any) -> Any:
    """`v` as plain JSON values (datetimes as ISO text, anything unknown as its str), for audit rows."""
    if isinstance(v, dict):
        return {str(k): jsonable(x) for k, x in v.items()}
    if isinstance(v, (list, tuple, set)):
        return [jsonable(x) for x in v]
    if isinstance(v, datetime):
        return v.isoformat()
    if v is None or isinstance(v, (str, int, float, bool)):
        return v
    return str(v)


@dataclass
class Step:
    """Everything one step did, handed to listeners before commit."""

    actor: str | None
    instance_id: int | None = None
    process_id: str | None = None
    version_id: int | None = None
    business_key: str | None = None
    status: str | None = None
    events: list[dict] = field(default_factory=list)  # audit rows to write
    emitted: list[dict] = field(default_factory=list)  # domain events from emit()
    thrown: list[dict] = field(default_factory=list)
    completed_guids: set[str] = field(default_factory=set)
    opened: list[dict] = field(default_factory=list)  # work item rows created
    closed: list[str] = field(default_factory=list)
    current_task: str | None = None
    lock_version: int = 0
    data: dict = field(default_factory=dict)  # a snapshot of the top workflow's data
    calendar: WorkCalendar | None = None
    fallback_state: str | None = None  # a new instance's state before it ran, kept if its run cannot be stored

    def emit(self, kind: str, data: dict) -> None:
        clean = jsonable(data)
        self.emitted.append({"kind": kind, "data": clean, "task": self.current_task})
        self.record(kind, task=self.current_task, data=clean)

    def record(self, kind: str, task: str | None = None, data: dict | None = None, actor: str | None = None) -> None:
        self.events.append({"kind": kind, "task": task, "data": data or {}, "actor": actor or self.actor})


Listener = Callable[[Session, Step], None]
