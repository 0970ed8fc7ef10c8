"""Buildings, households and residents, and their life events: add, births, deaths, moves in and
out, transfers between households, corrections and a change of head.

Every read and write checks jurisdiction (`grid.registry.rules`); every change is recorded as a
`ResidentEvent` (who, when, the fields before and after), nothing is overwritten silently. A death
or a move out ends the person's visit schedules, a move to another grid hands their open visits to
the new grid's worker, and a move back in restores the flags the move out ended
(`grid.registry.visits`).
"""
from __future__ import annotations

import logging
from datetime import date

from sqlalchemy import select
from sqlalchemy.orm import Session

from engine import clock
from engine.errors import Conflict, EngineError, InvalidData, NotFound
from grid.registry import rules, visits
from grid.registry.models import RELATIONS, Building, Household, Resident, SpecialFlag

log = logging.getLogger("gridflow.registry")


# ---- buildings and households -------------------------------------------------------------------
def add_building(svc, staff_id: str | None, grid_code: str, address: str, lat: float | None = None,
                 lng: float | None = None) -> int:
    """Register a building (its address is unique in the registry) in a grid the person may change."""
    address = (address or "").strip()
    if not address or len(address) > 200:
        raise InvalidData("an address of 1 to 200 characters is required",
                          [{"path": "address", "message": "required", "validator": "registry"}])
    with svc.db.write() as s:
        rules.get_grid(s, grid_code)
        rules.check_edit(s, staff_id, grid_code, "grid")
        if s.scalar(select(Building.id).where(Building.address == address)) is not None:
            raise Conflict(f"{address} is already registered")
        b = Building(grid_code=grid_code, address=address, lat=lat, lng=lng, created_at=clock.now())
        s.add(b)
        s.flush()
        return b.id


def add_household(svc, staff_id: str | None, building_id: int, door_no: str) -> int:
    """Register a household (a door number, unique in its building) in a building the person may change."""
    door_no = (door_no or "").strip()
    if not door_no or len(door_no) > 20:
        raise InvalidData("a door number of 1 to 20 characters is required",
                          [{"path": "door_no", "message": "required", "validator": "registry"}])
    with svc.db.write() as s:
        b = s.get(Building, building_id)
        if b is None:
            raise NotFound("no such building")
        rules.check_edit(s, staff_id, b.grid_code, "building")
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
    p = rules.clean_person({"name": name, "birth_date": birth_date, "sex": sex, "id_number": id_number,
                            "relation": relation}, need_id=False)
    if p["birth_date"] is None or p["sex"] is None:
        raise InvalidData("birth date and sex are required", [
            {"path": k, "message": "required", "validator": "registry"} for k in ("birth_date", "sex")
            if p[k] is None])
    with svc.db.write() as s:
        h, b = rules.get_household(s, staff_id, household_id, edit=True)
        _unique_id(s, p["id_number"])
        now = clock.now()
        r = Resident(household_id=h.id, grid_code=b.grid_code, status="living", created_at=now, updated_at=now, **p)
        s.add(r)
        s.flush()
        rules.record_event(s, r, "birth", staff_id, after=p, occurred_on=p["birth_date"], note=note)
        return r.id


def _may_edit_household(svc, staff_id: str | None, household_id: int) -> None:
    with svc.db.read() as s:
        rules.get_household(s, staff_id, household_id, edit=True)


def _unique_id(s: Session, idn: str | None, exclude: int | None = None) -> None:
    """Conflict if another resident has this ID number: the same neutral answer wherever they are."""
    if not idn:
        return
    other = rules.find_by_id_number(s, idn)
    if other is not None and other.id != exclude:
        raise Conflict(rules.ID_TAKEN)


def register_death(svc, staff_id: str | None, resident_id: int, *, died_on: date | str | None = None,
                   note: str | None = None) -> None:
    """Record a death; the person's visit schedules end."""
    _leave(svc, staff_id, resident_id, "deceased", "death", rules.parse_date(died_on, "died_on"), note, {})


def move_out(svc, staff_id: str | None, resident_id: int, *, moved_on: date | str | None = None,
             destination: str | None = None, note: str | None = None) -> None:
    """The person left the registry's area (or the destination has not registered them yet).
    Their visit schedules end; a later `move_in` by ID number brings the flags back."""
    _leave(svc, staff_id, resident_id, "moved_out", "move_out", rules.parse_date(moved_on, "moved_on"), note,
           {"destination": destination})


def _leave(svc, staff_id: str | None, resident_id: int, status: str, kind: str, occurred_on: date | None,
           note: str | None, after: dict) -> None:
    """A living resident leaves the registry (`status`), as a life event `kind`; their visit schedules end."""
    with svc.db.write() as s:
        r = rules.get_resident(s, staff_id, resident_id, edit=True, lock=True)
        if r.status != "living":
            raise Conflict(f"this resident is not living here (status {r.status})")
        r.status, r.updated_at = status, clock.now()
        rules.record_event(s, r, kind, staff_id, before={"status": "living"}, after={"status": status, **after},
                           occurred_on=occurred_on, note=note)
        s.flush()
        visits.end_flags(svc, [resident_id], staff_id, status, session=s)


