"""The grid registry service layer: buildings, households, residents and their life events,
special-population flags with their visit schedules, "my grid", masking and audited reveals.

Plain functions over a `Services` object, like `grid.cases`. Every read and write checks
jurisdiction: a person sees the residents of the grids under the units they hold a role on
(outside looks the same as missing), and only the grid worker of the resident's grid or the
grid head of its village may change a record or reveal an ID number or phone (`EDIT_ROLES`).

Every change is recorded as a `ResidentEvent` (who, when, the fields before and after);
nothing is overwritten silently.

Visits: `flag()` starts a `special_visit` process instance (workflows/special_visit.bpmn) in
the same transaction. The listener `on_step` keeps the flag row in step with what the process
emits (`visit_scheduled`, `visited`, `visit_overdue`, `risk_changed`, `schedule_ended`, ...).
Unflagging, a change of risk level and a move to another grid are messages to that instance
(`unflagged`, `risk_changed`, `resident_moved`), sent right after the registry change commits.
A visit whose form asks to open a dispute case reports it through `grid.cases.report` once the
visit's transaction has committed.
"""
from __future__ import annotations

import json
import logging
import re
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from operator import mul
from typing import Any

from sqlalchemy import event, func, select, text, update
from sqlalchemy.orm import Session

from engine import clock, sandbox
from engine.errors import Conflict, EngineError, InvalidData, NotFound
from engine.models import Instance, WorkItem
from engine.runtime import Step
from grid.cases.models import DisputeCase
from grid.errors import Forbidden
from grid.org import service as org
from grid.org.models import OrgUnit, Staff
from grid.registry.models import (
    CATEGORIES,
    RELATIONS,
    RISK_LEVELS,
    SEXES,
    STATUSES,
    Building,
    Household,
    ImportBatch,
    Resident,
    ResidentEvent,
    RevealLog,
    SpecialFlag,
)

log = logging.getLogger("gridflow.registry")

PROCESS_ID = "special_visit"
VISIT_FORM = "visit.json"
EDIT_ROLES = {"grid_worker": "grid", "grid_head": "village"}
"""Who may change a resident's record and reveal an ID number or phone: the grid worker of the
resident's grid and the grid head of the village above it (not mediators, supervisors ...)."""
REVEAL_FIELDS = ("id_number", "phone")
BUSINESS_KEY = "flag:{}"
ROUNDS_PER_INSTANCE = 6
"""Visits per process instance: then the instance ends and a fresh one carries the schedule on
(a looping instance keeps every finished round in its state, ~10 KB each)."""


# ---- sandbox helper for the visit process -----------------------------------------------------
def days_after(start: str | None, n: float) -> str:
    """ISO time `n` calendar days after `start` (an ISO time; None = now), in Beijing time."""
    base = clock.now() if not start else datetime.fromisoformat(str(start))
    if base.tzinfo is None:
        base = base.replace(tzinfo=clock.SHANGHAI)
    return (base + timedelta(days=float(n))).astimezone(clock.SHANGHAI).isoformat()


sandbox.register_helper("days_after", days_after)


# ---- masking and validation ---------------------------------------------------------------------
def mask_id(value: str | None) -> str:
    """420602199001011234 -> 4206**********1234."""
    if not value:
        return ""
    v = str(value)
    if len(v) <= 8:
        return "*" * max(len(v) - 2, 1) + v[-2:]
    return v[:4] + "*" * (len(v) - 8) + v[-4:]


def mask_phone(value: str | None) -> str:
    """13812341234 -> 138****1234; short numbers keep only their last two digits."""
    if not value:
        return ""
    v = str(value).strip()
    if len(v) >= 8:
        return v[:3] + "*" * (len(v) - 7) + v[-4:]
    return "*" * max(len(v) - 2, 1) + v[-2:]


_ID_RE = re.compile(r"^\d{17}[\dX]$")
_ID_WEIGHTS = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)
_ID_CHECK = "10X98765432"
_PHONE_RE = re.compile(r"^(1[3-9]\d{9}|0\d{2,3}-?\d{7,8}(-\d{1,6})?)$")


_ID_OFFSET = 48 * sum(_ID_WEIGHTS)  # the weights times ord('0'), taken back out of the byte sum


def id_check_char(first17: str) -> str:
    """The check character (GB 11643, ISO 7064 MOD 11-2) of the first 17 digits."""
    return _ID_CHECK[(sum(map(mul, first17.encode(), _ID_WEIGHTS)) - _ID_OFFSET) % 11]


def id_problem(value: str, today: date | None = None) -> str | None:
    """Why `value` is not a valid 18-character 公民身份号码, or None."""
    if not _ID_RE.match(value):
        return "must be 17 digits followed by a digit or X"
    try:
        born = date(int(value[6:10]), int(value[10:12]), int(value[12:14]))
    except ValueError:
        return "the birth date inside it is not a date"
    if born.year < 1880 or born > (today or clock.local(clock.now()).date()):
        return "the birth date inside it is out of range"
    if id_check_char(value[:17]) != value[17]:
        return "the check digit is wrong"
    return None


def id_birth_date(value: str) -> date:
    return date(int(value[6:10]), int(value[10:12]), int(value[12:14]))


def id_sex(value: str) -> str:
    return "M" if int(value[16]) % 2 else "F"


def phone_problem(value: str) -> str | None:
    return None if _PHONE_RE.match(value) else "not a mobile (11 digits) or landline number"


def _today() -> date:
    return clock.local(clock.now()).date()


def age(born: date | None, on: date | None = None) -> int | None:
    if born is None:
        return None
    on = on or _today()
    return on.year - born.year - ((on.month, on.day) < (born.month, born.day))


