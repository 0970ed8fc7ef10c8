"""Intake from outside the grid: a report taken by a hotline or service-window operator on a
resident's behalf, or posted by an Open311/API client, becomes a case in the grid its location
falls in (point in polygon, grid.cases.routing) or in the grid the operator chose.

The case keeps its `source` (a column, counted per source in the indicators); the grid's current
grid worker is recorded as its reporter, since she verifies on site, and the operator or client
as the actor who took it (`taken_by` in the process data, the start event's actor).

`take_call` is the hotline/window page's entry (web/intake.py): role `operator` on a county or the
city; routed by a chosen grid, else the pin (point in polygon), else the community the address
names. A caller's phone is sealed (grid.crypto, context `case.caller_phone`) before it enters the
process data, for API clients' `on_behalf_of` too, so neither the audit trail nor the feed has it.
"""
from __future__ import annotations

import math
import re

from sqlalchemy import select
from sqlalchemy.orm import Session

from engine.errors import InvalidData
from grid import crypto
from grid.cases import routing
from grid.cases import service as cases
from grid.cases.models import DisputeCase
from grid.cases.rollup import SOURCES
from grid.errors import Forbidden
from grid.org import service as org
from grid.org.models import OrgUnit

CLIENT_SOURCES = ("open311", "api", "hotline", "window")  # what a client may say it forwards


class OutsideGrids(ValueError):
    """The location lies in no grid (or outside the client's jurisdiction)."""


def locate(svc, lat: float | None, lng: float | None, unit_path: str) -> str:
    """The grid for a point, which must lie within `unit_path`."""
    if lat is None or lng is None:
        raise OutsideGrids("a location (lat/long) is needed to route the report to a grid")
    try:
        lat, lng = float(lat), float(lng)
    except (TypeError, ValueError):
        raise OutsideGrids("lat and lng are numbers (degrees)") from None
    if not (math.isfinite(lat) and math.isfinite(lng)):
        raise OutsideGrids("lat and lng are finite numbers (degrees)")
    grid = routing.route(svc, lat, lng)
    if grid is None:
        raise OutsideGrids("the location lies in no grid of this city")
    with svc.db.read() as s:
        unit = s.get(OrgUnit, grid)
        if unit is None or not unit.path.startswith(unit_path):
            raise OutsideGrids("the location lies outside this client's jurisdiction")
    return grid


def check(s: Session, source: str, staff_id: str | None, grid_code: str | None, reporter_id: str | None,
          actor: str | None) -> tuple[str, str, str]:
    """(grid, reporter, actor) of a report that does not come from the grid worker's phone.

    An operator (`staff_id`) may report only into her jurisdiction; a client (no staff id) names
    itself in `actor` (its jurisdiction is checked by the API layer). The reporter is the grid's
    current grid worker unless one is named, and then she must hold the grid."""
    if source not in SOURCES or source == "grid_worker":
        raise InvalidData(f"unknown source {source!r}",
                          [{"path": "source", "message": f"one of {', '.join(SOURCES[1:])}"}])
    if grid_code is None or s.get(OrgUnit, grid_code) is None:
        raise InvalidData("a report from outside the grid needs its grid", [{"path": "grid", "message": "required"}])
    if staff_id is not None:
        if not org.in_jurisdiction(s, staff_id, grid_code):
            raise Forbidden("this grid is outside your jurisdiction")
        actor = staff_id
    elif not actor:
        raise Forbidden("a report from outside the grid needs the operator or client who took it")
    if reporter_id is None:
        worker = org.current_grid_worker(s, grid_code)
        if worker is None:
            raise Forbidden("this grid has no grid worker to take the report")
        reporter_id = worker.id
    elif not org.holds_role(s, reporter_id, grid_code, "grid_worker"):
        raise Forbidden("the reporter must be this grid's grid worker")
    return grid_code, reporter_id, actor


def report_external(svc, data: dict, *, grid_code: str, source: str, client_id: str | None = None,
                    staff_id: str | None = None, on_behalf_of: dict | None = None) -> DisputeCase:
    """A case from a client (`client_id`) or an operator (`staff_id`), never settled on the spot."""
    if client_id is not None and source not in CLIENT_SOURCES:
        raise InvalidData(f"a client cannot report as {source!r}",
                          [{"path": "source", "message": f"one of {', '.join(CLIENT_SOURCES)}"}])
    data = {**data, "settled_on_spot": False}
    return cases.report(svc, staff_id, data, grid_code=grid_code, source=source, on_behalf_of=sealed_caller(on_behalf_of),
                        actor=f"api:{client_id}" if client_id else None)


CALLER_PHONE = "case.caller_phone"  # the AES-GCM context of a caller's phone in the process data
OPERATOR_SOURCES = ("hotline", "window")
PHONE_RE = re.compile(r"\+?[0-9][0-9 -]{5,18}[0-9]")


def sealed_caller(caller: dict | None) -> dict | None:
    """The caller with the phone encrypted (grid.crypto, like every phone at rest): the process
    data, its audit trail and the event feed never carry it in clear. Already sealed stays."""
    if not caller:
        return caller
    out = {k: caller[k] for k in ("name", "phone") if caller.get(k)}
    phone = out.get("phone")
    if phone and not crypto.is_sealed(phone):
        out["phone"] = crypto.seal(str(phone), CALLER_PHONE)
    return out


def caller_phone(sealed: str | None) -> str | None:
    """The caller's phone from the process data, for the roles that may reveal it (audited by the caller)."""
    if not sealed:
        return None
    return crypto.unseal(sealed, CALLER_PHONE) if crypto.is_sealed(sealed) else sealed


