"""The dispute-case (矛盾件) service layer: report, inbox, act on tasks, case pages, archive, urge.

The BPMN process decides what happens; `grid.cases.listener` keeps the case projection and its
countable records in step and assigns work; this module enforces jurisdiction on every read
and write.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import and_, func, or_, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from engine import clock
from engine.errors import InvalidData, NotFound
from engine.models import Instance, InstanceEvent, WorkItem
from engine.runtime import Step
from grid import crypto
from grid.cases import checks, inbox_counts, parties, report_location, rollup, search
from grid.cases.models import PARTY_PHONE, CaseLate, CaseRecord, CaseSearch, DisputeCase
from grid.errors import Forbidden
from grid.org import service as org
from grid.org.models import OrgUnit, Staff, StaffRole

PROCESS_ID = "dispute_case"
REPORT_FORM = "report.json"


# ---- reporting -------------------------------------------------------------------------------
# Set by the composition root (grid.services) to the registry's check that a party's resident id
# exists in the person's jurisdiction; grid.cases may not import grid.registry.
party_checker: checks.PartyChecker | None = None


def _grid_of(s: Session, staff_id: str, grid_code: str | None) -> str:
    grids = [r.unit_code for r in org.roles_of(s, staff_id) if r.role == "grid_worker"]
    if grid_code is None:
        if len(grids) != 1:
            raise Forbidden("only a grid worker can report, from her own grid")
        return grids[0]
    if grid_code not in grids:
        raise Forbidden("you are not the grid worker of this grid")
    return grid_code


def report(svc, staff_id: str | None, data: dict, grid_code: str | None = None, *, source: str = "grid_worker",
           reporter_id: str | None = None, on_behalf_of: dict | None = None, actor: str | None = None,
           submit_token: str | None = None) -> DisputeCase:
    """Report a dispute: validate the report form, create the case, start the process.

    `submit_token` is the one-time token of the rendered form: a phone that retries after a lost
    response (or a double tap) gets the first case back, with `replayed` set, and nothing new is
    created - also when the two POSTs race (the unique column decides, the loser reads the winner).

    `source` says how it came in (default: the grid worker's own phone, `staff_id` being her). For
    hotline/window, `staff_id` is the operator; for open311/api, `staff_id` is None and `actor`
    names the client (`api:<id>`). `on_behalf_of` is the caller (resident: name, phone), kept in
    the process data like the parties (personal data). The per-source count goes to the rollup in
    this same transaction, beside the step listener's `reported`.
    """
    if submit_token is not None:
        if not re.fullmatch(r"[0-9a-f]{32}", submit_token):
            raise InvalidData("the form token is not valid", [{"path": "submit_token", "validator": "pattern",
                                                              "message": "the form token is not valid"}])
        first = _submitted(svc, submit_token, staff_id)
        if first is not None:
            return first
    try:
        return _report(svc, staff_id, dict(data), grid_code, source, reporter_id, on_behalf_of, actor, submit_token)
    except IntegrityError:
        first = _submitted(svc, submit_token, staff_id) if submit_token else None
        if first is None:
            raise
        return first


def _submitted(svc, submit_token: str, staff_id: str | None) -> DisputeCase | None:
    """The case an earlier POST of this form created (only the same person's)."""
    with svc.db.read() as s:
        c = s.scalar(select(DisputeCase).where(DisputeCase.submit_token == submit_token))
    if c is None or (staff_id is not None and c.reporter_id != staff_id):
        return None
    c.replayed = True
    return c


def _report(svc, staff_id, data, grid_code, source, reporter_id, on_behalf_of, actor, submit_token) -> DisputeCase:
    rt = svc.runtime
    with svc.db.write() as s:
        if source == "grid_worker":
            grid = _grid_of(s, staff_id or "", grid_code)
            report_location.require_inside(s, staff_id, grid, data)
            reporter = by = staff_id
        else:
            from grid.cases import intake

            grid, reporter, by = intake.check(s, source, staff_id, grid_code, reporter_id, actor)
        unit = s.get(OrgUnit, grid)
        scopes = scopes_for(unit.path)
        vid = rt.resolve_version(s, PROCESS_ID, scopes=scopes)
        rt.validate_task_data(vid, REPORT_FORM, data)
        checks.check_parties(s, party_checker, staff_id if staff_id is not None else reporter, data.get("parties"))
        now = clock.now()
        loc = data.get("location") or {}
        c = DisputeCase(case_no=f"tmp-{now.timestamp()}-{reporter}", category=data["category"],
                        description=data["description"], location_text=loc.get("text"), lat=loc.get("lat"),
                        lng=loc.get("lng"), geo_cell=checks.geo_cell(loc.get("lat"), loc.get("lng")),
                        parties=data.get("parties") or [], photos=data.get("photos") or [],
                        reporter_id=reporter, grid_code=grid, unit_path=unit.path, status="open",
                        reported_at=now, updated_at=now, escalations=0, rework_count=0, warnings=0, overdue=0,
                        source=source, submit_token=submit_token)
        s.add(c)
        s.flush()
        c.case_no = f"MD{clock.local(now):%Y%m%d}{c.id:06d}"
        s.flush()
        parties.link(s, c.id, c.parties)
        c.settlement = (data.get("spot_result") or "").strip() or None  # 现场化解情况: shown and searchable
        start = {**data, "case_no": c.case_no, "reporter": reporter, **org.escalation_data(s, grid), "level_idx": 0,
                 "rework_count": 0, "source": source}
        if data.get("parties"):  # the process data (so the audit trail and the feed) holds the phones sealed
            start["parties"] = sealed_parties(data["parties"])
        if by != reporter:
            start["taken_by"] = by
        if on_behalf_of:
            start["on_behalf_of"] = {k: on_behalf_of[k] for k in ("name", "phone") if on_behalf_of.get(k)}
        step = rt.start(PROCESS_ID, start, actor=by, version_id=vid, business_key=c.case_no, session=s)
        c.instance_id = step.instance_id
        rollup.add(s, [rollup.reported_by_source(c)])
    return c


def sealed_parties(rows: list | None) -> list:
    """The parties with each phone sealed (grid.crypto, context case.party_phone), for the process data."""
    return [{**p, "phone": crypto.seal(p["phone"], PARTY_PHONE)}
            if isinstance(p, dict) and isinstance(p.get("phone"), str) and p["phone"] and not crypto.is_sealed(p["phone"])
            else p for p in rows or []]


def scopes_for(path: str) -> list[str]:
    """Pin scopes for a unit path: the path of each ancestor (a pilot is pinned on a unit's path)."""
    parts = [p for p in path.split("/") if p]
    return ["/".join(parts[: i + 1]) + "/" for i in range(len(parts))]


def unit_scope(svc, unit_code: str) -> tuple[str, Any, str]:
    """A unit's jurisdiction for version admin: (pin scope = its path, a condition on Instance
    selecting its dispute cases, a label)."""
    with svc.db.read() as s:
        unit = org.get_unit(s, unit_code)
        if unit is None:
            raise NotFound(f"no unit with code {unit_code}")
        path, name = unit.path, unit.name
    cond = Instance.id.in_(select(DisputeCase.instance_id).where(org.paths_condition([path], DisputeCase.unit_path)))
    return path, cond, f"{name} ({unit_code})"


# ---- acting on tasks -------------------------------------------------------------------------
def _roles(s: Session, staff_id: str) -> list[tuple[str, str]]:
    return [(r.unit_code, r.role) for r in org.roles_of(s, staff_id)]


def can_act(s: Session, staff_id: str, wi: WorkItem) -> bool:
    if wi.user_id:
        return wi.user_id == staff_id
    return (wi.unit_id, wi.role) in set(_roles(s, staff_id))


def work_item(svc, staff_id: str, task_guid: str) -> WorkItem:
    """A work item the person may see (it is theirs, or in their jurisdiction)."""
    with svc.db.read() as s:
        wi = s.scalar(select(WorkItem).where(WorkItem.task_guid == task_guid))
        if wi is None:
            raise NotFound("no such task")
        c = s.scalar(select(DisputeCase).where(DisputeCase.instance_id == wi.instance_id))
        if not can_act(s, staff_id, wi) and not (c and _sees_case(s, staff_id, c)):
            raise NotFound("no such task")
        return wi


def complete_task(svc, staff_id: str, task_guid: str, data: dict, expected_lock: int | None = None) -> Step:
    """Complete a task as a person: role/unit check, staff-picker check, then the engine step, in
    one write transaction (the checks see what the step acts on, and cost no transaction of their
    own)."""
    with svc.db.write() as s:
        wi = s.scalar(select(WorkItem).where(WorkItem.task_guid == task_guid))
        if wi is None:
            raise NotFound("no such task")
        if not can_act(s, staff_id, wi):
            raise Forbidden("this task is not yours to complete")
        _check_staff_pickers(svc, s, wi, data)
        from grid.cases import departments  # 部门协同: the named departments are this level's

        departments.check_transfer(s, wi, data)
        if data.get("duplicate_of"):  # a 重复件 names an existing case in the person's jurisdiction
            own = s.scalar(select(DisputeCase.id).where(DisputeCase.instance_id == wi.instance_id))
            checks.check_dispatch(s, staff_id, own, data)
        s.expunge_all()  # the step writes these rows with core statements: its listeners read them afresh
        return svc.runtime.complete(wi.instance_id, task_guid, data, actor=staff_id, expected_lock=expected_lock,
                                    session=s)


def _check_staff_pickers(svc, s: Session, wi: WorkItem, data: dict) -> None:
    version_id = s.scalar(select(Instance.version_id).where(Instance.id == wi.instance_id))
    schema = svc.runtime.form_schema(version_id, wi.form) or {}
    errors = []
    for name, prop in (schema.get("properties") or {}).items():
        if prop.get("x-widget") != "staff" or not data.get(name):
            continue
        allowed = {p.id for p in org.staff_for(s, wi.unit_id, prop.get("x-staff-role") or "mediator")}
        bad = [u for u in data[name] if u not in allowed]
        if bad:
            errors.append({"path": name, "message": f"not staff of this unit: {', '.join(map(str, bad))}",
                           "validator": "staff"})
    if errors:
        raise InvalidData("the form has errors", errors)


def staff_choices(svc, wi: WorkItem, role: str = "mediator") -> list[Staff]:
    with svc.db.read() as s:
        return org.staff_for(s, wi.unit_id, role)


# ---- inbox -----------------------------------------------------------------------------------
@dataclass
class InboxRow:
    task_guid: str
    instance_id: int
    task: str
    name: str
    form: str | None
    unit_id: str | None
    role: str | None
    user_id: str | None
    created_at: datetime
    warn_at: datetime | None
    due_at: datetime | None
    case_id: int | None
    case_no: str | None
    category: str | None
    description: str | None
    level: str | None

    @property
    def state(self) -> str:
        now = clock.now()
        if self.due_at and self.due_at <= now:
            return "overdue"
        if self.warn_at and self.warn_at <= now:
            return "warning"
        return "normal"


def _mine(staff_id: str, roles: list[tuple[str, str]]):
    pairs = [and_(WorkItem.unit_id == u, WorkItem.role == r) for u, r in roles]
    return or_(WorkItem.user_id == staff_id, and_(WorkItem.user_id.is_(None), or_(*pairs) if pairs else False))


_COLS = (WorkItem.task_guid, WorkItem.instance_id, WorkItem.task_spec, WorkItem.name, WorkItem.form,
         WorkItem.unit_id, WorkItem.role, WorkItem.user_id, WorkItem.created_at, WorkItem.warn_at,
         WorkItem.due_at, DisputeCase.id, DisputeCase.case_no, DisputeCase.category, DisputeCase.description,
         DisputeCase.current_level)


def inbox(svc, staff_id: str, category: str | None = None, state: str | None = None,
          limit: int = 50, offset: int = 0, cap: int | None = None, cards: int | None = None) -> dict:
    """The person's open work items, sorted by due time, with counts by category and state. With
    `cap`, the counts read at most cap + 1 items ("99+", `grid.cases.inbox_counts`). With `cards`,
    what the first `cards` items' cards show besides (their 督办 marks and urges, `marks`, and
    their units' names, `unit_names`) in the same read, not in a read each."""
    now = clock.now()
    with svc.db.read() as s:
        mine = _mine(staff_id, _roles(s, staff_id))
        # the page's work items first (ids only, sorted and cut to the page), then their cases: a
        # busy village's head holds thousands of open items, and joining each to its case before
        # the sort made the inbox grow with the backlog
        page = select(WorkItem.id).where(WorkItem.state == "open", mine)
        if category:
            page = (page.join(DisputeCase, DisputeCase.instance_id == WorkItem.instance_id)
                    .where(DisputeCase.category == category))
        cond = inbox_counts.state_cond(state, now)
        if cond is not None:
            page = page.where(cond)
        order = (WorkItem.due_at.is_(None), WorkItem.due_at, WorkItem.created_at, WorkItem.id)
        ids = page.order_by(*order).limit(limit).offset(offset).subquery()
        q = (select(*_COLS).select_from(ids).join(WorkItem, WorkItem.id == ids.c.id)
             .outerjoin(DisputeCase, DisputeCase.instance_id == WorkItem.instance_id).order_by(*order))
        items = [InboxRow(*row) for row in s.execute(q)]
        counted = inbox_counts.counts(s, mine, now, category, state, cap=cap)
        box = {"items": items, **counted, "cap": cap}
        if cards is not None:
            from grid.cases import notifications

            shown = items[:cards]
            box["marks"] = notifications.task_marks_in(s, staff_id, list(dict.fromkeys(r.task_guid for r in shown)))
            codes = sorted({r.unit_id for r in shown if r.unit_id})
            box["unit_names"] = dict(s.execute(select(OrgUnit.code, OrgUnit.name)
                                               .where(OrgUnit.code.in_(codes))).all()) if codes else {}
        return box


def late_query(paths: list[str], now: datetime):
    """The late list's SQL: `case_late` rows of these scopes (unit paths) past their warning,
    most urgent due first, joined to their work items and cases by primary key. One scope is an
    equality on `ix_case_late_scope_due` read in order (no sort, no scan of open cases)."""
    scope = CaseLate.scope == paths[0] if len(paths) == 1 else CaseLate.scope.in_(paths)
    return (select(*_COLS).select_from(CaseLate)
            .join(WorkItem, WorkItem.id == CaseLate.work_item_id)
            .join(DisputeCase, DisputeCase.id == CaseLate.case_id)
            .where(scope, CaseLate.late_at <= now)
            .order_by(CaseLate.due_key, CaseLate.work_item_id))


def late_in_jurisdiction(svc, staff_id: str, limit: int = 100, offset: int = 0,
                         unit: str | None = None) -> list[InboxRow]:
    """Open work items past warning or due anywhere in the person's subtree (for supervisors),
    most urgent first; `unit` narrows to one unit of that subtree (none outside it)."""
    now = clock.now()
    with svc.db.read() as s:
        paths = org.jurisdiction_paths(s, staff_id)
        if not any(r.role == "supervisor" for r in org.roles_of(s, staff_id)):
            raise Forbidden("only supervisors see the late list")
        if unit is not None:
            u = s.get(OrgUnit, unit) if "\x00" not in unit else None
            if u is None or not any(u.path.startswith(p) for p in paths):
                return []
            paths = [u.path]
        if not paths:
            return []
        return [InboxRow(*row) for row in s.execute(late_query(paths, now).limit(limit).offset(offset))]


# ---- case pages ------------------------------------------------------------------------------
def _sees_case(s: Session, staff_id: str, c: DisputeCase) -> bool:
    paths = org.jurisdiction_paths(s, staff_id)
    if any(c.unit_path.startswith(p) for p in paths):
        return True
    from grid.cases import departments  # a department's staff see a case sent to them, while it is

    return departments.works_on(s, staff_id, c)


def get_case(svc, staff_id: str, case_id: int) -> DisputeCase:
    with svc.db.read() as s:
        c = s.get(DisputeCase, case_id)
        if c is None or not _sees_case(s, staff_id, c):
            raise NotFound("no such case")  # outside jurisdiction looks the same as missing
        return c


def case_detail(svc, staff_id: str, case_id: int, events: int | None = None,
                before: int | None = None) -> dict[str, Any]:
    """Summary, open tasks with handlers and due times, records and the timeline.

    `events` keeps only the newest that many timeline events (None: all of them), and `before`
    (an event seq) starts the page below that event, so a case with years of history pages its
    timeline instead of rendering it whole; `timeline_more` says whether older events remain."""
    c = get_case(svc, staff_id, case_id)
    with svc.db.read() as s:
        return case_detail_in(s, staff_id, c, events, before)


def case_detail_in(s: Session, staff_id: str, c: DisputeCase, events: int | None = None,
                   before: int | None = None) -> dict[str, Any]:
    """`case_detail` in the caller's session, for a case the caller has checked the person may see."""
    tasks = list(s.scalars(select(WorkItem).where(WorkItem.instance_id == c.instance_id, WorkItem.state == "open")
                           .order_by(WorkItem.due_at)))
    records = list(s.scalars(select(CaseRecord).where(CaseRecord.case_id == c.id).order_by(CaseRecord.id)))
    inst = s.get(Instance, c.instance_id) if c.instance_id else None
    ids = {e for e in [c.reporter_id] + [t.user_id for t in tasks] if e}
    timeline, more = _timeline(s, c.instance_id, events, before) if c.instance_id else ([], False)
    ids |= {e.actor for e in timeline if e.actor}
    names = dict(s.execute(select(Staff.id, Staff.name).where(Staff.id.in_(ids))).all()) if ids else {}
    unit_codes = {t.unit_id for t in tasks if t.unit_id} | {c.grid_code, c.current_unit or c.grid_code}
    units = dict(s.execute(select(OrgUnit.code, OrgUnit.name).where(OrgUnit.code.in_(unit_codes))).all())
    links = checks.links_of(s, staff_id, c.id)  # 重复件 links, from both ends
    return {"case": c, "tasks": tasks, "records": records, "timeline": timeline, "names": names, "units": units,
            "instance": inst, "timeline_more": more, "settlement": c.settlement, "links": links}


def _timeline(s: Session, instance_id: int, events: int | None, before: int | None) -> tuple[list, bool]:
    """A page of the instance's audit events in seq order, newest `events` of those below
    `before` (the unique (instance_id, seq) index answers it), and whether older ones remain."""
    q = select(InstanceEvent).where(InstanceEvent.instance_id == instance_id)
    if before is not None:
        q = q.where(InstanceEvent.seq < before)
    if events is None:
        return list(s.scalars(q.order_by(InstanceEvent.seq))), False
    rows = list(s.scalars(q.order_by(InstanceEvent.seq.desc()).limit(events + 1)))
    more = len(rows) > events
    return list(reversed(rows[:events])), more


def search_archive(svc, staff_id: str, text: str | None = None, category: str | None = None,
                   unit: str | None = None, date_from: datetime | None = None, date_to: datetime | None = None,
                   page: int = 1, per_page: int = 20) -> dict:
    """Closed cases in the person's jurisdiction, newest first, paginated.

    `text` is a full-text search (grid.cases.search: character bigrams over the case number,
    description and location) that matches literally, as a substring: `%`, `_` and `\\` are
    characters like any other, so `%` finds only cases that contain a '%'. NUL (which PostgreSQL
    refuses in a parameter, and no stored text holds) is dropped from `text`; a category or unit
    holding one matches nothing.

    No count of every match: `total` counts at most COUNT_CAP matches (`total_capped` says the
    real number is larger), and `has_next` comes from reading one row past the page.
    """
    empty = {"items": [], "total": 0, "page": page, "pages": 0, "total_capped": False, "has_next": False}
    if any("\x00" in (v or "") for v in (category, unit)):
        return empty
    text = (text or "").replace("\x00", "")
    with svc.db.read() as s:
        paths = org.jurisdiction_paths(s, staff_id)
        u = None
        if unit:
            u = s.get(OrgUnit, unit)
            if u is None:
                return empty
        # the scope tokens narrow the text index to the unit or the jurisdiction (grid.cases.search);
        # the path conditions below still check every row
        match = search.matching(s, text, search.scope_codes([u.path] if u else paths)) if text else None
        fts = None
        if match is None:
            q = select(DisputeCase).where(DisputeCase.status == "archived")
            order = (DisputeCase.archived_at.desc(), DisputeCase.id.desc())
        else:
            cond, fts = match
            q = select(DisputeCase).select_from(CaseSearch)
            if fts is not None:  # SQLite: the FTS5 table, rowid = seq
                q = q.join(fts, fts.c.rowid == CaseSearch.seq)
            q = q.join(DisputeCase, DisputeCase.id == CaseSearch.case_id).where(cond)
            # archive order, newest first, without a sort (FTS5 walks its rowids backwards)
            order = (fts.c.rowid.desc(),) if fts is not None else (CaseSearch.seq.desc(),)
        q = q.where(org.paths_condition(paths, DisputeCase.unit_path))
        if category:
            q = q.where(DisputeCase.category == category)
        if u is not None:
            q = q.where(org.paths_condition([u.path], DisputeCase.unit_path))
        if date_from:
            q = q.where(DisputeCase.archived_at >= date_from)
        if date_to:
            q = q.where(DisputeCase.archived_at < date_to)
        offset = (page - 1) * per_page
        if match is not None and fts is None:  # PostgreSQL: newest archive positions first
            rows = search.newest_page(s, q, per_page + 1, offset)
        else:
            rows = list(s.scalars(q.order_by(*order).limit(per_page + 1).offset(offset)))
        has_next = len(rows) > per_page
        items = rows[:per_page]
        if not has_next:
            total, capped = offset + len(items), False
        else:
            counted = s.scalar(select(func.count()).select_from(
                q.with_only_columns(DisputeCase.id).limit(COUNT_CAP + 1).subquery()))
            total, capped = min(counted, COUNT_CAP), counted > COUNT_CAP
        return {"items": items, "total": total, "page": page, "pages": (total + per_page - 1) // per_page,
                "total_capped": capped, "has_next": has_next}


COUNT_CAP = 1000  # the archive says "1000+" beyond this instead of counting every match


def urge(svc, staff_id: str, case_id: int, comment: str) -> str:
    """A supervisor urges (催办) a late case: completes the open 督办 task if it is theirs, else records it."""
    c = get_case(svc, staff_id, case_id)
    if not comment or not comment.strip():
        raise InvalidData("a comment is required", [{"path": "comment", "message": "required"}])
    with svc.db.read() as s:
        if not any(r.role == "supervisor" for r in org.roles_of(s, staff_id)):
            raise Forbidden("only supervisors can urge")
        open_sup = [w for w in s.scalars(select(WorkItem).where(WorkItem.instance_id == c.instance_id,
                                                                WorkItem.state == "open", WorkItem.role == "supervisor"))
                    if can_act(s, staff_id, w)]
    if open_sup:
        complete_task(svc, staff_id, open_sup[0].task_guid, {"comment": comment})
        return "completed"
    with svc.db.write() as s:
        rec = CaseRecord(case_id=c.id, kind="urge", level=c.current_level, unit_code=c.current_unit, at=clock.now(),
                         actor=staff_id, data={"comment": comment})
        s.add(rec)
        rollup.add_outside_step(s, c, svc.runtime.calendar, rec)
        svc.runtime.annotate(c.instance_id, "urged", {"level": c.current_level, "unit": c.current_unit,
                                                      "comment": comment}, actor=staff_id, session=s)
        from grid.cases import notifications  # the handlers hear of it, like an urge inside a step

        notifications.notify_urge(s, c, staff_id, comment)
    return "recorded"


def records(svc, case_id: int, kind: str | None = None) -> list[CaseRecord]:
    with svc.db.read() as s:
        q = select(CaseRecord).where(CaseRecord.case_id == case_id)
        if kind:
            q = q.where(CaseRecord.kind == kind)
        return list(s.scalars(q.order_by(CaseRecord.id)))


def staff_roles(svc, staff_id: str) -> list[StaffRole]:
    with svc.db.read() as s:
        return org.roles_of(s, staff_id)