def _clean_person(data: dict, *, need_id: bool) -> dict:
    """Validate person fields (name, id_number, phone, birth_date, sex, relation); raise InvalidData
    listing every problem. Fills birth_date and sex from the ID number when missing."""
    errors = []
    out: dict[str, Any] = {}

    def bad(path: str, message: str) -> None:
        errors.append({"path": path, "message": message, "validator": "registry"})

    name = (data.get("name") or "").strip()
    if not name or len(name) > 50:
        bad("name", "a name of 1 to 50 characters is required")
    out["name"] = name
    idn = (data.get("id_number") or "").strip().upper() or None
    if idn:
        p = id_problem(idn)
        if p:
            bad("id_number", p)
    elif need_id:
        bad("id_number", "required")
    out["id_number"] = idn
    phone = (data.get("phone") or "").strip() or None
    if phone and phone_problem(phone):
        bad("phone", phone_problem(phone))
    out["phone"] = phone
    born = data.get("birth_date")
    if isinstance(born, str) and born.strip():
        try:
            born = date.fromisoformat(born.strip())
        except ValueError:
            bad("birth_date", "not a date (YYYY-MM-DD)")
            born = None
    elif not isinstance(born, date):
        born = None
    sex = (data.get("sex") or "").strip() or None
    if sex and sex not in SEXES:
        sex = {v: k for k, v in SEXES.items()}.get(sex, sex)
        if sex not in SEXES:
            bad("sex", "M or F (男/女)")
    if idn and not any(e["path"] == "id_number" for e in errors):
        if born is None:
            born = id_birth_date(idn)
        elif born != id_birth_date(idn):
            bad("birth_date", "does not match the ID number")
        if sex is None:
            sex = id_sex(idn)
        elif sex in SEXES and sex != id_sex(idn):
            bad("sex", "does not match the ID number")
    if born is not None and born > _today():
        bad("birth_date", "in the future")
    out["birth_date"], out["sex"] = born, sex
    relation = (data.get("relation") or "").strip()
    if relation not in RELATIONS:
        relation = {v: k for k, v in RELATIONS.items()}.get(relation, relation)
    if relation not in RELATIONS:
        bad("relation", "one of " + ", ".join(RELATIONS))
    out["relation"] = relation
    if errors:
        raise InvalidData("the person's data has errors", errors)
    return out


# ---- permissions --------------------------------------------------------------------------------
def _grid(s: Session, code: str) -> OrgUnit:
    unit = s.get(OrgUnit, code)
    if unit is None or unit.level != "grid":
        raise NotFound(f"no grid {code}")
    return unit


def may_see(s: Session, staff_id: str | None, grid_code: str) -> bool:
    """Whether the grid is in the person's jurisdiction (None = the system, e.g. the CLI)."""
    return staff_id is None or org.in_jurisdiction(s, staff_id, grid_code)


def may_edit(s: Session, staff_id: str | None, grid_code: str) -> bool:
    """Grid worker of the grid, or grid head of its village (None = the system)."""
    if staff_id is None:
        return True
    if org.holds_role(s, staff_id, grid_code, "grid_worker"):
        return True
    village = s.scalar(select(OrgUnit.parent_code).where(OrgUnit.code == grid_code))
    return village is not None and org.holds_role(s, staff_id, village, "grid_head")


def editable_grids(s: Session, staff_id: str | None) -> set[str] | None:
    """The grids the person may change (None = every grid)."""
    if staff_id is None:
        return None
    out: set[str] = set()
    for r in org.roles_of(s, staff_id):
        if r.role == "grid_worker":
            out.add(r.unit_code)
        elif r.role == "grid_head":
            out |= set(s.scalars(select(OrgUnit.code).where(OrgUnit.parent_code == r.unit_code,
                                                            OrgUnit.level == "grid")))
    return out


def _check_see(s: Session, staff_id: str | None, grid_code: str, what: str = "resident") -> None:
    if not may_see(s, staff_id, grid_code):
        raise NotFound(f"no such {what}")  # outside the jurisdiction looks the same as missing


def _check_edit(s: Session, staff_id: str | None, grid_code: str, what: str = "resident") -> None:
    _check_see(s, staff_id, grid_code, what)
    if not may_edit(s, staff_id, grid_code):
        raise Forbidden("only the grid worker of this grid or the grid head of its village may change it")


def _resident(s: Session, staff_id: str | None, resident_id: int, edit: bool = False,
              lock: bool = False) -> Resident:
    q = select(Resident).where(Resident.id == resident_id)
    if lock:
        q = q.with_for_update()
    r = s.scalar(q)
    if r is None:
        raise NotFound("no such resident")
    (_check_edit if edit else _check_see)(s, staff_id, r.grid_code)
    return r


def _household(s: Session, staff_id: str | None, household_id: int, edit: bool = False) -> tuple[Household, Building]:
    row = s.execute(select(Household, Building).join(Building, Building.id == Household.building_id)
                    .where(Household.id == household_id)).first()
    if row is None:
        raise NotFound("no such household")
    (_check_edit if edit else _check_see)(s, staff_id, row[1].grid_code, "household")
    return row[0], row[1]


# ---- events -------------------------------------------------------------------------------------
def _jsonable(d: dict) -> dict:
    return {k: (v.isoformat() if isinstance(v, (date, datetime)) else v) for k, v in d.items()}


def _event(s: Session, r: Resident, kind: str, actor: str | None, *, before: dict | None = None,
           after: dict | None = None, occurred_on: date | None = None, note: str | None = None,
           household_id: int | None = None) -> ResidentEvent:
    ev = ResidentEvent(resident_id=r.id, household_id=household_id or r.household_id, grid_code=r.grid_code,
                       kind=kind, occurred_on=occurred_on, at=clock.now(), actor=actor,
                       before=_jsonable(before or {}), after=_jsonable(after or {}), note=note)
    s.add(ev)
    return ev


PERSON_FIELDS = ("name", "id_number", "phone", "birth_date", "sex", "relation")


def _snapshot(r: Resident, fields=PERSON_FIELDS) -> dict:
    return {f: getattr(r, f) for f in fields}


# ---- buildings and households -------------------------------------------------------------------
def add_building(svc, staff_id: str | None, grid_code: str, address: str, lat: float | None = None,
                 lng: float | None = None) -> int:
    address = (address or "").strip()
    if not address or len(address) > 200:
        raise InvalidData("an address of 1 to 200 characters is required",
                          [{"path": "address", "message": "required", "validator": "registry"}])
    with svc.db.write() as s:
        _grid(s, grid_code)
        _check_edit(s, staff_id, grid_code, "grid")
        if s.scalar(select(Building.id).where(Building.address == address)) is not None:
            raise Conflict(f"{address} is already registered")
        b = Building(grid_code=grid_code, address=address, lat=lat, lng=lng, created_at=clock.now())
        s.add(b)
        s.flush()
        return b.id


