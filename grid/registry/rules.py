"""The rules every part of the registry shares: what a valid ID number and phone are, who may see
and who may change a resident (jurisdiction), and the event history every change leaves.

Jurisdiction: a person sees the residents of the grids under the units they hold a role on
(outside looks the same as missing), and only the grid worker of the resident's grid or the grid
head of its village may change a record or reveal an ID number or phone (`EDIT_ROLES`).
"""
from __future__ import annotations

import re
from datetime import date, datetime
from operator import mul
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from engine import clock
from engine.errors import Conflict, InvalidData, NotFound
from grid import crypto
from grid.errors import Forbidden
from grid.org import service as org
from grid.org.models import OrgUnit
from grid.registry.models import ID_CONTEXT, RELATIONS, SEXES, Building, Household, Resident, ResidentEvent

EDIT_ROLES = {"grid_worker": "grid", "grid_head": "village"}
"""Who may change a resident's record and reveal an ID number or phone: the grid worker of the
resident's grid and the grid head of the village above it (not mediators, supervisors ...)."""


# ---- ID numbers, phones, people -----------------------------------------------------------------
ID_RE = re.compile(r"^\d{17}[\dX]$")
_ID_WEIGHTS = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)
_ID_CHECK = "10X98765432"
_PHONE_RE = re.compile(r"^(1[3-9]\d{9}|0\d{2,3}-?\d{7,8}(-\d{1,6})?)$")


_ID_OFFSET = 48 * sum(_ID_WEIGHTS)  # the weights times ord('0'), taken back out of the byte sum


def id_check_char(first17: str) -> str:
    """The check character (GB 11643, ISO 7064 MOD 11-2) of the first 17 digits."""
    return _ID_CHECK[(sum(map(mul, first17.encode(), _ID_WEIGHTS)) - _ID_OFFSET) % 11]


def id_problem(value: str, today: date | None = None) -> str | None:
    """Why `value` is not a valid 18-character 公民身份号码, or None."""
    if not ID_RE.match(value):
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
    """The birth date inside a valid ID number (characters 7 to 14)."""
    return date(int(value[6:10]), int(value[10:12]), int(value[12:14]))


def id_sex(value: str) -> str:
    """M or F from a valid ID number (the 17th digit: odd for men)."""
    return "M" if int(value[16]) % 2 else "F"


def phone_problem(value: str) -> str | None:
    """Why `value` is not a mobile or landline number, or None."""
    return None if _PHONE_RE.match(value) else "not a mobile (11 digits) or landline number"


def today() -> date:
    """Today in Beijing time (the day births, deaths and moves are dated by)."""
    return clock.local(clock.now()).date()


def age(born: date | None, on: date | None = None) -> int | None:
    """Full years from `born` to `on` (today), or None without a birth date."""
    if born is None:
        return None
    on = on or today()
    return on.year - born.year - ((on.month, on.day) < (born.month, born.day))


def parse_date(v: date | str | None, path: str) -> date:
    """The date a life event happened on (an ISO date; empty = today); InvalidData naming `path`."""
    if v is None or v == "":
        return today()
    if isinstance(v, date):
        return v
    try:
        return date.fromisoformat(str(v).strip())
    except ValueError:
        raise InvalidData("not a date", [{"path": path, "message": "not a date (YYYY-MM-DD)",
                                          "validator": "registry"}]) from None


def clean_person(data: dict, *, need_id: bool) -> dict:
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
    if born is not None and born > today():
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
def get_grid(s: Session, code: str) -> OrgUnit:
    """The grid unit `code`; NotFound if there is none or the unit is not a grid."""
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


def check_see(s: Session, staff_id: str | None, grid_code: str, what: str = "resident") -> None:
    """NotFound unless the grid is in the person's jurisdiction."""
    if not may_see(s, staff_id, grid_code):
        raise NotFound(f"no such {what}")  # outside the jurisdiction looks the same as missing


def check_edit(s: Session, staff_id: str | None, grid_code: str, what: str = "resident") -> None:
    """NotFound outside the jurisdiction; Forbidden unless the person may change the grid."""
    check_see(s, staff_id, grid_code, what)
    if not may_edit(s, staff_id, grid_code):
        raise Forbidden("only the grid worker of this grid or the grid head of its village may change it")


