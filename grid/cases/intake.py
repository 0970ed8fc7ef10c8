"""Intake from outside the grid: a report from an API/Open311 client becomes a case in the grid
its location falls in, reported on behalf of that grid's current grid worker.

`service.report` only knows the grid worker's own phone: it takes a staff id and validates that
she holds the grid. Until it takes a `source` (and an on-behalf actor) itself, this wrapper
reports as the grid's worker and keeps the source in the case's start data (`source`,
`source_client`), which the process carries and the timeline shows.
"""
from __future__ import annotations

from grid.cases import routing
from grid.cases import service as cases
from grid.cases.models import DisputeCase
from grid.errors import Forbidden
from grid.org import service as org
from grid.org.models import OrgUnit

SOURCES = ("grid_worker", "hotline", "window", "open311")


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


def report_external(svc, data: dict, *, grid_code: str, source: str, client_id: str | None = None) -> DisputeCase:
    """Report on behalf of the grid's current grid worker; the source is kept with the case data."""
    if source not in SOURCES:
        raise ValueError(f"unknown source {source!r}")
    with svc.db.read() as s:
        worker = org.current_grid_worker(s, grid_code)
    if worker is None:
        raise Forbidden("this grid has no grid worker to take the report")
    data = {**data, "settled_on_spot": False}
    # the report form is strict (additionalProperties may be false): keep the source beside it
    c = cases.report(svc, worker.id, data, grid_code=grid_code)
    _mark_source(svc, c, source, client_id)
    return c


def _mark_source(svc, c: DisputeCase, source: str, client_id: str | None) -> None:
    svc.runtime.annotate(c.instance_id, "intake", {"source": source, "client": client_id},
                         actor=f"api:{client_id}" if client_id else source)


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