def add_household(svc, staff_id: str | None, building_id: int, door_no: str) -> int:
    door_no = (door_no or "").strip()
    if not door_no or len(door_no) > 20:
        raise InvalidData("a door number of 1 to 20 characters is required",
                          [{"path": "door_no", "message": "required", "validator": "registry"}])
    with svc.db.write() as s:
        b = s.get(Building, building_id)
        if b is None:
            raise NotFound("no such building")
        _check_edit(s, staff_id, b.grid_code, "building")
        if s.scalar(select(Household.id).where(Household.building_id == b.id, Household.door_no == door_no)):
            raise Conflict(f"{b.address} {door_no} is already registered")
        h = Household(building_id=b.id, door_no=door_no, created_at=clock.now())
        s.add(h)
        s.flush()
        return h.id


def _living_head(s: Session, household_id: int, exclude: int | None = None) -> Resident | None:
    q = select(Resident).where(Resident.household_id == household_id, Resident.status == "living",
                               Resident.relation == "head")
    if exclude is not None:
        q = q.where(Resident.id != exclude)
    return s.scalars(q.limit(1)).first()


def _check_head(s: Session, household_id: int, relation: str, exclude: int | None = None) -> None:
    if relation == "head" and _living_head(s, household_id, exclude) is not None:
        raise Conflict("this household already has a head; change the head first")


# ---- life events --------------------------------------------------------------------------------
def register_birth(svc, staff_id: str | None, household_id: int, *, name: str, birth_date: date | str,
                   sex: str, id_number: str | None = None, relation: str = "child", note: str | None = None) -> int:
    """A child born into a household (the ID number may come later, via `update_resident`)."""
    _may_edit_household(svc, staff_id, household_id)  # jurisdiction before input checks
    p = _clean_person({"name": name, "birth_date": birth_date, "sex": sex, "id_number": id_number,
                       "relation": relation}, need_id=False)
    if p["birth_date"] is None or p["sex"] is None:
        raise InvalidData("birth date and sex are required", [
            {"path": k, "message": "required", "validator": "registry"} for k in ("birth_date", "sex")
            if p[k] is None])
    with svc.db.write() as s:
        h, b = _household(s, staff_id, household_id, edit=True)
        _unique_id(s, p["id_number"])
        now = clock.now()
        r = Resident(household_id=h.id, grid_code=b.grid_code, status="living", created_at=now, updated_at=now, **p)
        s.add(r)
        s.flush()
        _event(s, r, "birth", staff_id, after=p, occurred_on=p["birth_date"], note=note)
        return r.id


def _may_edit_household(svc, staff_id: str | None, household_id: int) -> None:
    with svc.db.read() as s:
        _household(s, staff_id, household_id, edit=True)


def _unique_id(s: Session, idn: str | None, exclude: int | None = None) -> None:
    if not idn:
        return
    q = select(Resident.id).where(Resident.id_number == idn)
    if exclude is not None:
        q = q.where(Resident.id != exclude)
    if s.scalar(q) is not None:
        raise Conflict("a resident with this ID number is already registered")


def register_death(svc, staff_id: str | None, resident_id: int, *, died_on: date | str | None = None,
                   note: str | None = None) -> None:
    """Record a death; the person's visit schedules end."""
    died_on = _date(died_on, "died_on")
    with svc.db.write() as s:
        r = _resident(s, staff_id, resident_id, edit=True, lock=True)
        if r.status != "living":
            raise Conflict(f"this resident is not living here (status {r.status})")
        r.status, r.updated_at = "deceased", clock.now()
        _event(s, r, "death", staff_id, before={"status": "living"}, after={"status": "deceased"},
               occurred_on=died_on, note=note)
        s.flush()
        end_flags(svc, [resident_id], staff_id, "deceased", session=s)


def _date(v: date | str | None, path: str) -> date:
    if v is None or v == "":
        return _today()
    if isinstance(v, date):
        return v
    try:
        return date.fromisoformat(str(v).strip())
    except ValueError:
        raise InvalidData("not a date", [{"path": path, "message": "not a date (YYYY-MM-DD)",
                                          "validator": "registry"}]) from None


def move_out(svc, staff_id: str | None, resident_id: int, *, moved_on: date | str | None = None,
             destination: str | None = None, note: str | None = None) -> None:
    """The person left the registry's area (or the destination has not registered them yet).
    Their visit schedules end; a later `move_in` by ID number brings the flags back."""
    moved_on = _date(moved_on, "moved_on")
    with svc.db.write() as s:
        r = _resident(s, staff_id, resident_id, edit=True, lock=True)
        if r.status != "living":
            raise Conflict(f"this resident is not living here (status {r.status})")
        r.status, r.updated_at = "moved_out", clock.now()
        _event(s, r, "move_out", staff_id, before={"status": "living"},
               after={"status": "moved_out", "destination": destination}, occurred_on=moved_on, note=note)
        s.flush()
        end_flags(svc, [resident_id], staff_id, "moved_out", session=s)


def move_in(svc, staff_id: str | None, household_id: int, *, name: str, id_number: str, relation: str,
            phone: str | None = None, birth_date: date | str | None = None, sex: str | None = None,
            moved_on: date | str | None = None, came_from: str | None = None, note: str | None = None) -> int:
    """Register a person moving into a household, by ID number.

    A new person is created. A person already in the registry keeps their record (and history):
    someone who had moved out comes back (their special-population flags, ended by the move-out,
    are restored); someone still living elsewhere is transferred here, their open visits moving
    with them to this grid."""
    _may_edit_household(svc, staff_id, household_id)  # jurisdiction before input checks
    p = _clean_person({"name": name, "id_number": id_number, "relation": relation, "phone": phone,
                       "birth_date": birth_date, "sex": sex}, need_id=True)
    moved_on = _date(moved_on, "moved_on")
    restore: list[SpecialFlag] = []
    moved: list[int] = []
    with svc.db.write() as s:
        h, b = _household(s, staff_id, household_id, edit=True)
        r = s.scalar(select(Resident).where(Resident.id_number == p["id_number"]).with_for_update())
        if r is not None and r.status == "deceased":
            raise Conflict("this ID number belongs to a deceased resident")
        if r is not None and r.status == "living" and r.household_id == h.id:
            raise Conflict("this person already lives in this household")
        _check_head(s, h.id, p["relation"], exclude=r.id if r is not None else None)
        now = clock.now()
        if r is None:
            r = Resident(household_id=h.id, grid_code=b.grid_code, status="living", created_at=now, updated_at=now,
                         **p)
            s.add(r)
            s.flush()
            _event(s, r, "move_in", staff_id, after={**p, "came_from": came_from}, occurred_on=moved_on, note=note)
            return r.id
        before = {**_snapshot(r), "status": r.status, "household_id": r.household_id, "grid_code": r.grid_code}
        was_living = r.status == "living"
        old_grid = r.grid_code
        for k, v in p.items():
            if v is not None:
                setattr(r, k, v)
        r.household_id, r.grid_code, r.status, r.updated_at = h.id, b.grid_code, "living", now
        after = {**_snapshot(r), "status": "living", "household_id": h.id, "grid_code": b.grid_code,
                 "came_from": came_from}
        _event(s, r, "move_in", staff_id, before=before, after=after, occurred_on=moved_on, note=note)
        if was_living:
            if old_grid != b.grid_code:
                _move_flags(s, r.id, b.grid_code)
                moved.append(r.id)
        else:
            restore = _flags_ended_by_move(s, r.id)
        rid = r.id
        if moved:
            s.flush()
            reassign_visits(svc, moved, staff_id, session=s)
    for f in restore:
        try:
            flag(svc, staff_id, rid, f.category, f.risk_level, note=f"restored after moving in (flag {f.id})")
        except EngineError as e:  # the process may be missing; the move itself stands
            log.warning("could not restore flag %s of resident %s: %s", f.id, rid, e)
    return rid


