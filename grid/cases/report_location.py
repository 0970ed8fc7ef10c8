"""Is a grid worker's reported point inside her grid? The server-side half of the report page's
"this point lies outside your grid" warning (web/static/js/map.js draws the client-side half).

A report from a grid worker names the grid it is reported from. When the form carries a point
(`location.lat`/`lng`) and that grid has a boundary (grid.org.boundaries), the point must lie in
the outline or within `TOLERANCE_M` of it (a phone's fix is often tens of metres off, and a
dispute on the border street belongs to either side). Farther out, the report is refused with a
field error on `location`, and nothing is stored: the worker moves the pin, or the case is
reported from the grid where it happened (a point in another of her own grids is named, so she
can switch). No point (a typed address only) or no boundary: nothing to check.

Only grid-worker reports are checked: hotline, window, Open311 and API intake route by the point
(grid.cases.intake), so their point is inside the grid by construction.
"""
from __future__ import annotations

from dataclasses import dataclass

from engine.errors import InvalidData
from grid.org import boundaries
from grid.org import service as org
from grid.org.models import OrgUnit

TOLERANCE_M = 100.0


@dataclass(frozen=True)
class Outside:
    """The point is this far (metres, rounded) from the chosen grid; `other` is another of the
    worker's own grids that holds it, if any (code, name)."""

    grid: str
    grid_name: str
    distance_m: int
    other: tuple[str, str] | None = None


def _point(data: dict) -> tuple[float, float] | None:
    loc = data.get("location") if isinstance(data, dict) else None
    if not isinstance(loc, dict):
        return None
    lat, lng = loc.get("lat"), loc.get("lng")
    ok = all(isinstance(v, int | float) and not isinstance(v, bool) and v == v for v in (lat, lng))
    return (float(lat), float(lng)) if ok and abs(lat) <= 90 and abs(lng) <= 180 else None


def outside(s, staff_id: str | None, grid_code: str, data: dict) -> Outside | None:
    """None when the point may be reported from `grid_code`; else where it lies (see module doc)."""
    point = _point(data)
    if point is None:
        return None
    shape = boundaries.geometry_of(s, grid_code)
    away = boundaries.distance_m(shape, *point)
    if away is None or away <= TOLERANCE_M:
        return None
    unit = s.get(OrgUnit, grid_code)
    other = None
    if staff_id:
        mine = [r.unit_code for r in org.roles_of(s, staff_id) if r.role == "grid_worker" and r.unit_code != grid_code]
        for code, g in sorted(boundaries.many(s, mine).items()):
            if boundaries.contains(g, *point):
                u = s.get(OrgUnit, code)
                other = (code, u.name if u else code)
                break
    return Outside(grid_code, unit.name if unit else grid_code, int(round(away)), other)


def check(svc, staff_id: str, grid_code: str, data: dict) -> Outside | None:
    """`outside` in a read transaction of its own (for the web layer, before the report)."""
    with svc.db.read() as s:
        return outside(s, staff_id, grid_code, data)


def require_inside(s, staff_id: str | None, grid_code: str, data: dict) -> None:
    """InvalidData on `location` when the point lies outside the grid (for the report service,
    inside its write transaction, so nothing is stored)."""
    where = outside(s, staff_id, grid_code, data)
    if where is not None:
        raise InvalidData("the location lies outside the grid", [{
            "path": "location", "validator": "inside_grid", "value": where.distance_m,
            "message": f"the point lies about {where.distance_m} m outside grid {where.grid}"}])
