"""Intake from outside the grid: a report taken by a hotline or service-window operator on a
resident's behalf, or posted by an Open311/API client, becomes a case in the grid its location
falls in (point in polygon, grid.cases.routing) or in the grid the operator chose.

The case keeps its `source` (a column, counted per source in the indicators); the grid's current
grid worker is recorded as its reporter, since she verifies on site, and the operator or client
as the actor who took it (`taken_by` in the process data, the start event's actor).
"""
from __future__ import annotations

from sqlalchemy.orm import Session

from engine.errors import InvalidData
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
    grid = routing.route(svc, float(lat), float(lng))
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
    return cases.report(svc, staff_id, data, grid_code=grid_code, source=source, on_behalf_of=on_behalf_of,
                        actor=f"api:{client_id}" if client_id else None)


def report_form(svc) -> dict:
    """The active version's report form (the source of Open311 services and their attributes)."""
    with svc.db.read() as s:
        vid = svc.runtime.resolve_version(s, cases.PROCESS_ID)
        return svc.runtime.form_schema(vid, cases.REPORT_FORM, session=s) or {}


def locate_address(svc, text: str, unit_path: str) -> str:
    """A grid for an address without coordinates: the unit whose name the address names (the
    longest match), then its first grid. No geocoder: a stand-in until one is configured."""
    from sqlalchemy import func, select

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