def _move_flags(s: Session, resident_id: int, grid_code: str) -> None:
    s.execute(update(SpecialFlag).where(SpecialFlag.resident_id == resident_id, SpecialFlag.active.is_(True))
              .values(grid_code=grid_code).execution_options(synchronize_session=False))


def _flags_ended_by_move(s: Session, resident_id: int) -> list[SpecialFlag]:
    """Flags that the person's last move-out ended (none if a flag of that category is active)."""
    last_out = s.scalar(select(func.max(ResidentEvent.at)).where(ResidentEvent.resident_id == resident_id,
                                                                 ResidentEvent.kind == "move_out"))
    if last_out is None:
        return []
    flags = list(s.scalars(select(SpecialFlag).where(SpecialFlag.resident_id == resident_id,
                                                     SpecialFlag.end_reason == "moved_out",
                                                     SpecialFlag.ended_at >= last_out)))
    active = set(s.scalars(select(SpecialFlag.category).where(SpecialFlag.resident_id == resident_id,
                                                              SpecialFlag.active.is_(True))))
    return [f for f in flags if f.category not in active]


def transfer(svc, staff_id: str | None, resident_id: int, household_id: int, *, relation: str | None = None,
             moved_on: date | str | None = None, note: str | None = None) -> None:
    """Move a living resident to another household (in the same grid or another one). The person
    must be changeable by the actor at both ends (e.g. the grid head moving someone between two
    grids of the village). Open visits move to the new grid's worker."""
    moved_on = _date(moved_on, "moved_on")
    with svc.db.write() as s:
        r = _resident(s, staff_id, resident_id, edit=True, lock=True)
        if r.status != "living":
            raise Conflict(f"this resident is not living here (status {r.status})")
        h, b = _household(s, staff_id, household_id, edit=True)
        if h.id == r.household_id:
            raise Conflict("this person already lives in this household")
        rel = relation or r.relation
        if rel not in RELATIONS:
            raise InvalidData("unknown relation", [{"path": "relation", "message": "one of " + ", ".join(RELATIONS),
                                                    "validator": "registry"}])
        _check_head(s, h.id, rel, exclude=r.id)
        before = {"household_id": r.household_id, "grid_code": r.grid_code, "relation": r.relation}
        old_grid = r.grid_code
        r.household_id, r.grid_code, r.relation, r.updated_at = h.id, b.grid_code, rel, clock.now()
        _event(s, r, "transfer", staff_id, before=before,
               after={"household_id": h.id, "grid_code": b.grid_code, "relation": rel, "address": b.address,
                      "door_no": h.door_no}, occurred_on=moved_on, note=note)
        changed_grid = old_grid != b.grid_code
        if changed_grid:
            _move_flags(s, r.id, b.grid_code)
            s.flush()
            reassign_visits(svc, [resident_id], staff_id, session=s)


def update_resident(svc, staff_id: str | None, resident_id: int, changes: dict, note: str | None = None) -> dict:
    """Correct a resident's details (name, ID number, phone, birth date, sex, relation); returns the
    fields that changed with their old values. Status and household change only through the life
    events above."""
    unknown = set(changes) - set(PERSON_FIELDS)
    if unknown:
        raise InvalidData("these fields cannot be changed here", [
            {"path": k, "message": "use the life events (birth, death, move ...)", "validator": "registry"}
            for k in sorted(unknown)])
    with svc.db.write() as s:
        r = _resident(s, staff_id, resident_id, edit=True, lock=True)
        merged = {**_snapshot(r), **changes}
        p = _clean_person(merged, need_id=bool(r.id_number))
        diff = {k: v for k, v in p.items() if getattr(r, k) != v}
        if not diff:
            return {}
        if "id_number" in diff:
            _unique_id(s, p["id_number"], exclude=r.id)
        if "relation" in diff and r.status == "living":
            _check_head(s, r.household_id, p["relation"], exclude=r.id)
        before = {k: getattr(r, k) for k in diff}
        for k, v in diff.items():
            setattr(r, k, v)
        r.updated_at = clock.now()
        _event(s, r, "update", staff_id, before=before, after=diff, note=note)
        return before


def set_head(svc, staff_id: str | None, household_id: int, resident_id: int, *,
             old_head_relation: str = "other", note: str | None = None) -> None:
    """Make a living member the head of the household; the old head (if living) takes
    `old_head_relation`."""
    if old_head_relation not in RELATIONS or old_head_relation == "head":
        raise InvalidData("unknown relation", [{"path": "old_head_relation", "message": "not head",
                                                "validator": "registry"}])
    with svc.db.write() as s:
        h, _b = _household(s, staff_id, household_id, edit=True)
        r = _resident(s, staff_id, resident_id, edit=True, lock=True)
        if r.household_id != h.id or r.status != "living":
            raise Conflict("the new head must be a living member of this household")
        if r.relation == "head":
            return
        old = _living_head(s, h.id)
        now = clock.now()
        if old is not None:
            _event(s, old, "head", staff_id, before={"relation": "head"}, after={"relation": old_head_relation},
                   note=note)
            old.relation, old.updated_at = old_head_relation, now
            s.flush()
        _event(s, r, "head", staff_id, before={"relation": r.relation}, after={"relation": "head"}, note=note)
        r.relation, r.updated_at = "head", now


