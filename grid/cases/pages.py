"""Page data for the staff UI: the report form, a task page, a case page, archive filters.

Everything here checks jurisdiction (directly or through `grid.cases.service`) before returning data.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy import select

from engine.errors import NotFound
from engine.models import Instance, WorkItem
from grid.cases import attachments, badges, checks, departments, notifications, reassign
from grid.cases import service as cases
from grid.cases.models import CASE_LEVELS, CaseRecord, DisputeCase
from grid.errors import Forbidden
from grid.org import service as org
from grid.org.models import OrgUnit, Staff, StaffRole


@dataclass
class ReportForm:
    grids: list[tuple[str, str]]  # (code, name)
    version_id: int
    schema: dict


def report_form(svc, staff_id: str, grid_code: str | None = None) -> ReportForm:
    """The report form of the version a new case in this grid would use. Grid workers only."""
    with svc.db.read() as s:
        grids = [(r.unit_code, name) for r, name in s.execute(
            select(StaffRole, OrgUnit.name).join(OrgUnit, OrgUnit.code == StaffRole.unit_code)
            .where(StaffRole.staff_id == staff_id, StaffRole.active.is_(True), StaffRole.role == "grid_worker")
            .order_by(StaffRole.id)).all()]
        if not grids:
            raise Forbidden("only grid workers report disputes")
        code = grid_code if grid_code in dict(grids) else grids[0][0]
        unit = s.get(OrgUnit, code)
        vid = svc.runtime.resolve_version(s, cases.PROCESS_ID, scopes=cases.scopes_for(unit.path))
    return ReportForm(grids, vid, svc.runtime.form_schema(vid, cases.REPORT_FORM) or {})


# ---- tasks -----------------------------------------------------------------------------------
@dataclass
class TaskPage:
    item: WorkItem
    case: DisputeCase | None
    lock_version: int
    version_id: int
    schema: dict | None
    can_act: bool
    staff_options: dict[str, list[tuple[str, str]]]  # field (or "rows.cell" for a unit) -> [(id, label)]
    assigned_to: str  # who the task is for, in words (person name or role@unit)
    unit_name: str
    closed_by: str | None
    # with `details`: what the page shows beside the form, read in the same session
    view: CasePage | None = None  # the case page of the task's case
    repeats: list[dict] | None = None  # the earlier cases this one repeats (a form that names a 重复件)
    urges: list[notifications.Urge] | None = None  # the open task's urges (督办/催办)

    @property
    def offers_departments(self) -> bool:
        """The person can send this task's case to departments: its form picks some (a row's unit
        cell with options, filled only for one who may act)."""
        return any("." in name and opts for name, opts in self.staff_options.items())


def names_duplicate(case: DisputeCase | None, schema: dict | None) -> bool:
    """Whether a task's form can name the original of a 重复件 (the dispatch form)."""
    return bool(case and schema and "duplicate_of" in (schema.get("properties") or {}))