def operator_units(svc, staff_id: str) -> list[OrgUnit]:
    """The units the person takes hotline/window reports for (her operator roles); Forbidden without one."""
    with svc.db.read() as s:
        codes = [r.unit_code for r in org.roles_of(s, staff_id) if r.role == "operator"]
        if not codes:
            raise Forbidden("only a hotline or service-window operator takes reports for residents")
        return list(s.scalars(select(OrgUnit).where(OrgUnit.code.in_(codes)).order_by(OrgUnit.code)))


def _problem(path: str, message: str) -> dict:
    return {"path": path, "message": message}


def take_call(svc, staff_id: str, form: dict) -> tuple[DisputeCase, str]:
    """A case an operator takes on a resident's behalf (hotline call or service window).

    `form`: source (hotline | window), caller_name, caller_phone, category, description,
    location_text, lat, lng (both or neither), grid (a chosen grid code, optional). The grid is
    the chosen one, else the one the point lies in (point in polygon), else the community the
    address names; it must lie in the operator's jurisdiction. Returns (case, how it was routed:
    chosen | point | address). Bad input is InvalidData with every problem, and nothing is written."""
    units = operator_units(svc, staff_id)
    problems = []
    source = form.get("source") or "hotline"
    if source not in OPERATOR_SOURCES:
        problems.append(_problem("source", "hotline or window"))
    name = (form.get("caller_name") or "").strip()
    phone = re.sub(r"[ -]", "", (form.get("caller_phone") or "").strip())
    if not name or len(name) > 50:
        problems.append(_problem("caller_name", "the caller's name (at most 50 characters)"))
    if not PHONE_RE.fullmatch(phone or "x"):
        problems.append(_problem("caller_phone", "a phone number (digits, 7 to 20)"))
    text = (form.get("location_text") or "").strip()
    lat, lng = _number(form.get("lat"), -90, 90, "lat", problems), _number(form.get("lng"), -180, 180, "lng", problems)
    if (lat is None) != (lng is None):
        problems.append(_problem("lat", "give both latitude and longitude, or neither"))
    grid = (form.get("grid") or "").strip() or None
    if grid is not None and not (grid.isascii() and grid.isdigit() and len(grid) <= 20):
        problems.append(_problem("grid", "a grid code"))
    if problems:
        raise InvalidData("the report is incomplete", problems)
    how = "chosen"
    if grid is None:
        try:
            if lat is not None:
                how, grid = "point", _in_any(svc, lambda p: locate(svc, lat, lng, p), units)
            elif text:
                how, grid = "address", _in_any(svc, lambda p: locate_address(svc, text, p), units)
            else:
                raise OutsideGrids("give a point on the map, an address naming a community, or a grid")
        except OutsideGrids as e:
            raise InvalidData(str(e), [_problem("location", str(e))]) from None
    with svc.db.read() as s:
        u = s.get(OrgUnit, grid)
        if u is None or u.level != "grid":
            raise InvalidData("no such grid", [_problem("grid", "no such grid")])
        if not text:  # the report form needs an address: the grid's own name stands in
            village = s.get(OrgUnit, u.parent_code) if u.parent_code else None
            text = f"{village.name if village else ''}{u.name}"
    data = {"category": form.get("category") or "", "description": (form.get("description") or "").strip(),
            "location": {"text": text or "", **({"lat": lat, "lng": lng} if lat is not None else {})},
            "parties": [], "settled_on_spot": False}
    c = report_external(svc, data, grid_code=grid, source=source, staff_id=staff_id,
                        on_behalf_of={"name": name, "phone": phone})
    return c, how


def _number(raw, lo: float, hi: float, path: str, problems: list) -> float | None:
    if raw is None or str(raw).strip() == "":
        return None
    try:
        v = float(str(raw).strip())
    except ValueError:
        problems.append(_problem(path, "a number"))
        return None
    if not (lo <= v <= hi) or v != v:
        problems.append(_problem(path, f"between {lo:g} and {hi:g}"))
        return None
    return v


def _in_any(svc, find, units: list[OrgUnit]) -> str:
    """The first grid `find(path)` gives within one of the operator's units."""
    last: OutsideGrids | None = None
    for u in units:
        try:
            return find(u.path)
        except OutsideGrids as e:
            last = e
    raise last or OutsideGrids("the location lies outside your jurisdiction")


def report_form(svc) -> dict:
    """The active version's report form (the source of Open311 services and their attributes)."""
    with svc.db.read() as s:
        vid = svc.runtime.resolve_version(s, cases.PROCESS_ID)
        return svc.runtime.form_schema(vid, cases.REPORT_FORM, session=s) or {}


def locate_address(svc, text: str, unit_path: str) -> str:
    """A grid for an address without coordinates: the unit whose name the address names (the
    longest match), then its first grid. No geocoder: a stand-in until one is configured."""
    from sqlalchemy import func

    with svc.db.read() as s:
        rows = list(s.execute(select(OrgUnit.code, OrgUnit.name, OrgUnit.path, OrgUnit.level)
                              .where(org.paths_condition([unit_path]))
                              .order_by(func.length(OrgUnit.name).desc(), OrgUnit.code)))
        for _code, name, path, level in rows:
            if level == "village" and name and name in (text or ""):  # grid names repeat across villages
                grid = s.scalar(select(OrgUnit.code).where(OrgUnit.level == "grid", org.paths_condition([path]))
                                .order_by(OrgUnit.code).limit(1))
                if grid:
                    return grid
    raise OutsideGrids("the address names no community or village of this jurisdiction; send lat/long")