# ---- special populations and visits -------------------------------------------------------------
def _scopes(path: str) -> list[str]:
    parts = [p for p in path.split("/") if p]
    return ["/".join(parts[: i + 1]) + "/" for i in range(len(parts))]


def flag(svc, staff_id: str | None, resident_id: int, category: str, risk_level: str,
         note: str | None = None) -> int:
    """Flag a living resident as a special population / service group and start the visit schedule."""
    if category not in CATEGORIES:
        raise InvalidData("unknown category", [{"path": "category", "message": "one of " + ", ".join(CATEGORIES),
                                                "validator": "registry"}])
    if risk_level not in RISK_LEVELS:
        raise InvalidData("unknown risk level", [{"path": "risk_level", "message": "one of "
                                                  + ", ".join(RISK_LEVELS), "validator": "registry"}])
    with svc.db.write() as s:
        r = _resident(s, staff_id, resident_id, edit=True, lock=True)
        if r.status != "living":
            raise Conflict("only living residents can be flagged")
        if s.scalar(select(SpecialFlag.id).where(SpecialFlag.resident_id == r.id, SpecialFlag.category == category,
                                                 SpecialFlag.active.is_(True))) is not None:
            raise Conflict("this resident already has an active flag of this category")
        grid = _grid(s, r.grid_code)
        now = clock.now()
        f = SpecialFlag(resident_id=r.id, grid_code=r.grid_code, category=category, risk_level=risk_level,
                        active=True, note=note, flagged_at=now, flagged_by=staff_id, visits=0, overdue_count=0)
        s.add(f)
        s.flush()
        data = {"flag_id": f.id, "resident_id": r.id, "resident_name": r.name, "category": category,
                "risk_level": risk_level, "grid_unit": r.grid_code, "village_unit": grid.parent_code,
                "visit_no": 0, "last_visit_at": None}
        f.instance_id = _start_schedule(svc, s, f, data, staff_id, grid.path)
        _event(s, r, "flag", staff_id, after={"flag_id": f.id, "category": category, "risk_level": risk_level},
               note=note)
        return f.id


def _start_schedule(svc, s: Session, f: SpecialFlag, data: dict, actor: str | None, path: str) -> int:
    data = {**data, "rounds": 0, "max_rounds": ROUNDS_PER_INSTANCE}
    try:
        step = svc.runtime.start(PROCESS_ID, data, actor=actor, business_key=BUSINESS_KEY.format(f.id),
                                 scopes=_scopes(path), session=s)
    except NotFound as e:
        raise Conflict(f"the visit process {PROCESS_ID} is not deployed: {e}") from e
    return step.instance_id


def _flag(s: Session, staff_id: str | None, flag_id: int, edit: bool = True) -> SpecialFlag:
    f = s.get(SpecialFlag, flag_id)
    if f is None:
        raise NotFound("no such flag")
    (_check_edit if edit else _check_see)(s, staff_id, f.grid_code, "flag")
    return f


def _running(s: Session, instance_id: int | None) -> bool:
    return instance_id is not None and s.scalar(select(Instance.status).where(Instance.id == instance_id)) == "running"


def unflag(svc, staff_id: str | None, flag_id: int, reason: str) -> None:
    """End a flag and its visit schedule (the process records why and who)."""
    reason = (reason or "").strip()
    if not reason:
        raise InvalidData("a reason is required", [{"path": "reason", "message": "required", "validator": "registry"}])
    with svc.db.read() as s:
        f = _flag(s, staff_id, flag_id)
        if not f.active:
            raise Conflict("this flag has already ended")
        running = _running(s, f.instance_id)
        iid = f.instance_id
    if running:
        svc.runtime.send_message(iid, "unflagged", {"reason": reason[:200]}, actor=staff_id)
        return
    _end_flag_directly(svc, flag_id, staff_id, reason)


def _end_flag_directly(svc, flag_id: int, staff_id: str | None, reason: str) -> None:
    """End a flag whose process is not running (failed, or never started)."""
    with svc.db.write() as s:
        f = s.get(SpecialFlag, flag_id)
        if f is None or not f.active:
            return
        _close_flag(s, f, staff_id, reason)
        iid = f.instance_id
        failed = iid is not None and s.scalar(select(Instance.status).where(Instance.id == iid)) == "failed"
    if failed:
        try:
            svc.runtime.cancel(iid, actor=staff_id, reason=f"flag ended: {reason}")
        except EngineError as e:
            log.warning("could not cancel visit instance %s: %s", iid, e)


def _close_flag(s: Session, f: SpecialFlag, actor: str | None, reason: str) -> None:
    f.active, f.ended_at, f.ended_by, f.end_reason = False, clock.now(), actor, (reason or "")[:200]
    r = s.get(Resident, f.resident_id)
    _event(s, r, "unflag", actor, before={"flag_id": f.id, "category": f.category, "active": True},
           after={"active": False, "reason": f.end_reason})


def change_risk(svc, staff_id: str | None, flag_id: int, risk_level: str) -> None:
    """Change a flag's risk level; the schedule is recomputed from the last visit."""
    if risk_level not in RISK_LEVELS:
        raise InvalidData("unknown risk level", [{"path": "risk_level", "message": "one of "
                                                  + ", ".join(RISK_LEVELS), "validator": "registry"}])
    with svc.db.read() as s:
        f = _flag(s, staff_id, flag_id)
        if not f.active:
            raise Conflict("this flag has ended")
        if f.risk_level == risk_level:
            return
        if not _running(s, f.instance_id):
            raise Conflict("the visit schedule of this flag is not running; ask an administrator")
        iid = f.instance_id
    svc.runtime.send_message(iid, "risk_changed", {"risk_level": risk_level}, actor=staff_id)


def end_flags(svc, resident_ids: list[int], actor: str | None, reason: str, session: Session | None = None) -> None:
    """End every active flag of these residents (after a death or a move out). Given the session of
    the resident change, the schedules end in the same transaction; a schedule that cannot be told
    is logged and the resident change stands (each flag in its own savepoint)."""
    if session is None:
        with svc.db.write() as s:
            return end_flags(svc, resident_ids, actor, reason, session=s)
    s = session
    ids = list(s.scalars(select(SpecialFlag.id).where(SpecialFlag.resident_id.in_(resident_ids),
                                                      SpecialFlag.active.is_(True))))
    for fid in ids:
        try:
            with s.begin_nested():
                _end_flag_in(svc, s, actor, fid, reason)
        except EngineError as e:
            log.warning("could not end flag %s: %s", fid, e)


