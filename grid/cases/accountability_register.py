"""Reading the registers: 问责台账 (accountability entries) and 督办台账 (supervision), for the
register pages and their exports.

Every read is checked against the person's jurisdiction: a list covers the units under their
own (or one unit in it, Forbidden otherwise); an entry opens for whoever's jurisdiction covers
the late unit, or who may act on its open task. Lists are paged by reading one row past the
page, through `ix_accountability_entry_path_at` / `ix_supervision_entry_path_at` (the unit's
path prefix), so their cost follows the register of the subtree, not the case history.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from engine.errors import NotFound
from engine.models import WorkItem
from grid.cases import lists
from grid.cases import service as cases
from grid.cases.accountability_models import (
    ENTRY_STATES,
    OUTCOMES,
    SUPERVISION_STATES,
    AccountabilityEntry,
    SupervisionEntry,
)
from grid.cases.models import DisputeCase
from grid.org import service as org
from grid.org.models import OrgUnit, Staff

EXPORT_MAX = lists.EXPORT_MAX
MINUTES_PER_WORKDAY = 24 * 60  # working minutes count whole working days (see rollup.working_minutes)


@dataclass
class EntryRow:
    """One line of the accountability register."""

    id: int
    entry_no: str
    case_id: int
    case_no: str
    category: str
    level: str
    unit_code: str
    unit_name: str
    hierarchy: list[str]  # unit names from the county down to the late unit
    reviewer_name: str
    staff: list[str]  # who held the task when it went overdue
    task_spec: str | None
    overdue_at: datetime
    due_at: datetime | None
    late_minutes: int
    held_minutes: int
    state: str
    outcome: str | None
    note: str | None
    review_action: str | None
    review_comment: str | None
    reviewed_by: str | None
    reviewed_at: datetime | None
    explanation: str | None
    measures: str | None
    explained_by: str | None
    explained_at: datetime | None
    explanation_missed: bool
    decided_by: str | None
    decided_at: datetime | None
    instance_id: int | None

    @property
    def late_days(self) -> float:
        return self.late_minutes / MINUTES_PER_WORKDAY

    @property
    def held_days(self) -> float:
        return self.held_minutes / MINUTES_PER_WORKDAY


@dataclass
class SupervisionRow:
    """One line of the supervision register."""

    id: int
    case_id: int
    case_no: str
    category: str
    level: str
    unit_code: str
    unit_name: str
    hierarchy: list[str]
    opened_at: datetime
    due_at: datetime | None
    state: str
    responded_by: str | None
    responded_at: datetime | None
    response_minutes: int | None
    comment: str | None
    closed_at: datetime | None

    @property
    def response_days(self) -> float | None:
        return None if self.response_minutes is None else self.response_minutes / MINUTES_PER_WORKDAY


@dataclass
class RegisterPage:
    rows: list[Any]
    page: int
    per_page: int
    has_next: bool
    unit: OrgUnit | None = None


@dataclass
class OpenTask:
    task_guid: str
    task_spec: str
    form: str | None
    name: str | None
    unit_name: str
    role: str | None
    due_at: datetime | None
    can_act: bool


@dataclass
class EntryPage:
    row: EntryRow
    tasks: list[OpenTask] = field(default_factory=list)
    case_visible: bool = False
    version_id: int | None = None


def _names(s: Session, staff_ids: set[str]) -> dict[str, str]:
    ids = {i for i in staff_ids if i}
    return dict(s.execute(select(Staff.id, Staff.name).where(Staff.id.in_(ids))).all()) if ids else {}


def _units(s: Session, paths: list[str], extra: set[str]) -> dict[str, str]:
    codes = {c for p in paths for c in org.path_codes(p)} | extra
    return dict(s.execute(select(OrgUnit.code, OrgUnit.name).where(OrgUnit.code.in_(codes))).all()) if codes else {}


def _hierarchy(path: str, units: dict[str, str]) -> list[str]:
    return [units.get(c, c) for c in org.path_codes(path)[1:]]  # below the city


def _entry_rows(s: Session, found: list[tuple[AccountabilityEntry, DisputeCase]]) -> list[EntryRow]:
    people = {i for e, _ in found for i in (e.staff_ids or [])} | {
        i for e, _ in found for i in (e.reviewed_by, e.explained_by, e.decided_by) if i}
    names = _names(s, people)
    units = _units(s, [e.unit_path for e, _ in found], {e.reviewer_unit for e, _ in found})
    return [EntryRow(
        e.id, e.entry_no, c.id, c.case_no, c.category, e.level, e.unit_code, units.get(e.unit_code, e.unit_code),
        _hierarchy(e.unit_path, units), units.get(e.reviewer_unit, e.reviewer_unit),
        [names.get(i, i) for i in e.staff_ids or []], e.task_spec, e.overdue_at, e.due_at, e.late_minutes,
        e.held_minutes, e.state, e.outcome, e.note, e.review_action, e.review_comment,
        names.get(e.reviewed_by, e.reviewed_by) if e.reviewed_by else None, e.reviewed_at, e.explanation, e.measures,
        names.get(e.explained_by, e.explained_by) if e.explained_by else None, e.explained_at, e.explanation_missed,
        names.get(e.decided_by, e.decided_by) if e.decided_by else None, e.decided_at, e.instance_id)
        for e, c in found]


def _in_scope(s, staff_id: str, unit: str | None, model, at, date_from: datetime | None,
              date_to: datetime | None, state: str | None, states, groups: dict[str, tuple[str, ...]]):
    """(the query of `model` rows with their case, of units in the person's jurisdiction or under
    `unit`, with `at` in [date_from, date_to), in `state` (one of `states`, or a name of `groups`:
    any of its states); None if the person sees no unit there, the unit)."""
    paths, u = lists._scope(s, staff_id, unit)
    if not paths:
        return None, u
    q = (select(model, DisputeCase).join(DisputeCase, DisputeCase.id == model.case_id)
         .where(org.paths_condition(paths, model.unit_path)))
    if date_from:
        q = q.where(at >= date_from)
    if date_to:
        q = q.where(at < date_to)
    if state in states:
        q = q.where(model.state == state)
    elif state in groups:
        q = q.where(model.state.in_(groups[state]))
    return q, u


def _one_page(s, q, model, at, page: int, per_page: int) -> tuple[list, bool]:
    """(the rows of the page, newest `at` first, whether more follow)."""
    q = q.order_by(at.desc(), model.id.desc())
    got = list(s.execute(q.limit(per_page + 1).offset((page - 1) * per_page)).all())
    return got[:per_page], len(got) > per_page


def entries(svc, staff_id: str, *, unit: str | None = None, date_from: datetime | None = None,
            date_to: datetime | None = None, state: str | None = None, outcome: str | None = None,
            page: int = 1, per_page: int = 30) -> RegisterPage:
    """问责台账: entries of late units in the person's jurisdiction (or under `unit`, in it), made in
    [date_from, date_to), by state (review / explain / decide / closed / unstarted) and outcome,
    newest first."""
    page, per_page = max(1, page), max(1, per_page)
    with svc.db.read() as s:
        q, u = _in_scope(s, staff_id, unit, AccountabilityEntry, AccountabilityEntry.overdue_at, date_from, date_to,
                         state, ENTRY_STATES, {"open": ("review", "explain", "decide")})
        if q is None:
            return RegisterPage([], page, per_page, False, u)
        if outcome in OUTCOMES:
            q = q.where(AccountabilityEntry.outcome == outcome)
        found, more = _one_page(s, q, AccountabilityEntry, AccountabilityEntry.overdue_at, page, per_page)
        return RegisterPage(_entry_rows(s, found), page, per_page, more, u)


def entry(svc, staff_id: str, entry_id: int) -> EntryPage:
    """One entry with its open tasks; NotFound unless its unit lies in the person's jurisdiction
    or one of its open tasks is theirs."""
    with svc.db.read() as s:
        found = s.execute(select(AccountabilityEntry, DisputeCase)
                          .join(DisputeCase, DisputeCase.id == AccountabilityEntry.case_id)
                          .where(AccountabilityEntry.id == entry_id)).first()
        if found is None:
            raise NotFound("no such entry")
        e, c = found
        items = list(s.scalars(select(WorkItem).where(WorkItem.instance_id == e.instance_id, WorkItem.state == "open")
                               .order_by(WorkItem.id))) if e.instance_id else []
        mine = [cases.can_act(s, staff_id, wi) for wi in items]
        paths = org.jurisdiction_paths(s, staff_id)
        sees = any(e.unit_path.startswith(p) for p in paths)
        if not sees and not any(mine):
            raise NotFound("no such entry")
        units = _units(s, [], {wi.unit_id for wi in items if wi.unit_id})
        tasks = [OpenTask(wi.task_guid, wi.task_spec, wi.form, wi.name, units.get(wi.unit_id, wi.unit_id or ""),
                          wi.role, wi.due_at, can) for wi, can in zip(items, mine, strict=True)]
        from engine.models import Instance

        version_id = s.scalar(select(Instance.version_id).where(Instance.id == e.instance_id)) if e.instance_id else None
        return EntryPage(_entry_rows(s, [(e, c)])[0], tasks, any(c.unit_path.startswith(p) for p in paths), version_id)


def task_entry(svc, task_guid: str) -> int | None:
    """The entry whose process holds this task (None for any other task)."""
    with svc.db.read() as s:
        return s.scalar(select(AccountabilityEntry.id).join(WorkItem, WorkItem.instance_id == AccountabilityEntry.instance_id)
                        .where(WorkItem.task_guid == task_guid))


def supervisions(svc, staff_id: str, *, unit: str | None = None, date_from: datetime | None = None,
                 date_to: datetime | None = None, state: str | None = None, page: int = 1,
                 per_page: int = 30) -> RegisterPage:
    """督办台账: supervision of units in the person's jurisdiction (or under `unit`), opened in
    [date_from, date_to), open or closed (urged / ended), with the time to the urge, newest first."""
    page, per_page = max(1, page), max(1, per_page)
    with svc.db.read() as s:
        q, u = _in_scope(s, staff_id, unit, SupervisionEntry, SupervisionEntry.opened_at, date_from, date_to,
                         state, SUPERVISION_STATES, {"closed": ("urged", "ended")})
        if q is None:
            return RegisterPage([], page, per_page, False, u)
        found, more = _one_page(s, q, SupervisionEntry, SupervisionEntry.opened_at, page, per_page)
        names = _names(s, {e.responded_by for e, _ in found if e.responded_by})
        units = _units(s, [e.unit_path for e, _ in found], set())
        rows = [SupervisionRow(e.id, c.id, c.case_no, c.category, e.level, e.unit_code,
                               units.get(e.unit_code, e.unit_code), _hierarchy(e.unit_path, units), e.opened_at,
                               e.due_at, e.state, names.get(e.responded_by, e.responded_by) if e.responded_by else None,
                               e.responded_at, e.response_minutes, e.comment, e.closed_at) for e, c in found]
        return RegisterPage(rows, page, per_page, more, u)