def task_page(svc, staff_id: str, task_guid: str, details: bool = False) -> TaskPage:
    """Everything the task page shows; NotFound unless the task is theirs or in their jurisdiction.
    Read in one session with the visibility check (the staff pickers' people and titles included);
    with `details`, also the case page, the repeats and the urges, from the rows already read."""
    options: dict[str, list[tuple[str, str]]] = {}
    repeats = urges = view = None
    with svc.db.read() as s:
        wi = s.scalar(select(WorkItem).where(WorkItem.task_guid == task_guid))
        if wi is None:
            raise NotFound("no such task")
        c = s.scalar(select(DisputeCase).where(DisputeCase.instance_id == wi.instance_id))
        mine = cases.can_act(s, staff_id, wi)
        if not mine and not (c and cases._sees_case(s, staff_id, c)):
            raise NotFound("no such task")
        inst = s.get(Instance, wi.instance_id)
        can = wi.state == "open" and mine
        if details and c is not None:
            if mine and not cases._sees_case(s, staff_id, c):
                raise NotFound("no such case")  # as the case page itself would answer
            view = _case_page_in(svc, s, staff_id, c)
        known_units = view.units if view else {}
        known_names = dict(view.names) if view else {}
        if wi.unit_id in known_units:
            unit_name = known_units[wi.unit_id] or (wi.unit_id or "")
        else:
            unit_name = s.scalar(select(OrgUnit.name).where(OrgUnit.code == wi.unit_id)) or (wi.unit_id or "")
        schema = svc.runtime.form_schema(inst.version_id, wi.form)
        if details and can and names_duplicate(c, schema):
            repeats = checks.repeats_in(s, staff_id, c)
        wanted = {i for i in (wi.user_id, wi.closed_by) if i}
        if view is not None and wi.state == "open":
            wanted |= {r.actor for r in view.records if r.kind == "urge" and r.actor}
        missing = wanted - set(known_names)
        if missing:
            known_names.update(dict(s.execute(select(Staff.id, Staff.name).where(Staff.id.in_(missing))).all()))
        names = {i: known_names[i] for i in wanted if i in known_names}
        if details:
            urges = notifications.urges_of(wi, view.records, names) if view is not None and wi.state == "open" else []
        pickers = {name: prop.get("x-staff-role") or "mediator"
                   for name, prop in ((schema or {}).get("properties") or {}).items()
                   if prop.get("x-widget") == "staff"} if can else {}
        if can:  # a unit picked in a row of the form (部门协同): the level's staffed departments
            for name, prop in ((schema or {}).get("properties") or {}).items():
                for key, sub in (((prop.get("items") or {}).get("properties")) or {}).items():
                    if sub.get("x-unit-level") == "department":
                        options[f"{name}.{key}"] = departments.choices(s, wi.unit_id)
        people_of = {role: org.staff_for(s, wi.unit_id, role) for role in dict.fromkeys(pickers.values())}
        everyone = {p.id for people in people_of.values() for p in people}
        titles = dict(s.execute(select(StaffRole.staff_id, StaffRole.title).where(
            StaffRole.unit_code == wi.unit_id, StaffRole.active.is_(True),
            StaffRole.staff_id.in_(everyone))).all()) if everyone else {}
    for name, role in pickers.items():
        options[name] = [(p.id, p.name + (f"（{titles[p.id]}）" if titles.get(p.id) else "")) for p in people_of[role]]
    assigned = names.get(wi.user_id, wi.user_id) if wi.user_id else f"{wi.role}@{unit_name}"
    return TaskPage(wi, c, inst.lock_version, inst.version_id, schema, can, options, assigned, unit_name,
                    names.get(wi.closed_by, wi.closed_by) if wi.closed_by else None, view, repeats, urges)


def check_stale(svc, task_guid: str) -> bool:
    """After a Conflict: True if the task is still open (the case merely moved on), False if it is done."""
    with svc.db.read() as s:
        state = s.scalar(select(WorkItem.state).where(WorkItem.task_guid == task_guid))
    return state == "open"


# ---- case page -------------------------------------------------------------------------------
@dataclass
class TimelineEntry:
    at: datetime
    actor: str | None  # staff id, "timer" or None
    kind: str
    task: str | None
    form: str | None
    data: dict = field(default_factory=dict)


@dataclass
class CasePage:
    case: DisputeCase
    tasks: list[WorkItem]
    records: list[CaseRecord]
    timeline: list[TimelineEntry]
    names: dict[str, str]
    units: dict[str, str]
    instance: Instance | None
    files: list[attachments.StoredFile]
    phones_visible: bool
    version_id: int | None
    reporter: str
    # 重复件 links from both ends, each the other case's summary with `direction` to | from
    links: list[dict] = field(default_factory=list)
    supervised: set[str] | None = None  # guids of the open tasks shown as 督办 (None: not read)
    may_reassign: bool | None = None  # with `actions`: a task of it the person may move (None: not read)
    may_transfer: bool | None = None  # with `actions`: the person may send it to departments


def case_page(svc, staff_id: str, case_id: int, actions: bool = False) -> CasePage:
    """The case with its open tasks, records, timeline (audit log), attachments and the names
    and unit names the page needs, in one session. NotFound outside the person's jurisdiction.
    With `actions`, also whether the person may reassign a task of it or send it to departments."""
    with svc.db.read() as s:
        return _case_page_in(svc, s, staff_id, departments.visible_case(s, staff_id, case_id), actions)


