"""Which cases and tasks are under supervision (督办), so lists show "督办中" instead of "正常".

A case is supervised while a 督办 is open at its current level: its supervise task is open, or a
supervision record was written at its current unit since it last entered that level. A task is
supervised when it is the supervise task itself, or it belongs to the current level of a
supervised case.
"""
from __future__ import annotations

from datetime import datetime

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from engine.models import WorkItem
from grid.cases.models import CaseRecord, DisputeCase

SUPERVISE_TASK = "supervise"


def supervised_cases(s: Session, case_ids: list[int], current: dict[int, str | None] | None = None) -> set[int]:
    """The ids among `case_ids` of open cases with an open 督办 at their current level.
    `current`: the open cases' current units when the caller has read them already."""
    if not case_ids:
        return set()
    cases = current if current is not None else dict(s.execute(
        select(DisputeCase.id, DisputeCase.current_unit)  # two columns, not whole rows
        .where(DisputeCase.id.in_(list(case_ids)), DisputeCase.status == "open")).all())
    if not cases:
        return set()
    out = set(s.scalars(select(DisputeCase.id).join(WorkItem, WorkItem.instance_id == DisputeCase.instance_id)
                        .where(DisputeCase.id.in_(list(cases)), WorkItem.state == "open",
                               WorkItem.task_spec == SUPERVISE_TASK)))
    last: dict[tuple[str, int, str], datetime] = {  # the newest level entry and 督办 per case and unit
        (kind, cid, unit): at for cid, unit, kind, at in s.execute(
            select(CaseRecord.case_id, CaseRecord.unit_code, CaseRecord.kind, func.max(CaseRecord.at))
            .where(CaseRecord.case_id.in_(list(cases)), CaseRecord.kind.in_(("level_entered", "supervision")))
            .group_by(CaseRecord.case_id, CaseRecord.unit_code, CaseRecord.kind))}
    for (kind, cid, unit), at in last.items():
        if kind != "supervision" or unit != cases[cid]:
            continue
        since = last.get(("level_entered", cid, unit))
        if since is None or at >= since:
            out.add(cid)
    return out


def supervised_tasks(s: Session, task_guids: list[str]) -> set[str]:
    """The guids among `task_guids` of tasks shown as supervised (see the module docstring)."""
    if not task_guids:
        return set()
    rows = s.execute(select(WorkItem.task_guid, WorkItem.task_spec, WorkItem.unit_id, DisputeCase.id,
                            DisputeCase.current_unit)
                     .join(DisputeCase, DisputeCase.instance_id == WorkItem.instance_id)
                     .where(WorkItem.task_guid.in_(list(task_guids)))).all()
    sup = supervised_cases(s, list({r[3] for r in rows}))
    return {guid for guid, spec, unit, cid, current in rows
            if spec == SUPERVISE_TASK or (cid in sup and unit == current)}


def supervised(svc, case_ids: list[int] | None = None, task_guids: list[str] | None = None) -> dict[str, set]:
    """{"cases": supervised case ids, "tasks": supervised task guids} for a page's rows."""
    with svc.db.read() as s:
        return {"cases": supervised_cases(s, list(case_ids or [])), "tasks": supervised_tasks(s, list(task_guids or []))}
