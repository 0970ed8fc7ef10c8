"""Which instances a migration concerns: the `Selection`, and loading them in chunks."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from ..errors import NotFound
from ..models import Instance, ProcessVersion, WorkItem

OPEN_STATUSES = ("running", "failed")


@dataclass
class Selection:
    """Which instances of a process to move.

    `from_versions` are version numbers (default: every version but the target); `instance_ids`
    and `where` (a SQLAlchemy condition on Instance, e.g. the domain's "instances of this unit") narrow
    it, as do `business_keys`; `at_tasks` keeps instances with an open work item on one of these task ids.
    """

    process_id: str
    from_versions: list[int] | None = None
    instance_ids: list[int] | None = None
    business_keys: list[str] | None = None
    at_tasks: list[str] | None = None
    where: Any = None
    label: str | None = None

    def describe(self) -> dict:
        def short(xs):
            return xs if xs is None or len(xs) <= 1000 else f"{len(xs)} given"
        return {"process_id": self.process_id, "from_versions": self.from_versions,
                "instance_ids": short(self.instance_ids), "business_keys": short(self.business_keys),
                "at_tasks": self.at_tasks, "scope": self.label}


def find_version(s: Session, process_id: str, number: int) -> ProcessVersion:
    """Version `number` of a process, or NotFound."""
    v = s.scalar(select(ProcessVersion).where(ProcessVersion.process_id == process_id,
                                              ProcessVersion.number == number))
    if v is None:
        raise NotFound(f"{process_id} has no version {number}")
    return v


def select_ids(s: Session, sel: Selection, to: ProcessVersion) -> list[int]:
    """Ids of the open instances `sel` names that are not on `to` yet, in id order."""
    q = select(Instance.id).where(Instance.process_id == sel.process_id, Instance.status.in_(OPEN_STATUSES),
                                  Instance.version_id != to.id)
    if sel.from_versions:
        vids = [find_version(s, sel.process_id, n).id for n in sel.from_versions]
        q = q.where(Instance.version_id.in_(vids))
    if sel.instance_ids is not None:
        q = q.where(Instance.id.in_(sel.instance_ids))
    if sel.business_keys is not None:
        q = q.where(Instance.business_key.in_(sel.business_keys))
    if sel.at_tasks:
        q = q.where(Instance.id.in_(select(WorkItem.instance_id).where(
            WorkItem.state == "open", WorkItem.task_spec.in_(sel.at_tasks))))
    if sel.where is not None:
        q = q.where(sel.where)
    return list(s.scalars(q.order_by(Instance.id)))


def load_open(s: Session, ids: list[int]) -> tuple[dict[int, Instance], dict[int, list[WorkItem]]]:
    """The instances with these ids and, per instance, its open work items (two queries for a chunk)."""
    insts = {i.id: i for i in s.scalars(select(Instance).where(Instance.id.in_(ids)))}
    rows: dict[int, list[WorkItem]] = {i: [] for i in ids}
    for w in s.scalars(select(WorkItem).where(WorkItem.instance_id.in_(ids), WorkItem.state == "open")
                       .order_by(WorkItem.id)):
        rows[w.instance_id].append(w)
    return insts, rows
