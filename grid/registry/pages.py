"""What the registry pages show, masked: "my grid at a glance", the household and resident pages,
the resident search (for picking case parties), and the audited reveal of an ID number or phone.

Every read checks jurisdiction: outside it looks the same as missing. Only the people who may
change a record (`grid.registry.rules.EDIT_ROLES`) may reveal its numbers, and every attempt,
granted or refused, is recorded. A search by a full ID number or phone is a reveal too (it
confirms a guess): the same people only, audited and rate-limited. Birth dates show as the year
only beside a masked ID (`grid.masking.mask_birth`). The resident page's dispute cases come from
`grid.cases.parties`; the web layer puts the two together.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import date, timedelta

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from engine import clock
from engine.errors import EngineError, InvalidData, NotFound
from engine.models import WorkItem
from grid import crypto, masking
from grid.errors import Forbidden
from grid.org import audit
from grid.org import service as org
from grid.org.models import OrgUnit, SecurityEvent, Staff
from grid.registry import rules
from grid.registry.models import (
    CATEGORIES,
    ID_CONTEXT,
    PHONE_CONTEXT,
    STATUSES,
    Building,
    Household,
    Resident,
    ResidentEvent,
    RevealLog,
    SpecialFlag,
)

REVEAL_FIELDS = ("id_number", "phone")


# ---- the audited reveal -------------------------------------------------------------------------
def reveal(svc, staff_id: str, resident_id: int, field_name: str, reason: str | None = None) -> str:
    """The unmasked ID number or phone, for the grid worker of the grid or the grid head of the
    village. Every attempt, granted or refused, is recorded."""
    if field_name not in REVEAL_FIELDS:
        raise InvalidData("unknown field", [{"path": "field", "message": "id_number or phone",
                                             "validator": "registry"}])
    with svc.db.write() as s:
        r = s.get(Resident, resident_id)
        if r is None:
            raise NotFound("no such resident")
        visible = rules.may_see(s, staff_id, r.grid_code)
        granted = visible and rules.may_edit(s, staff_id, r.grid_code)
        s.add(RevealLog(staff_id=staff_id, resident_id=r.id, field=field_name, granted=granted,
                        reason=(reason or "")[:200] or None, at=clock.now()))
        audit.record(s, audit.REVEAL, actor=staff_id, unit=r.grid_code,  # the one security audit too
                     detail={"resident_id": r.id, "field": field_name, "granted": granted})
        value = getattr(r, field_name) or ""
    if not visible:
        raise NotFound("no such resident")
    if not granted:
        raise Forbidden("only the grid worker of this grid or the grid head of its village may see this")
    return value


def reveals(svc, staff_id: str, resident_id: int, limit: int = 50) -> list[dict]:
    """Who revealed what of this resident (for the people who may change the record)."""
    with svc.db.read() as s:
        rules.get_resident(s, staff_id, resident_id, edit=True)
        rows = s.execute(select(RevealLog, Staff.name).join(Staff, Staff.id == RevealLog.staff_id)
                         .where(RevealLog.resident_id == resident_id).order_by(RevealLog.id.desc()).limit(limit))
        return [{"at": x.at, "staff_id": x.staff_id, "staff_name": name, "field": x.field, "granted": x.granted,
                 "reason": x.reason} for x, name in rows]


# ---- my grid at a glance ------------------------------------------------------------------------
@dataclass
class Member:
    id: int
    name: str
    sex: str | None
    age: int | None
    relation: str
    status: str
    phone: str  # masked
    id_number: str  # masked
    flags: list[dict] = field(default_factory=list)


@dataclass
class HouseholdView:
    id: int
    door_no: str
    members: list[Member] = field(default_factory=list)

    @property
    def head(self) -> Member | None:
        return next((m for m in self.members if m.relation == "head" and m.status == "living"), None)

    @property
    def flagged(self) -> bool:
        return any(m.flags for m in self.members)


@dataclass
class BuildingView:
    id: int
    address: str
    lat: float | None
    lng: float | None
    households: list[HouseholdView] = field(default_factory=list)


@dataclass
class GridView:
    code: str
    name: str
    village_code: str | None
    village_name: str | None
    buildings: list[BuildingView]
    due_visits: list[dict]
    counts: dict
    can_edit: bool


class GridList(list):
    """The (code, grid name, village name) rows of `my_grids`, with `total`: how many grids there
    were before the list was cut at its limit (the page says "显示 200 / 9,761")."""

    total: int = 0


def my_grids(svc, staff_id: str, browse: bool = True, limit: int = 200) -> GridList:
    """(code, grid name, village name) of the grids the person works on: their own grids, and the
    grids of the villages they head. With `browse`, someone who works on no grid gets the first
    `limit` grids of their jurisdiction (leaders drill the hierarchy instead: `aggregates.unit_page`)."""
    with svc.db.read() as s:
        codes = sorted(rules.editable_grids(s, staff_id) or [])
        total = len(codes)
        if not codes and browse:
            paths = org.jurisdiction_paths(s, staff_id)
            cond = (OrgUnit.level == "grid", org.paths_condition(paths))
            total = s.scalar(select(func.count()).select_from(OrgUnit).where(*cond)) or 0
            codes = list(s.scalars(select(OrgUnit.code).where(*cond).order_by(OrgUnit.code).limit(limit)))
        village = OrgUnit.__table__.alias("v")
        rows = s.execute(select(OrgUnit.code, OrgUnit.name, village.c.name)
                         .join(village, village.c.code == OrgUnit.parent_code).where(OrgUnit.code.in_(codes))
                         .order_by(OrgUnit.code)).all()
        out = GridList(tuple(r) for r in rows)
        out.total = max(total, len(out))
        return out


def grid_overview(svc, staff_id: str | None, grid_code: str, include_gone: bool = False) -> GridView:
    """"My grid at a glance": buildings → households → members (masked), their flags, and the due
    visits of the grid. A few indexed queries, assembled in Python."""
    now = clock.now()
    today = clock.local(now).date()
    with svc.db.read() as s:
        g = rules.get_grid(s, grid_code)
        rules.check_see(s, staff_id, grid_code, "grid")
        village = s.get(OrgUnit, g.parent_code) if g.parent_code else None
        can_edit = rules.may_edit(s, staff_id, grid_code)
        buildings = {bid: BuildingView(bid, addr, lat, lng) for bid, addr, lat, lng in s.execute(
            select(Building.id, Building.address, Building.lat, Building.lng)
            .where(Building.grid_code == grid_code).order_by(Building.address))}
        households: dict[int, HouseholdView] = {}
        for hid, bid, door in s.execute(select(Household.id, Household.building_id, Household.door_no)
                                        .join(Building, Building.id == Household.building_id)
                                        .where(Building.grid_code == grid_code)
                                        .order_by(Household.building_id, Household.door_no)):
            hv = HouseholdView(hid, door)
            households[hid] = hv
            buildings[bid].households.append(hv)
        q = select(Resident.id, Resident.household_id, Resident.name, Resident.sex, Resident.birth_date,
                   Resident.relation, Resident.status, Resident.phone, Resident.id_number
                   ).where(Resident.grid_code == grid_code)
        if not include_gone:
            q = q.where(Resident.status == "living")
        members: dict[int, Member] = {}
        living = 0
        for rid, hid, name, sex, born, rel, status, phone, idn in s.execute(q.order_by(Resident.id)):
            m = Member(rid, name, sex, rules.age(born, today), rel, status, masking.mask_phone(phone),
                       masking.mask_id(idn))
            members[rid] = m
            living += status == "living"
            hv = households.get(hid)
            if hv is not None:
                hv.members.append(m)
        flags = s.execute(select(SpecialFlag.id, SpecialFlag.resident_id, SpecialFlag.category,
                                 SpecialFlag.risk_level, SpecialFlag.next_due_at, SpecialFlag.last_visit_at,
                                 SpecialFlag.overdue_since, SpecialFlag.instance_id)
                          .where(SpecialFlag.grid_code == grid_code, SpecialFlag.active.is_(True))).all()
        by_instance = {}
        for fid, rid, cat, risk, due, last, overdue, iid in flags:
            fd = {"id": fid, "category": cat, "category_name": CATEGORIES.get(cat, cat), "risk_level": risk,
                  "next_due_at": due, "last_visit_at": last, "overdue": overdue is not None, "visit": None}
            if rid in members:
                members[rid].flags.append(fd)
            by_instance[iid] = (fd, rid)
        due_visits = []
        if by_instance:
            for guid, iid, due_at, created in s.execute(
                    select(WorkItem.task_guid, WorkItem.instance_id, WorkItem.due_at, WorkItem.created_at)
                    .where(WorkItem.instance_id.in_(list(by_instance)), WorkItem.state == "open",
                           WorkItem.task_spec == "visit")):
                fd, rid = by_instance[iid]
                visit = {"task_guid": guid, "due_at": due_at, "opened_at": created,
                         "overdue": due_at is not None and due_at <= now}
                fd["visit"] = visit
                m = members.get(rid)
                due_visits.append({**visit, "resident_id": rid, "name": m.name if m else "",
                                   "category": fd["category"], "category_name": fd["category_name"],
                                   "risk_level": fd["risk_level"], "flag_id": fd["id"]})
        due_visits.sort(key=lambda v: (v["due_at"] is None, v["due_at"] or now))
        for hv in households.values():
            hv.members.sort(key=lambda m: (m.relation != "head", m.status != "living", -(m.age or 0)))
    counts = {"buildings": len(buildings), "households": len(households), "residents": living,
              "flagged": len({rid for _fd, rid in by_instance.values()}), "due_visits": len(due_visits),
              "overdue_visits": sum(1 for v in due_visits if v["overdue"])}
    return GridView(g.code, g.name, village.code if village else None, village.name if village else None,
                    list(buildings.values()), due_visits, counts, can_edit)


# ---- resident and household pages, search ------------------------------------------------------
def resident_page(svc, staff_id: str, resident_id: int) -> dict:
    """Everything the registry knows for the resident page, masked: the person, household and
    members, flags with their visit state, the history of events (their dispute cases come from
    `grid.cases.parties.resident_cases`)."""
    with svc.db.read() as s:
        r = rules.get_resident(s, staff_id, resident_id)
        h = s.get(Household, r.household_id)
        b = s.get(Building, h.building_id)
        g = s.get(OrgUnit, r.grid_code)
        can_edit = rules.may_edit(s, staff_id, r.grid_code)
        today = rules.today()
        members = [_member(m, today) for m in s.scalars(
            select(Resident).where(Resident.household_id == h.id).order_by(Resident.id))]
        flags = list(s.scalars(select(SpecialFlag).where(SpecialFlag.resident_id == r.id)
                               .order_by(SpecialFlag.active.desc(), SpecialFlag.id.desc())))
        open_visits = {}
        iids = [f.instance_id for f in flags if f.active and f.instance_id]
        if iids:
            for iid, guid, due in s.execute(select(WorkItem.instance_id, WorkItem.task_guid, WorkItem.due_at)
                                            .where(WorkItem.instance_id.in_(iids), WorkItem.state == "open",
                                                   WorkItem.task_spec == "visit")):
                open_visits[iid] = {"task_guid": guid, "due_at": due}
        events = list(s.scalars(select(ResidentEvent).where(ResidentEvent.resident_id == r.id)
                                .order_by(ResidentEvent.id.desc()).limit(200)))
        actors = {e.actor for e in events if e.actor}
        names = dict(s.execute(select(Staff.id, Staff.name).where(Staff.id.in_(actors))).all()) if actors else {}
    return {"resident": _member(r, today), "birth_date": r.birth_date, "birth": masking.mask_birth(r.birth_date), "household": h, "building": b, "grid": g,
            "members": members, "flags": flags, "open_visits": open_visits, "events": events, "names": names,
            "can_edit": can_edit, "can_reveal": can_edit, "created_batch_id": r.created_batch_id}


def _member(r: Resident, today: date) -> Member:
    return Member(r.id, r.name, r.sex, rules.age(r.birth_date, today), r.relation, r.status,
                  masking.mask_phone(r.phone), masking.mask_id(r.id_number))


class TooManySearches(EngineError):
    """More exact searches (full ID number or phone) than `EXACT_LIMIT` in `EXACT_WINDOW`."""


EXACT_SEARCH = "exact_search"
EXACT_LIMIT = 20
EXACT_WINDOW = timedelta(minutes=10)
if EXACT_SEARCH not in audit.KINDS:  # until grid/org/audit.py lists the kind itself
    audit.KINDS = (*audit.KINDS, EXACT_SEARCH)


def _exact_field(q: str) -> str | None:
    """'id_number' or 'phone' when `q` is a full ID number or phone number (an exact lookup)."""
    if rules.ID_RE.match(q.upper()):
        return "id_number"
    if re.fullmatch(r"[\d-]{7,20}", q):
        return "phone"
    return None


def search(svc, staff_id: str | None, q: str, grid_code: str | None = None, limit: int = 20,
           living_only: bool = True) -> list[dict]:
    """Residents in the person's jurisdiction matching `q` (a name prefix, or the last 4
    characters of an ID number), masked: for picking case parties.

    A full ID number or phone confirms a guess, so it is a reveal: only for the people who may
    reveal (`rules.EDIT_ROLES`), matching only in the grids they may change, recorded in the
    security audit (`exact_search`, never the value searched) and at most `EXACT_LIMIT` per
    `EXACT_WINDOW` per person, counted from the audit table (so across nodes): TooManySearches."""
    q = (q or "").strip()
    if not q or "\x00" in q or "\x00" in (grid_code or ""):
        return []  # nothing is stored with a NUL, and PostgreSQL refuses one in a query
    limit = max(1, min(int(limit), 100))
    exact = _exact_field(q)
    with (svc.db.write() if exact and staff_id is not None else svc.db.read()) as s:
        stmt = (select(Resident.id, Resident.name, Resident.sex, Resident.birth_date, Resident.phone,
                       Resident.id_number, Resident.status, Resident.grid_code, Household.door_no, Building.address,
                       OrgUnit.name)
                .join(Household, Household.id == Resident.household_id)
                .join(Building, Building.id == Household.building_id)
                .join(OrgUnit, OrgUnit.code == Resident.grid_code))
        up = q.upper()
        if exact == "id_number":
            stmt = stmt.where(Resident.id_index.in_(crypto.blinds(up, ID_CONTEXT)))
        elif exact == "phone":
            stmt = stmt.where(Resident.phone_index.in_(crypto.blinds(q, PHONE_CONTEXT)))
        elif re.fullmatch(r"\d{3}[\dX]", up):
            stmt = stmt.where(Resident.id_tail == up)
        else:
            esc = q.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
            stmt = stmt.where(Resident.name.like(f"{esc}%", escape="\\"))
        if living_only:
            stmt = stmt.where(Resident.status == "living")
        if grid_code:
            stmt = stmt.where(Resident.grid_code == grid_code)
        refusal = None
        if staff_id is not None:
            stmt = stmt.where(org.jurisdiction_filter(s, staff_id, Resident.grid_code))
            if exact:
                grids, refusal = _exact_search_rights(s, staff_id)
                stmt = stmt.where(Resident.grid_code.in_(sorted(grids)))
        today = rules.today()
        rows = [] if refusal else s.execute(stmt.order_by(Resident.name, Resident.id).limit(limit)).all()
        if exact and staff_id is not None:  # recorded, granted or refused, with the search's transaction
            audit.record(s, EXACT_SEARCH, actor=staff_id, detail={
                "by": exact, "granted": refusal is None, "results": len(rows),
                **({"refused": type(refusal).__name__} if refusal else {})})
    if refusal is not None:
        raise refusal
    return [{"resident_id": rid, "name": name, "sex": sex, "age": rules.age(born, today),
             "phone": masking.mask_phone(phone), "id_number": masking.mask_id(idn), "status": status,
             "grid_code": grid, "grid_name": gname, "address": f"{addr} {door}"}
            for rid, name, sex, born, phone, idn, status, grid, door, addr, gname in rows]


def _exact_search_rights(s: Session, staff_id: str) -> tuple[set[str], EngineError | None]:
    """(the grids the person may search by a full number in, the refusal if they may not now)."""
    since = clock.now() - EXACT_WINDOW
    done = s.scalar(select(func.count()).select_from(SecurityEvent).where(
        SecurityEvent.kind == EXACT_SEARCH, SecurityEvent.actor_staff_id == staff_id, SecurityEvent.at >= since))
    grids = rules.editable_grids(s, staff_id) or set()
    if not grids:
        return grids, Forbidden("searching by a full ID number or phone is for the grid worker of the grid or "
                                "the grid head of its village; search by name")
    if done >= EXACT_LIMIT:
        return grids, TooManySearches(f"at most {EXACT_LIMIT} searches by a full ID number or phone in "
                                      f"{int(EXACT_WINDOW.total_seconds() // 60)} minutes; try again later")
    return grids, None


def party(svc, staff_id: str | None, resident_id: int) -> dict:
    """A case party for the report form, picked from the registry: name and resident id, no phone
    (the phone stays in the registry, masked)."""
    with svc.db.read() as s:
        r = rules.get_resident(s, staff_id, resident_id)
        return {"name": r.name, "resident_id": r.id}


def status_name(code: str) -> str:
    """The registry's (Chinese) label of a resident status code."""
    return STATUSES.get(code, code)