def _end_flag_in(svc, s: Session, actor: str | None, flag_id: int, reason: str) -> None:
    """Like `unflag` but without the permission check (the caller changed the resident already)."""
    f = s.get(SpecialFlag, flag_id)
    if f is None or not f.active:
        return
    status = s.scalar(select(Instance.status).where(Instance.id == f.instance_id)) if f.instance_id else None
    if status == "running":
        svc.runtime.send_message(f.instance_id, "unflagged", {"reason": reason}, actor=actor, session=s)
        return
    _close_flag(s, f, actor, reason)
    if status == "failed":
        try:
            with s.begin_nested():
                svc.runtime.cancel(f.instance_id, actor=actor, reason=f"flag ended: {reason}", session=s)
        except EngineError as e:
            log.warning("could not cancel visit instance %s: %s", f.instance_id, e)


def reassign_visits(svc, resident_ids: list[int], actor: str | None, session: Session | None = None) -> int:
    """Tell the visit schedules of these residents which grid (and village) they belong to now;
    the open visit moves to the new grid's worker. Returns how many schedules were told. Given the
    session of the move, this happens in the same transaction (each schedule in a savepoint)."""
    if session is None:
        with svc.db.write() as s:
            return reassign_visits(svc, resident_ids, actor, session=s)
    s = session
    rows = s.execute(select(SpecialFlag.instance_id, SpecialFlag.grid_code, OrgUnit.parent_code)
                     .join(OrgUnit, OrgUnit.code == SpecialFlag.grid_code)
                     .join(Instance, Instance.id == SpecialFlag.instance_id)
                     .where(SpecialFlag.resident_id.in_(resident_ids), SpecialFlag.active.is_(True),
                            Instance.status == "running")).all()
    n = 0
    for iid, grid, village in rows:
        try:
            with s.begin_nested():
                svc.runtime.send_message(iid, "resident_moved", {"grid_unit": grid, "village_unit": village},
                                         actor=actor, session=s)
            n += 1
        except EngineError as e:
            log.warning("could not move the visits of instance %s to %s: %s", iid, grid, e)
    return n


# ---- the listener -------------------------------------------------------------------------------
def _parse_time(v: Any) -> datetime | None:
    if not v:
        return None
    d = datetime.fromisoformat(str(v))
    return (d if d.tzinfo else d.replace(tzinfo=clock.SHANGHAI)).astimezone(clock.UTC)


def make_listener(svc):
    """The engine listener for `special_visit` steps (bound to `svc` for the dispute reports)."""

    def on_step(s: Session, step: Step) -> None:
        if step.process_id != PROCESS_ID or not (step.business_key or "").startswith("flag:"):
            return
        f = s.get(SpecialFlag, int(step.business_key.split(":", 1)[1]))
        if f is None:
            return
        now = clock.now()
        for ev in step.emitted:
            kind, d = ev["kind"], ev["data"]
            if kind == "visit_scheduled":
                f.next_due_at = _parse_time(d.get("due_at"))
            elif kind == "visited":
                visit = dict(d.get("visit") or {})
                f.visits = int(d.get("visit_no") or f.visits + 1)
                f.last_visit_at, f.overdue_since = now, None
                r = s.get(Resident, f.resident_id)
                after = {"flag_id": f.id, "category": f.category, "visit_no": f.visits,
                         "due_at": d.get("due_at"), **visit}
                e = _event(s, r, "visit", step.actor, after=after, occurred_on=clock.local(now).date(),
                           note=visit.get("notes"))
                if visit.get("open_case") and visit.get("dispute"):
                    s.flush()
                    _report_after_commit(svc, s, e.id, step.actor, f.id)
            elif kind == "visit_overdue":
                f.overdue_since = now
                f.overdue_count = (f.overdue_count or 0) + 1
            elif kind == "risk_changed":
                r = s.get(Resident, f.resident_id)
                _event(s, r, "risk", step.actor, before={"flag_id": f.id, "risk_level": f.risk_level},
                       after={"risk_level": d.get("to_level")})
                f.risk_level = d.get("to_level") or f.risk_level
            elif kind == "schedule_ended" and f.active:
                _close_flag(s, f, step.actor, d.get("reason") or "")
                f.next_due_at = None
            elif kind == "schedule_renewed" and f.active:
                r = s.get(Resident, f.resident_id)
                grid = s.get(OrgUnit, d.get("grid_unit") or f.grid_code)
                data = {"flag_id": f.id, "resident_id": r.id, "resident_name": r.name, "category": f.category,
                        "risk_level": d.get("risk_level") or f.risk_level, "grid_unit": grid.code,
                        "village_unit": d.get("village_unit") or grid.parent_code,
                        "visit_no": int(d.get("visit_no") or f.visits), "last_visit_at": d.get("last_visit_at")}
                f.instance_id = _start_schedule(svc, s, f, data, step.actor, grid.path)
        if step.status == "cancelled" and f.active:
            _close_flag(s, f, step.actor, "visit schedule cancelled")
            f.next_due_at = None

    return on_step


def _report_after_commit(svc, s: Session, event_id: int, actor: str | None, flag_id: int) -> None:
    """Open the dispute case a visit asked for, once the visit's transaction has committed
    (`grid.cases.report` runs its own transaction)."""

    def hook(_session) -> None:
        try:
            open_visit_case(svc, event_id, actor)
        except Exception:  # noqa: BLE001 - the visit stands; the failure is recorded on the event
            log.exception("could not open the dispute case of visit event %s (flag %s)", event_id, flag_id)

    event.listen(s, "after_commit", hook, once=True)


