"""Case lists for every role: 在办件 (open cases in my jurisdiction), 我上报的 (my reports) and
经我办理 (cases I acted on); 已办结 is the archive (`service.search_archive`).

The inbox stays the personal task list; these lists follow cases. Every list is checked against
the person's jurisdiction (a unit outside it is Forbidden, a case outside it never shows) and
paged by reading one row past the page, never counting the whole table:

- 在办件 reads the open stock through `ix_dispute_case_status_unit_path` (status = open, grid path
  under the unit), so its cost follows the open cases of the subtree, not the archive. The state
  filters (warned, overdue, supervised) come from `case_late`, an equality on its scope.
- 我上报的 reads `ix_dispute_case_reporter_id`.
- 经我办理 reads the work items the person closed (`work_item.closed_by`).
Each row carries the current level and unit, the handlers and the time left, looked up for the
page's cases only (by instance id and primary keys).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from engine import clock
from engine.models import WorkItem
from grid.cases.models import CASE_LEVELS, CATEGORIES, CaseLate, DisputeCase
from grid.errors import Forbidden
from grid.org import service as org
from grid.org.models import OrgUnit, Staff

STATES = ("normal", "warned", "overdue", "supervised")
SORTS = ("newest", "oldest", "due")
STATUSES = ("open", "closed")
SUPERVISE_TASK = "supervise"  # the 督办催办 user task of workflows/handle_level.bpmn
EXPORT_MAX = 5000  # rows in one XLSX export (the export says so when it stops there)


@dataclass
class CaseRow:
    """One line of a case list."""

    case_id: int
    case_no: str
    category: str
    description: str
    status: str
    result: str | None
    grid_code: str
    unit_path: str
    current_level: str | None
    current_unit: str | None
    reporter_id: str
    reporter: str
    reported_at: datetime
    archived_at: datetime | None
    handlers: list[str] = field(default_factory=list)
    due_at: datetime | None = None
    state: str = "normal"  # normal | warned | overdue (the worst of its open work)
    supervised: bool = False  # an open 督办 task
    acted_at: datetime | None = None  # 经我办理: when the person last closed a task of it
    hierarchy: list[str] = field(default_factory=list)  # unit names from the county down to the grid
    unit_name: str | None = None  # the current unit's name

    def time_left(self, now: datetime | None = None) -> timedelta | None:
        """Until the earliest due time of its open work (negative when overdue)."""
        return self.due_at - (now or clock.now()) if self.due_at else None


@dataclass
class CasePage:
    rows: list[CaseRow]
    page: int
    per_page: int
    has_next: bool
    unit: OrgUnit | None = None  # the unit filter, when one was given


@dataclass
class UnitPicker:
    """The unit tree picker: where we are (crumbs from the person's own unit down) and the
    units one level below, to drill into."""

    crumbs: list[tuple[str, str]]
    children: list[tuple[str, str, str]]  # (code, name, level)


# ---- jurisdiction ------------------------------------------------------------------------------
def _scope(s: Session, staff_id: str, unit: str | None) -> tuple[list[str], OrgUnit | None]:
    """The paths a list covers: the person's outermost units, or the one unit asked for if it
    lies in their jurisdiction (Forbidden otherwise, unknown units alike: no existence oracle)."""
    paths = org.jurisdiction_paths(s, staff_id)
    if unit is None:
        return paths, None
    u = s.get(OrgUnit, unit) if unit and "\x00" not in unit and len(unit) <= 20 else None
    if u is None or not any(u.path.startswith(p) for p in paths):
        raise Forbidden("this unit is outside your jurisdiction")
    return [u.path], u


def unit_picker(svc, staff_id: str, unit: str | None = None) -> UnitPicker:
    """The tree picker for `unit` (None: the person's own units as the choices)."""
    with svc.db.read() as s:
        paths, u = _scope(s, staff_id, unit)
        if u is None:
            roots = list(s.scalars(select(OrgUnit).where(OrgUnit.path.in_(paths)).order_by(OrgUnit.path))) \
                if paths else []
            if len(roots) == 1:  # one unit: open it straight away
                u = roots[0]
            else:
                return UnitPicker([], [(r.code, r.name, r.level) for r in roots])
        mine = org.jurisdiction_paths(s, staff_id)
        top = next(p for p in mine if u.path.startswith(p))
        codes = org.path_codes(u.path)[len(org.path_codes(top)) - 1:]
        names = dict(s.execute(select(OrgUnit.code, OrgUnit.name).where(OrgUnit.code.in_(codes))).all())
        return UnitPicker([(c, names.get(c, c)) for c in codes],
                          [(c.code, c.name, c.level) for c in org.children(s, u.code)])


# ---- row details -------------------------------------------------------------------------------
def _rows(s: Session, found: list[tuple[DisputeCase, datetime | None]], now: datetime) -> list[CaseRow]:
    """Rows for one page of cases: handlers, due time and state from their open work items,
    names of units and people, the grid's hierarchy (all by key, for these cases only)."""
    cases = [c for c, _ in found]
    by_inst: dict[int, list[WorkItem]] = {}
    inst_ids = [c.instance_id for c in cases if c.instance_id]
    if inst_ids:
        for wi in s.scalars(select(WorkItem).where(WorkItem.instance_id.in_(inst_ids), WorkItem.state == "open")
                            .order_by(WorkItem.due_at, WorkItem.id)):
            by_inst.setdefault(wi.instance_id, []).append(wi)
    items = [wi for v in by_inst.values() for wi in v]
    people = {wi.user_id for wi in items if wi.user_id} | {c.reporter_id for c in cases}
    names = dict(s.execute(select(Staff.id, Staff.name).where(Staff.id.in_(people))).all()) if people else {}
    pools = org.pool_names(s, {(wi.unit_id, wi.role) for wi in items if not wi.user_id and wi.unit_id and wi.role})
    codes = {code for c in cases for code in org.path_codes(c.unit_path)} | {c.current_unit for c in cases if c.current_unit}
    units = dict(s.execute(select(OrgUnit.code, OrgUnit.name).where(OrgUnit.code.in_(codes))).all()) if codes else {}
    out = []
    for c, acted in found:
        work = [wi for wi in by_inst.get(c.instance_id, []) if wi.task_spec != SUPERVISE_TASK] \
            or by_inst.get(c.instance_id, [])
        handlers: list[str] = []
        for wi in work:
            who = [names.get(wi.user_id, wi.user_id)] if wi.user_id else pools.get((wi.unit_id, wi.role), [])
            handlers.extend(h for h in who if h not in handlers)
        all_work = by_inst.get(c.instance_id, [])
        dues = [wi.due_at for wi in all_work if wi.due_at]
        state = "normal"
        if any(d <= now for d in dues):
            state = "overdue"
        elif any(wi.warn_at and wi.warn_at <= now for wi in all_work):
            state = "warned"
        out.append(CaseRow(
            c.id, c.case_no, c.category, c.description, c.status, c.result, c.grid_code, c.unit_path,
            c.current_level, c.current_unit, c.reporter_id, names.get(c.reporter_id, c.reporter_id), c.reported_at,
            c.archived_at, handlers, min(dues) if dues else None, state,
            any(wi.task_spec == SUPERVISE_TASK for wi in all_work), acted,
            [units.get(code, code) for code in org.path_codes(c.unit_path)[1:]],
            units.get(c.current_unit) if c.current_unit else None))
    return out


def _page(s: Session, q, page: int, per_page: int, now: datetime, unit: OrgUnit | None = None,
          with_acted: bool = False) -> CasePage:
    page, per_page = max(1, page), max(1, per_page)
    got = list(s.execute(q.limit(per_page + 1).offset((page - 1) * per_page)))
    found = [(r[0], r[1] if with_acted else None) for r in got[:per_page]]
    return CasePage(_rows(s, found, now), page, per_page, len(got) > per_page, unit)


# ---- 在办件 ------------------------------------------------------------------------------------
def _late_cases(scopes: list[str], cond) -> Any:
    """Case ids with open work in `case_late` under these scopes matching `cond`."""
    scope = CaseLate.scope == scopes[0] if len(scopes) == 1 else CaseLate.scope.in_(scopes)
    return select(CaseLate.case_id).where(scope, cond)


def open_cases(svc, staff_id: str, *, unit: str | None = None, level: str | None = None,
               category: str | None = None, state: str | None = None, reporter: str | None = None,
               date_from: datetime | None = None, date_to: datetime | None = None, sort: str = "newest",
               page: int = 1, per_page: int = 30) -> CasePage:
    """在办件: open cases reported in the person's jurisdiction (or under `unit`, in it), by the
    current level, category, state (normal / warned / overdue / supervised), reporter (staff id)
    and report date [date_from, date_to); sorted newest or oldest first, or by time left ("due")."""
    now = clock.now()
    with svc.db.read() as s:
        paths, u = _scope(s, staff_id, unit)
        if not paths:
            return CasePage([], page, per_page, False, u)
        q = select(DisputeCase).where(DisputeCase.status == "open",
                                      org.paths_condition(paths, DisputeCase.unit_path))
        if level:
            q = q.where(DisputeCase.current_level == level)
        if category:
            q = q.where(DisputeCase.category == category)
        if reporter:
            q = q.where(DisputeCase.reporter_id == reporter)
        if date_from:
            q = q.where(DisputeCase.reported_at >= date_from)
        if date_to:
            q = q.where(DisputeCase.reported_at < date_to)
        if state == "overdue":
            q = q.where(DisputeCase.id.in_(_late_cases(paths, CaseLate.due_key <= now)))
        elif state == "warned":
            q = q.where(DisputeCase.id.in_(_late_cases(paths, CaseLate.late_at <= now)),
                        DisputeCase.id.not_in(_late_cases(paths, CaseLate.due_key <= now)))
        elif state == "normal":
            q = q.where(DisputeCase.id.not_in(_late_cases(paths, CaseLate.late_at <= now)))
        elif state == "supervised":
            sup = (_late_cases(paths, WorkItem.task_spec == SUPERVISE_TASK)
                   .join(WorkItem, WorkItem.id == CaseLate.work_item_id))
            q = q.where(DisputeCase.id.in_(sup))
        if sort == "due":
            first_due = (select(func.min(WorkItem.due_at))
                         .where(WorkItem.instance_id == DisputeCase.instance_id, WorkItem.state == "open")
                         .correlate(DisputeCase).scalar_subquery())
            q = q.order_by(first_due.is_(None), first_due, DisputeCase.id)
        elif sort == "oldest":
            q = q.order_by(DisputeCase.reported_at, DisputeCase.id)
        else:
            q = q.order_by(DisputeCase.reported_at.desc(), DisputeCase.id.desc())
        return _page(s, q.add_columns(DisputeCase.id), page, per_page, now, u)


# ---- 我上报的 / 经我办理 ------------------------------------------------------------------------
def _status_cond(status: str | None):
    if status == "open":
        return DisputeCase.status == "open"
    if status == "closed":
        return DisputeCase.status.in_(("archived", "cancelled"))
    return None


def my_reports(svc, staff_id: str, *, status: str | None = None, page: int = 1, per_page: int = 30) -> CasePage:
    """我上报的: the cases the person reported (open, closed or both), newest first; only those
    still in their jurisdiction (the ones whose pages they may open)."""
    now = clock.now()
    page, per_page = max(1, page), max(1, per_page)
    with svc.db.read() as s:
        paths = org.jurisdiction_paths(s, staff_id)
        cond = _status_cond(status)
        # The person's newest reports first (ix_dispute_case_reporter_id read backwards), the
        # jurisdiction checked on those: given the reporter and the path together, PostgreSQL
        # cannot know that a worker's reports all lie in her grid and sorted every one of them.
        # A window short of the page (reports left outside the jurisdiction) is widened.
        window = 4 * page * per_page + 100
        while True:
            newest = select(DisputeCase.id).where(DisputeCase.reporter_id == staff_id)
            if cond is not None:
                newest = newest.where(cond)
            newest = newest.order_by(DisputeCase.id.desc()).limit(window).subquery()
            q = (select(DisputeCase, DisputeCase.id).join(newest, newest.c.id == DisputeCase.id)
                 .where(org.paths_condition(paths, DisputeCase.unit_path)).order_by(DisputeCase.id.desc()))
            got = _page(s, q, page, per_page, now)
            if got.has_next or s.scalar(select(func.count()).select_from(newest)) < window:
                return got
            window *= 8


def handled_by_me(svc, staff_id: str, *, status: str | None = None, page: int = 1,
                  per_page: int = 30) -> CasePage:
    """经我办理: cases in which the person completed a task (work_item.closed_by), most recent
    action first, once each; only those in their jurisdiction."""
    now = clock.now()
    with svc.db.read() as s:
        paths = org.jurisdiction_paths(s, staff_id)
        acted = (select(WorkItem.instance_id, func.max(WorkItem.closed_at).label("acted_at"))
                 .where(WorkItem.closed_by == staff_id, WorkItem.state == "completed")
                 .group_by(WorkItem.instance_id).subquery())
        q = (select(DisputeCase, acted.c.acted_at).join(acted, acted.c.instance_id == DisputeCase.instance_id)
             .where(org.paths_condition(paths, DisputeCase.unit_path)))
        cond = _status_cond(status)
        if cond is not None:
            q = q.where(cond)
        q = q.order_by(acted.c.acted_at.desc(), DisputeCase.id.desc())
        return _page(s, q, page, per_page, now, with_acted=True)


def valid(value: str | None, allowed: tuple[str, ...]) -> str | None:
    """`value` if it is one of `allowed`, else None (query-string filters)."""
    return value if value in allowed else None


LEVEL_CHOICES = CASE_LEVELS
CATEGORY_CHOICES = CATEGORIES
__all__ = ["CaseRow", "CasePage", "UnitPicker", "open_cases", "my_reports", "handled_by_me", "unit_picker",
           "STATES", "SORTS", "STATUSES", "EXPORT_MAX", "valid"]