def household_page(svc, staff_id: str, household_id: int) -> dict:
    """A household with its building, grid, members (masked) and whether the person may edit it."""
    with svc.db.read() as s:
        h, b = rules.get_household(s, staff_id, household_id)
        g = s.get(OrgUnit, b.grid_code)
        today = rules.today()
        members = [_member(r, today) for r in s.scalars(
            select(Resident).where(Resident.household_id == h.id).order_by(Resident.id))]
        _add_flags(s, members)
        can_edit = rules.may_edit(s, staff_id, b.grid_code)
    return {"h": h, "b": b, "g": g, "members": members, "can_edit": can_edit}


def _add_flags(s: Session, members: list[Member]) -> None:
    """Put the members' active special-population flags on them, as the grid page shows them
    (category, risk, overdue, the open visit)."""
    by_id = {m.id: m for m in members}
    if not by_id:
        return
    flags = s.execute(select(SpecialFlag.id, SpecialFlag.resident_id, SpecialFlag.category, SpecialFlag.risk_level,
                             SpecialFlag.next_due_at, SpecialFlag.last_visit_at, SpecialFlag.overdue_since,
                             SpecialFlag.instance_id)
                      .where(SpecialFlag.resident_id.in_(list(by_id)), SpecialFlag.active.is_(True))
                      .order_by(SpecialFlag.id)).all()
    by_instance = {}
    for fid, rid, cat, risk, due, last, overdue, iid in flags:
        fd = {"id": fid, "category": cat, "category_name": CATEGORIES.get(cat, cat), "risk_level": risk,
              "next_due_at": due, "last_visit_at": last, "overdue": overdue is not None, "visit": None}
        by_id[rid].flags.append(fd)
        if iid is not None:
            by_instance[iid] = fd
    if by_instance:
        now = clock.now()
        for guid, iid, due_at, created in s.execute(
                select(WorkItem.task_guid, WorkItem.instance_id, WorkItem.due_at, WorkItem.created_at)
                .where(WorkItem.instance_id.in_(list(by_instance)), WorkItem.state == "open",
                       WorkItem.task_spec == "visit")):
            by_instance[iid]["visit"] = {"task_guid": guid, "due_at": due_at, "opened_at": created,
                                         "overdue": due_at is not None and due_at <= now}


def check_grid(svc, staff_id: str, grid_code: str, edit: bool = False) -> None:
    """NotFound unless the person may see the grid; Forbidden if `edit` and they may not change it."""
    with svc.db.read() as s:
        if not rules.may_see(s, staff_id, grid_code):
            raise NotFound("no such grid")
        if edit and not rules.may_edit(s, staff_id, grid_code):
            raise Forbidden("you may not change this grid")