def open_visit_case(svc, event_id: int, actor: str | None):
    """Report the dispute recorded on a visit event (once; the case number is kept on the event)."""
    from grid.cases import service as cases

    with svc.db.read() as s:
        ev = s.get(ResidentEvent, event_id)
        if ev is None or ev.kind != "visit":
            return None  # the visit's transaction did not commit after all
        if ev.after.get("case_no"):
            return ev.after["case_no"]
        r = s.get(Resident, ev.resident_id)
        h, b = s.get(Household, r.household_id), None
        b = s.get(Building, h.building_id) if h else None
        visit = ev.after
        d = visit.get("dispute") or {}
        location = {"text": f"{b.address} {h.door_no}" if b else r.grid_code}
        if b is not None and b.lat is not None and b.lng is not None:
            location.update(lat=b.lat, lng=b.lng)
        data = {"category": d.get("category"), "description": d.get("description"), "location": location,
                "parties": [{"name": r.name, "resident_id": r.id}], "photos": list(visit.get("photos") or []),
                "settled_on_spot": bool(d.get("settled_on_spot"))}
        if d.get("spot_result"):
            data["spot_result"] = d["spot_result"]
        grid = ev.grid_code
    try:
        c = cases.report(svc, actor, data, grid_code=grid)
        result = {"case_no": c.case_no, "case_id": c.id}
    except EngineError as e:
        result = {"case_error": str(e)[:500]}
    with svc.db.write() as s:
        ev = s.get(ResidentEvent, event_id)
        ev.after = {**ev.after, **result}
    return result.get("case_no")


_validator_registered = False


def visit_dmn_coverage(bundle, parsed) -> list:
    """Every category x risk level must be covered by the visit-interval DMN (if the bundle has it)."""
    from engine import dmncheck
    from engine.errors import Problem

    problems = []
    for name, content in bundle.dmn.items():
        for missing, where in dmncheck.gaps(content, "visit_intervals",
                                            {"category": list(CATEGORIES), "risk_level": list(RISK_LEVELS)}):
            problems.append(Problem(name, f"visit intervals do not cover {missing}", where, "visit_intervals"))
    return problems


def install(svc) -> None:
    """Register the registry's hooks on a Services object (idempotent)."""
    global _validator_registered
    if not any(getattr(fn, "_gridflow_registry", False) for fn in svc.runtime.listeners):
        fn = make_listener(svc)
        fn._gridflow_registry = True  # type: ignore[attr-defined]
        svc.runtime.listeners.append(fn)
    if not _validator_registered:
        from engine.deploy import register_validator

        register_validator(visit_dmn_coverage)
        _validator_registered = True


# ---- reveal -------------------------------------------------------------------------------------
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
        visible = may_see(s, staff_id, r.grid_code)
        granted = visible and may_edit(s, staff_id, r.grid_code)
        s.add(RevealLog(staff_id=staff_id, resident_id=r.id, field=field_name, granted=granted,
                        reason=(reason or "")[:200] or None, at=clock.now()))
        value = getattr(r, field_name) or ""
    if not visible:
        raise NotFound("no such resident")
    if not granted:
        raise Forbidden("only the grid worker of this grid or the grid head of its village may see this")
    return value


def reveals(svc, staff_id: str, resident_id: int, limit: int = 50) -> list[dict]:
    """Who revealed what of this resident (for the people who may change the record)."""
    with svc.db.read() as s:
        _resident(s, staff_id, resident_id, edit=True)
        rows = s.execute(select(RevealLog, Staff.name).join(Staff, Staff.id == RevealLog.staff_id)
                         .where(RevealLog.resident_id == resident_id).order_by(RevealLog.id.desc()).limit(limit))
        return [{"at": x.at, "staff_id": x.staff_id, "staff_name": name, "field": x.field, "granted": x.granted,
                 "reason": x.reason} for x, name in rows]


# ---- my grid ------------------------------------------------------------------------------------
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


def my_grids(svc, staff_id: str) -> list[tuple[str, str, str]]:
    """(code, grid name, village name) of the grids the person works on: their own grids, and the
    grids of the villages they head; others in their jurisdiction are reached by browsing."""
    with svc.db.read() as s:
        codes = sorted(editable_grids(s, staff_id) or [])
        if not codes:
            paths = org.jurisdiction_paths(s, staff_id)
            codes = list(s.scalars(select(OrgUnit.code).where(OrgUnit.level == "grid", org.paths_condition(paths))
                                   .order_by(OrgUnit.code).limit(200)))
        village = OrgUnit.__table__.alias("v")
        rows = s.execute(select(OrgUnit.code, OrgUnit.name, village.c.name)
                         .join(village, village.c.code == OrgUnit.parent_code).where(OrgUnit.code.in_(codes))
                         .order_by(OrgUnit.code)).all()
        return [tuple(r) for r in rows]


def grid_overview(svc, staff_id: str | None, grid_code: str, include_gone: bool = False) -> GridView:
    """"My grid at a glance": buildings → households → members (masked), their flags, and the due
    visits of the grid. A few indexed queries, assembled in Python."""
    now = clock.now()
    today = clock.local(now).date()
    with svc.db.read() as s:
        g = _grid(s, grid_code)
        _check_see(s, staff_id, grid_code, "grid")
        village = s.get(OrgUnit, g.parent_code) if g.parent_code else None
        can_edit = may_edit(s, staff_id, grid_code)
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
            m = Member(rid, name, sex, age(born, today), rel, status, mask_phone(phone), mask_id(idn))
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


# ---- resident page, search, links to cases ------------------------------------------------------
def resident_cases(svc, staff_id: str | None, resident_id: int) -> list[DisputeCase]:
    """Dispute cases whose parties name this resident (`resident_id` in a party), in the person's
    jurisdiction, newest first."""
    with svc.db.read() as s:
        _resident(s, staff_id, resident_id)
        return _cases_of(s, staff_id, resident_id)


def _cases_of(s: Session, staff_id: str | None, resident_id: int) -> list[DisputeCase]:
    if s.bind.dialect.name == "postgresql":
        cond = text("(dispute_case.parties @> CAST(:p_int AS jsonb) OR dispute_case.parties @> CAST(:p_str AS jsonb))"
                    ).bindparams(p_int=json.dumps([{"resident_id": resident_id}]),
                                 p_str=json.dumps([{"resident_id": str(resident_id)}]))
    else:
        cond = text("EXISTS (SELECT 1 FROM json_each(dispute_case.parties) AS p "
                    "WHERE json_extract(p.value, '$.resident_id') IN (:rid, :rid_s))").bindparams(
            rid=resident_id, rid_s=str(resident_id))
    q = select(DisputeCase).where(cond)
    if staff_id is not None:
        q = q.where(org.paths_condition(org.jurisdiction_paths(s, staff_id), DisputeCase.unit_path))
    return list(s.scalars(q.order_by(DisputeCase.reported_at.desc()).limit(100)))