def _case_page_in(svc, s, staff_id: str, c: DisputeCase, actions: bool = False) -> CasePage:
    d = cases.case_detail_in(s, staff_id, c)
    open_items = d["tasks"]
    events = [e for e in d["timeline"] if e.kind not in ("timer_fired", "event_thrown")]  # engine detail
    # an urge recorded without a supervision task to complete has no audit event of its own
    urges = [r for r in d["records"] if r.kind == "urge" and "level" not in (r.data or {})]
    payloads = [e.data or {} for e in events]
    people = {x for p in payloads for x in (p.get("assignees") or []) + ((p.get("data") or {}).get("assignees") or [])
              + [p.get("from_user"), p.get("to_user")]  # 改派: from whom to whom
              if isinstance(x, str)} | {r.actor for r in urges if r.actor}
    people -= set(d["names"])
    unit_codes = {x for p in payloads for x in (p.get("unit"), p.get("from_unit"), p.get("to_unit"))
                  if isinstance(x, str)} - set(d["units"])
    sent = [r for p in payloads if isinstance(p.get("data"), dict)
            for r in (p["data"].get("departments") or []) if isinstance(r, dict)]  # 部门协同
    unit_codes |= {r["unit"] for r in sent if isinstance(r.get("unit"), str)} - set(d["units"])
    names, units = dict(d["names"]), dict(d["units"])
    forms = dict(s.execute(select(WorkItem.task_guid, WorkItem.form)
                           .where(WorkItem.instance_id == c.instance_id)).all()) if c.instance_id else {}
    phones = c.reporter_id == staff_id or any(cases.can_act(s, staff_id, w) for w in open_items)
    if people:
        names.update(dict(s.execute(select(Staff.id, Staff.name).where(Staff.id.in_(people))).all()))
    if unit_codes:
        units.update(dict(s.execute(select(OrgUnit.code, OrgUnit.name).where(OrgUnit.code.in_(unit_codes))).all()))
    files = attachments.for_case_in(s, c.id)
    may_reassign = may_transfer = None
    if actions:
        may_reassign = c.status == "open" and bool(reassign.options_in(s, staff_id, c))
        may_transfer = c.status == "open" and departments.transfer_form_in(svc, s, staff_id, c) is not None
    timeline = [TimelineEntry(e.at, e.actor, e.kind, e.task, forms.get(p.get("guid")), p)
                for e, p in zip(events, payloads, strict=True)]
    timeline += [TimelineEntry(r.at, r.actor, "urge_recorded", None, None, r.data or {}) for r in urges]
    timeline.sort(key=lambda t: t.at)
    inst = d["instance"]
    return CasePage(c, open_items, d["records"], timeline, names, units, inst, files, phones,
                    inst.version_id if inst else None, names.get(c.reporter_id, c.reporter_id), list(d.get("links") or []),
                    supervised_of(c, open_items, d["records"]), may_reassign, may_transfer)


def supervised_of(c: DisputeCase, tasks: list[WorkItem], records: list[CaseRecord]) -> set[str]:
    """`badges.supervised(task_guids=...)["tasks"]` for the case's open tasks, from the rows the
    case page already read (its open work items and all its records): the same rule, no query."""
    sup = False
    if c.status == "open":
        sup = any(t.task_spec == badges.SUPERVISE_TASK for t in tasks)
        if not sup:
            since = max((r.at for r in records if r.kind == "level_entered" and r.unit_code == c.current_unit),
                        default=None)
            latest = max((r.at for r in records if r.kind == "supervision" and r.unit_code == c.current_unit),
                         default=None)
            sup = latest is not None and (since is None or latest >= since)
    return {t.task_guid for t in tasks if t.task_spec == badges.SUPERVISE_TASK or (sup and t.unit_id == c.current_unit)}


def archive_units(svc, staff_id: str) -> list[tuple[str, str, int]]:
    """Units to filter the archive by: the person's own units and the ones directly below them."""
    with svc.db.read() as s:
        mine = list(s.scalars(select(OrgUnit).join(StaffRole, StaffRole.unit_code == OrgUnit.code)
                              .where(StaffRole.staff_id == staff_id, StaffRole.active.is_(True))
                              .order_by(OrgUnit.path)))
        out: dict[str, tuple[str, str, int]] = {}
        for u in mine:
            out.setdefault(u.code, (u.code, u.name, 0))
            for ch in org.children(s, u.code):
                out.setdefault(ch.code, (ch.code, ch.name, 1))
    return list(out.values())