ID_TAKEN = ("this ID number cannot be registered here: a person registered in another grid is moved by "
            "someone who may change both grids (the grid head of the village, or the street office)")
"""The one answer to every write whose ID number is already registered where the actor may not
change it: the same whether that person lives there, moved out or died, so it tells nothing."""


def check_move(s: Session, staff_id: str | None, source_grid: str, dest_grid: str) -> None:
    """The jurisdiction guard of every registry move (move-in of a known person, transfer,
    import): the actor must be allowed to change the record at both ends. The source end is
    refused with `ID_TAKEN` (a Conflict that says nothing about the person), the destination
    with NotFound/Forbidden as any edit."""
    check_edit(s, staff_id, dest_grid, "household")
    if not may_edit(s, staff_id, source_grid):
        raise Conflict(ID_TAKEN)


def find_by_id_number(s: Session, idn: str, lock: bool = False) -> Resident | None:
    """The resident with this ID number (by its blind index, under every configured key)."""
    q = select(Resident).where(Resident.id_index.in_(crypto.blinds(idn.strip().upper(), ID_CONTEXT)))
    if lock:
        q = q.with_for_update()
    return s.scalars(q.limit(1)).first()


def get_resident(s: Session, staff_id: str | None, resident_id: int, edit: bool = False,
                 lock: bool = False) -> Resident:
    """The resident, if the person may see it (and change it, with `edit`); `lock` = FOR UPDATE."""
    q = select(Resident).where(Resident.id == resident_id)
    if lock:
        q = q.with_for_update()
    r = s.scalar(q)
    if r is None:
        raise NotFound("no such resident")
    (check_edit if edit else check_see)(s, staff_id, r.grid_code)
    return r


def get_household(s: Session, staff_id: str | None, household_id: int,
                  edit: bool = False) -> tuple[Household, Building]:
    """The household and its building, if the person may see it (and change it, with `edit`)."""
    row = s.execute(select(Household, Building).join(Building, Building.id == Household.building_id)
                    .where(Household.id == household_id)).first()
    if row is None:
        raise NotFound("no such household")
    (check_edit if edit else check_see)(s, staff_id, row[1].grid_code, "household")
    return row[0], row[1]


# ---- the event history --------------------------------------------------------------------------
SEALED_FIELDS = ("id_number", "phone")
"""Event fields kept sealed in the history (`grid.crypto`, context `event.<field>`)."""


def jsonable(d: dict) -> dict:
    """`d` with dates and times as ISO strings and ID numbers and phones sealed (for the JSON
    columns of an event: the history must not keep in plain text what the record encrypts)."""
    out = {}
    for k, v in d.items():
        if isinstance(v, (date, datetime)):
            v = v.isoformat()
        elif k in SEALED_FIELDS and isinstance(v, str) and v and not crypto.is_sealed(v):
            v = crypto.seal(v, f"event.{k}")
        out[k] = v
    return out


def event_value(key: str, value: Any) -> Any:
    """A history value as entered: sealed ID numbers and phones opened (mask them to show them)."""
    if key in SEALED_FIELDS and crypto.is_sealed(value):
        return crypto.unseal(value, f"event.{key}")
    return value


def opened(d: dict | None) -> dict:
    """An event's `before` or `after` with its sealed values opened."""
    return {k: event_value(k, v) for k, v in (d or {}).items()}


def record_event(s: Session, r: Resident, kind: str, actor: str | None, *, before: dict | None = None,
                 after: dict | None = None, occurred_on: date | None = None, note: str | None = None,
                 household_id: int | None = None) -> ResidentEvent:
    """Add the history entry of a change to `r` (who, when, the fields before and after)."""
    ev = ResidentEvent(resident_id=r.id, household_id=household_id or r.household_id, grid_code=r.grid_code,
                       kind=kind, occurred_on=occurred_on, at=clock.now(), actor=actor,
                       before=jsonable(before or {}), after=jsonable(after or {}), note=note)
    s.add(ev)
    return ev


PERSON_FIELDS = ("name", "id_number", "phone", "birth_date", "sex", "relation")


def snapshot(r: Resident, fields: tuple[str, ...] = PERSON_FIELDS) -> dict:
    """The resident's person fields, for the `before` of an event."""
    return {f: getattr(r, f) for f in fields}