def resident_page(svc, staff_id: str, resident_id: int) -> dict:
    """Everything the resident page shows, masked: the person, household and members, flags with
    their visit state, the history of events, and their dispute cases."""
    with svc.db.read() as s:
        r = _resident(s, staff_id, resident_id)
        h = s.get(Household, r.household_id)
        b = s.get(Building, h.building_id)
        g = s.get(OrgUnit, r.grid_code)
        can_edit = may_edit(s, staff_id, r.grid_code)
        today = _today()
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
        case_list = _cases_of(s, staff_id, r.id)
    return {"resident": _member(r, today), "birth_date": r.birth_date, "household": h, "building": b, "grid": g,
            "members": members, "flags": flags, "open_visits": open_visits, "events": events, "names": names,
            "cases": case_list, "can_edit": can_edit, "can_reveal": can_edit, "created_batch_id": r.created_batch_id}


def _member(r: Resident, today: date) -> Member:
    return Member(r.id, r.name, r.sex, age(r.birth_date, today), r.relation, r.status, mask_phone(r.phone),
                  mask_id(r.id_number))


def search(svc, staff_id: str | None, q: str, grid_code: str | None = None, limit: int = 20,
           living_only: bool = True) -> list[dict]:
    """Residents in the person's jurisdiction matching `q` (a name prefix, a full ID number, a
    phone number, or the last 4 characters of an ID number), masked: for picking case parties."""
    q = (q or "").strip()
    if not q:
        return []
    limit = max(1, min(int(limit), 100))
    with svc.db.read() as s:
        stmt = (select(Resident.id, Resident.name, Resident.sex, Resident.birth_date, Resident.phone,
                       Resident.id_number, Resident.status, Resident.grid_code, Household.door_no, Building.address,
                       OrgUnit.name)
                .join(Household, Household.id == Resident.household_id)
                .join(Building, Building.id == Household.building_id)
                .join(OrgUnit, OrgUnit.code == Resident.grid_code))
        up = q.upper()
        if _ID_RE.match(up):
            stmt = stmt.where(Resident.id_number == up)
        elif re.fullmatch(r"[\d-]{7,20}", q):
            stmt = stmt.where(Resident.phone == q)
        elif re.fullmatch(r"\d{3}[\dX]", up):
            stmt = stmt.where(Resident.id_number.like(f"%{up}"))
        else:
            esc = q.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
            stmt = stmt.where(Resident.name.like(f"{esc}%", escape="\\"))
        if living_only:
            stmt = stmt.where(Resident.status == "living")
        if grid_code:
            stmt = stmt.where(Resident.grid_code == grid_code)
        if staff_id is not None:
            stmt = stmt.where(org.jurisdiction_filter(s, staff_id, Resident.grid_code))
        today = _today()
        rows = s.execute(stmt.order_by(Resident.name, Resident.id).limit(limit)).all()
    return [{"resident_id": rid, "name": name, "sex": sex, "age": age(born, today), "phone": mask_phone(phone),
             "id_number": mask_id(idn), "status": status, "grid_code": grid, "grid_name": gname,
             "address": f"{addr} {door}"} for rid, name, sex, born, phone, idn, status, grid, door, addr, gname in rows]


def party(svc, staff_id: str | None, resident_id: int) -> dict:
    """A case party for the report form, picked from the registry: name and resident id, no phone
    (the phone stays in the registry, masked)."""
    with svc.db.read() as s:
        r = _resident(s, staff_id, resident_id)
        return {"name": r.name, "resident_id": r.id}


def visit_context(svc, instance_ids: list[int]) -> dict[int, dict]:
    """For inbox rows of visit tasks: instance id -> resident name, category, risk, grid, flag id."""
    if not instance_ids:
        return {}
    with svc.db.read() as s:
        rows = s.execute(select(SpecialFlag.instance_id, SpecialFlag.id, SpecialFlag.category, SpecialFlag.risk_level,
                                SpecialFlag.grid_code, Resident.id, Resident.name)
                         .join(Resident, Resident.id == SpecialFlag.resident_id)
                         .where(SpecialFlag.instance_id.in_(instance_ids))).all()
    return {iid: {"flag_id": fid, "category": cat, "category_name": CATEGORIES.get(cat, cat), "risk_level": risk,
                  "grid_code": grid, "resident_id": rid, "resident_name": name}
            for iid, fid, cat, risk, grid, rid, name in rows}


def status_name(code: str) -> str:
    return STATUSES.get(code, code)


def household_page(svc, staff_id: str, household_id: int) -> dict:
    """A household with its building, grid, members (masked) and whether the person may edit it."""
    with svc.db.read() as s:
        h, b = _household(s, staff_id, household_id)
        g = s.get(OrgUnit, b.grid_code)
        today = clock.local(clock.now()).date()
        members = [_member(r, today) for r in s.scalars(
            select(Resident).where(Resident.household_id == h.id).order_by(Resident.id))]
        can_edit = may_edit(s, staff_id, b.grid_code)
    return {"h": h, "b": b, "g": g, "members": members, "can_edit": can_edit}


def flag_resident(svc, staff_id: str, flag_id: int) -> int:
    """The resident a flag belongs to, if the person may see it."""
    with svc.db.read() as s:
        f = s.get(SpecialFlag, flag_id)
        if f is None or not may_see(s, staff_id, f.grid_code):
            raise NotFound("no such flag")
        return f.resident_id


def check_grid(svc, staff_id: str, grid_code: str, edit: bool = False) -> None:
    """NotFound unless the person may see the grid; Forbidden if `edit` and they may not change it."""
    with svc.db.read() as s:
        if not may_see(s, staff_id, grid_code):
            raise NotFound("no such grid")
        if edit and not may_edit(s, staff_id, grid_code):
            raise Forbidden("you may not change this grid")


def audit_export(svc, staff_id: str, grid_code: str | None) -> int:
    """Record an (unmasked) export before its first byte leaves; returns the record id."""
    with svc.db.write() as s:
        b = ImportBatch(filename=f"export{'-' + grid_code if grid_code else ''}.csv", sha256="-", format="csv",
                        actor=staff_id, grid_code=grid_code, started_at=clock.now(), finished_at=None,
                        status="exporting", rows=0, counts={}, errors=[])
        s.add(b)
        s.flush()
        return b.id


def audit_export_done(svc, batch_id: int, rows: int) -> None:
    with svc.db.write() as s:
        b = s.get(ImportBatch, batch_id)
        b.status, b.finished_at, b.rows, b.counts = "exported", clock.now(), rows, {"exported": rows}
