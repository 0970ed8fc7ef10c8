"""Point-in-polygon routing of a WGS-84 lat/long to its grid, over unit boundaries (GeoJSON).

Boundaries are the org tree's (`grid.org.boundaries`: the `unit_boundary` table, else an imported
grid's `org_unit.boundary`). `fill_demo` regenerates the demo city's nested Voronoi tiling of
Xiangyang, with the seed chain (襄城区 / 真武山街道 / 檀溪社区 / 第十五网格) at the seed story's
address, around 32.02 N, 112.14 E.

`Router` indexes the grid polygons in a shapely STRtree; a lookup costs a tree query and a
contains test on the few candidates (see bench/routing_bench.py).
"""
from __future__ import annotations

import json
import threading
import time

from sqlalchemy import Index, func, select
from sqlalchemy.orm import Session

from grid.cases.models import DisputeCase
from grid.org import boundaries
from grid.org.models import OrgUnit, UnitBoundary

# The API case list and incremental sync (/api/v1/cases, grid.cases.api_reads.list_cases) read in
# (updated_at, id) order: this index lets a page stop after `limit` rows instead of sorting every
# case (bench/api_bench.py). Declared here (a MODEL_MODULES module of this work); it belongs beside
# DisputeCase in grid/cases/models.py, where the lead may move it (migration 0022 creates it).
IX_CASE_UPDATED = Index("ix_dispute_case_updated_id", DisputeCase.updated_at, DisputeCase.id)

__all__ = ["UnitBoundary", "Router", "fill_demo", "boundary", "grid_polygons", "router", "route", "EXTENT"]

SEED_POINT = boundaries.SEED_POINT
_lngs = [p[0] for p in boundaries.CITY_OUTLINE]
_lats = [p[1] for p in boundaries.CITY_OUTLINE]
EXTENT = (min(_lats), min(_lngs), max(_lats), max(_lngs))  # (south, west, north, east) of the outline


def fill_demo(s: Session, seed: tuple[str, ...] | None = None) -> int:
    """Replace every unit's boundary with the generated demo tiling; returns the units filled.
    (`grid.org.demo.generate` already does this; kept for databases built before it did.)"""
    if seed is None:
        from grid.org import demo

        seed = (demo.SEED_COUNTY, demo.SEED_TOWNSHIP, demo.SEED_VILLAGE, demo.SEED_GRID)
    units = [{"code": c, "parent_code": p, "level": lv, "lat": la, "lng": ln} for c, p, lv, la, ln in s.execute(
        select(OrgUnit.code, OrgUnit.parent_code, OrgUnit.level, OrgUnit.lat, OrgUnit.lng).order_by(OrgUnit.code))]
    n = boundaries.write_demo(s, units, seed)
    _CACHE.clear()
    return n


def boundary(s: Session, unit_code: str) -> dict | None:
    return boundaries.geometry_of(s, unit_code)


class Router:
    """Grid polygons in an STRtree; `route` answers a point, `route_many` a batch."""

    def __init__(self, polygons: list[tuple[str, dict]]):
        from shapely import STRtree
        from shapely.geometry import shape

        pairs = sorted(polygons)
        self.codes = [c for c, _g in pairs]
        self.geoms = [shape(g) for _c, g in pairs]
        self.tree = STRtree(self.geoms)

    def route(self, lat: float, lng: float) -> str | None:
        """The grid whose polygon holds the point (the lowest code on a shared edge), or None."""
        from shapely.geometry import Point

        hits = self.tree.query(Point(lng, lat), predicate="intersects")
        return self.codes[int(min(hits))] if len(hits) else None

    def route_many(self, points: list[tuple[float, float]]) -> list[str | None]:
        import numpy as np
        from shapely import points as make_points

        geoms = make_points(np.array([(ln, la) for la, ln in points], dtype=float))
        pi, gi = self.tree.query(geoms, predicate="intersects")
        out: list[str | None] = [None] * len(points)
        for p, g in zip(pi.tolist(), gi.tolist(), strict=True):
            if out[p] is None or self.codes[g] < out[p]:
                out[p] = self.codes[g]
        return out


_CACHE: dict[int, tuple[float, Router]] = {}
_LOCK = threading.Lock()
TTL = 60.0


def grid_polygons(s: Session) -> list[tuple[str, dict]]:
    """Every grid with an outline: its `unit_boundary` row, else the imported `org_unit.boundary`."""
    geo = func.coalesce(UnitBoundary.geojson, OrgUnit.boundary)
    q = (select(OrgUnit.code, geo).outerjoin(UnitBoundary, UnitBoundary.unit_code == OrgUnit.code)
         .where(OrgUnit.level == "grid", geo.is_not(None)))
    return [(c, json.loads(g)) for c, g in s.execute(q)]


def router(db) -> Router:
    """A Router over the database's grid boundaries, rebuilt at most once a minute."""
    with _LOCK:
        hit = _CACHE.get(id(db))
        if hit and time.monotonic() - hit[0] < TTL:
            return hit[1]
    with db.read() as s:
        r = Router(grid_polygons(s))
    with _LOCK:
        _CACHE[id(db)] = (time.monotonic(), r)
    return r


def route(svc, lat: float, lng: float) -> str | None:
    """The grid code for a WGS-84 point, or None when it lies outside every grid."""
    return router(svc.db).route(lat, lng)