def case_of_instance(svc, staff_id: str, instance_id: int) -> DisputeCase:
    with svc.db.read() as s:
        c = s.scalar(select(DisputeCase).where(DisputeCase.instance_id == instance_id))
        if c is None or not attachments.may_see_case(s, staff_id, c):
            raise NotFound("no such case")
        return c


# ---- level progress ----------------------------------------------------------------------------
PROGRESS_LEVELS = ("grid",) + CASE_LEVELS  # 网格 → 社区 → 街道 → 区县 → 市
MARK_KINDS = ("warning", "supervision", "urge", "accountability", "escalation", "rework")


@dataclass
class LevelStep:
    """One level of the progress bar: `state` is done (passed, or resolved there), current, or
    todo (not reached); marks are {kind: count} of warnings, 督办, urges, 问责 and escalations."""

    level: str
    state: str
    unit: str | None = None
    unit_name: str | None = None
    entered_at: datetime | None = None
    left_at: datetime | None = None
    handlers: list[tuple[str | None, str | None, str | None]] = field(default_factory=list)  # (name, role, unit)
    due_at: datetime | None = None
    warn_at: datetime | None = None
    marks: dict[str, int] = field(default_factory=dict)
    resolved: bool = False


def level_progress(page: CasePage) -> list[LevelStep]:
    """Where the case stands across the levels, from its case_record rows and the case row:
    the levels it passed (with when, and what happened there), the current one with its unit,
    handlers and the earliest due time of its open work, and the levels still ahead."""
    c = page.case
    steps = {lv: LevelStep(lv, "todo") for lv in PROGRESS_LEVELS}
    grid = steps["grid"]
    grid.unit, grid.unit_name, grid.entered_at = c.grid_code, page.units.get(c.grid_code), c.reported_at
    entered = [r for r in page.records if r.kind == "level_entered" and r.level in steps]
    for r in entered:
        st = steps[r.level]
        if st.entered_at is None or r.at < st.entered_at:
            st.entered_at = r.at
        st.unit = r.unit_code or st.unit
        st.state = "done"
    for r in page.records:
        if r.kind in MARK_KINDS and r.level in steps:
            st = steps[r.level]
            st.marks[r.kind] = st.marks.get(r.kind, 0) + 1
            if r.kind == "escalation":
                st.left_at = r.at
    if entered:
        first = min(entered, key=lambda r: r.at)
        grid.state, grid.left_at = "done", first.at
    current = c.current_level if c.status in ("open", "failed") and c.current_level in steps else None
    if c.status in ("open", "failed") and current is None:
        current = "grid"
    if c.resolved_level in steps:
        steps[c.resolved_level].resolved = True
        steps[c.resolved_level].state = "done"
    elif c.status == "archived" and not entered:
        grid.resolved = c.result == "settled_on_spot"
        grid.state = "done"
    if current:
        st = steps[current]
        st.state = "current"
        st.unit = c.current_unit or st.unit
        open_here = [t for t in page.tasks if t.state == "open"]
        st.handlers = list(dict.fromkeys((page.names.get(t.user_id, t.user_id), None, None) if t.user_id
                                         else (None, t.role, page.units.get(t.unit_id, t.unit_id)) for t in open_here))
        dues = [t.due_at for t in open_here if t.due_at]
        warns = [t.warn_at for t in open_here if t.warn_at]
        st.due_at, st.warn_at = (min(dues) if dues else None), (min(warns) if warns else None)
    for st in steps.values():
        if st.unit and not st.unit_name:
            st.unit_name = page.units.get(st.unit)
    # levels above the one the case ended at were never reached: leave them as todo
    return [steps[lv] for lv in PROGRESS_LEVELS]


def progress_units(svc, steps: list[LevelStep]) -> None:
    """Fill in unit names the case page did not already look up."""
    missing = {st.unit for st in steps if st.unit and not st.unit_name}
    if not missing:
        return
    with svc.db.read() as s:
        names = dict(s.execute(select(OrgUnit.code, OrgUnit.name).where(OrgUnit.code.in_(missing))).all())
    for st in steps:
        if st.unit and not st.unit_name:
            st.unit_name = names.get(st.unit, st.unit)