def move_in(svc, staff_id: str | None, household_id: int, *, name: str, id_number: str, relation: str,
            phone: str | None = None, birth_date: date | str | None = None, sex: str | None = None,
            moved_on: date | str | None = None, came_from: str | None = None, note: str | None = None) -> int:
    """Register a person moving into a household, by ID number.

    A new person is created. A person already in the registry keeps their record (and history):
    someone who had moved out comes back (their special-population flags, ended by the move-out,
    are restored); someone still living elsewhere is transferred here, their open visits moving
    with them to this grid. Either needs the right to change the person's current grid too
    (`rules.check_move`); without it the answer is `rules.ID_TAKEN`, the same whatever the
    person's status, so a move-in is no way to learn about or take over someone elsewhere."""
    _may_edit_household(svc, staff_id, household_id)  # jurisdiction before input checks
    p = rules.clean_person({"name": name, "id_number": id_number, "relation": relation, "phone": phone,
                            "birth_date": birth_date, "sex": sex}, need_id=True)
    moved_on = rules.parse_date(moved_on, "moved_on")
    restore: list[SpecialFlag] = []
    moved: list[int] = []
    with svc.db.write() as s:
        h, b = rules.get_household(s, staff_id, household_id, edit=True)
        r = rules.find_by_id_number(s, p["id_number"], lock=True)
        if r is not None:
            rules.check_move(s, staff_id, r.grid_code, b.grid_code)  # before anything about the person shows
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
            rules.record_event(s, r, "move_in", staff_id, after={**p, "came_from": came_from}, occurred_on=moved_on,
                               note=note)
            return r.id
        before = {**rules.snapshot(r), "status": r.status, "household_id": r.household_id, "grid_code": r.grid_code}
        was_living = r.status == "living"
        old_grid = r.grid_code
        for k, v in p.items():
            if v is not None:
                setattr(r, k, v)
        r.household_id, r.grid_code, r.status, r.updated_at = h.id, b.grid_code, "living", now
        after = {**rules.snapshot(r), "status": "living", "household_id": h.id, "grid_code": b.grid_code,
                 "came_from": came_from}
        rules.record_event(s, r, "move_in", staff_id, before=before, after=after, occurred_on=moved_on, note=note)
        if was_living:
            if old_grid != b.grid_code:
                visits.move_flags(s, r.id, b.grid_code)
                moved.append(r.id)
        else:
            restore = visits.flags_ended_by_move(s, r.id)
        rid = r.id
        if moved:
            s.flush()
            visits.reassign_visits(svc, moved, staff_id, session=s)
    for f in restore:
        try:
            visits.flag(svc, staff_id, rid, f.category, f.risk_level, note=f"restored after moving in (flag {f.id})")
        except EngineError as e:  # the process may be missing; the move itself stands
            log.warning("could not restore flag %s of resident %s: %s", f.id, rid, e)
    return rid


def transfer(svc, staff_id: str | None, resident_id: int, household_id: int, *, relation: str | None = None,
             moved_on: date | str | None = None, note: str | None = None) -> None:
    """Move a living resident to another household (in the same grid or another one). The person
    must be changeable by the actor at both ends (e.g. the grid head moving someone between two
    grids of the village). Open visits move to the new grid's worker."""
    moved_on = rules.parse_date(moved_on, "moved_on")
    with svc.db.write() as s:
        r = rules.get_resident(s, staff_id, resident_id, edit=True, lock=True)
        if r.status != "living":
            raise Conflict(f"this resident is not living here (status {r.status})")
        h, b = rules.get_household(s, staff_id, household_id, edit=True)
        rules.check_move(s, staff_id, r.grid_code, b.grid_code)
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
        rules.record_event(s, r, "transfer", staff_id, before=before,
                           after={"household_id": h.id, "grid_code": b.grid_code, "relation": rel,
                                  "address": b.address, "door_no": h.door_no}, occurred_on=moved_on, note=note)
        changed_grid = old_grid != b.grid_code
        if changed_grid:
            visits.move_flags(s, r.id, b.grid_code)
            s.flush()
            visits.reassign_visits(svc, [resident_id], staff_id, session=s)


def update_resident(svc, staff_id: str | None, resident_id: int, changes: dict, note: str | None = None) -> dict:
    """Correct a resident's details (name, ID number, phone, birth date, sex, relation); returns the
    fields that changed with their old values. Status and household change only through the life
    events above."""
    unknown = set(changes) - set(rules.PERSON_FIELDS)
    if unknown:
        raise InvalidData("these fields cannot be changed here", [
            {"path": k, "message": "use the life events (birth, death, move ...)", "validator": "registry"}
            for k in sorted(unknown)])
    with svc.db.write() as s:
        r = rules.get_resident(s, staff_id, resident_id, edit=True, lock=True)
        merged = {**rules.snapshot(r), **changes}
        p = rules.clean_person(merged, need_id=bool(r.id_number))
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
        rules.record_event(s, r, "update", staff_id, before=before, after=diff, note=note)
        return before


def set_head(svc, staff_id: str | None, household_id: int, resident_id: int, *,
             old_head_relation: str = "other", note: str | None = None) -> None:
    """Make a living member the head of the household; the old head (if living) takes
    `old_head_relation`."""
    if old_head_relation not in RELATIONS or old_head_relation == "head":
        raise InvalidData("unknown relation", [{"path": "old_head_relation", "message": "not head",
                                                "validator": "registry"}])
    with svc.db.write() as s:
        h, _b = rules.get_household(s, staff_id, household_id, edit=True)
        r = rules.get_resident(s, staff_id, resident_id, edit=True, lock=True)
        if r.household_id != h.id or r.status != "living":
            raise Conflict("the new head must be a living member of this household")
        if r.relation == "head":
            return
        old = _living_head(s, h.id)
        now = clock.now()
        if old is not None:
            rules.record_event(s, old, "head", staff_id, before={"relation": "head"},
                               after={"relation": old_head_relation}, note=note)
            old.relation, old.updated_at = old_head_relation, now
            s.flush()
        rules.record_event(s, r, "head", staff_id, before={"relation": r.relation}, after={"relation": "head"},
                           note=note)
        r.relation, r.updated_at = "head", now
