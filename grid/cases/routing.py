"""Point-in-polygon routing of a WGS-84 lat/long to its grid, over unit boundaries (GeoJSON).

Boundaries live in `unit_boundary` (one GeoJSON geometry per unit code) until the org tree
carries its own column. `fill_demo` draws plausible boundaries for the demo city: rectangles
tiling Xiangyang's extent, split level by level (city → county → … → grid) so that each unit's
rectangle holds its anchor point; the seed chain (襄城区 / 真武山街道 / 檀溪社区 / 第十五网格)
is anchored at the seed story's address, around 32.02 N, 112.14 E.

`Router` indexes the grid polygons in a shapely STRtree; a lookup costs a tree query and a
contains test on the few candidates (see bench/routing_bench.py).
"""
from __future__ import annotations

import json
import math
import threading
import time
from collections import defaultdict

from sqlalchemy import String, Text, delete, insert, select
from sqlalchemy.orm import Mapped, Session, mapped_column

from engine.db import Base
from grid.org.models import OrgUnit

EXTENT = (31.23, 110.75, 32.62, 113.72)  # (south, west, north, east): Xiangyang, roughly
SEED_POINT = (32.0213, 112.1432)  # 南山家属院, 檀溪社区 (the seed story's report)


class UnitBoundary(Base):
    __tablename__ = "unit_boundary"
    unit_code: Mapped[str] = mapped_column(String(20), primary_key=True)
    geojson: Mapped[str] = mapped_column(Text)  # a GeoJSON Polygon/MultiPolygon, [lng, lat] order


def rectangle(south: float, west: float, north: float, east: float) -> dict:
    """A GeoJSON polygon for a lat/long box (counter-clockwise exterior ring, lng first)."""
    ring = [[west, south], [east, south], [east, north], [west, north], [west, south]]
    return {"type": "Polygon", "coordinates": [[[round(x, 6), round(y, 6)] for x, y in ring]]}


def _split(box: tuple, kids: list[tuple[str, float, float]]) -> dict[str, tuple]:
    """Tile `box` with one rectangle per kid (code, lat, lng): columns along the longer side,
    rows within each column, cut half-way between neighbouring anchors (a kid's rectangle
    holds its anchor whenever the anchor lies in `box`)."""
    s, w, n, e = box
    if len(kids) == 1:
        return {kids[0][0]: box}

    def clamp(v: float, lo: float, hi: float) -> float:
        return min(max(v, lo), hi)

    pts = [(c, clamp(la, s, n), clamp(ln, w, e)) for c, la, ln in kids]
    wide = (e - w) * math.cos(math.radians((s + n) / 2)) >= (n - s)
    cols = max(1, round(math.sqrt(len(pts))))
    along = (lambda p: p[2]) if wide else (lambda p: p[1])
    other = (lambda p: p[1]) if wide else (lambda p: p[2])
    pts.sort(key=lambda p: (along(p), p[0]))
    groups = [pts[i * len(pts) // cols:(i + 1) * len(pts) // cols] for i in range(cols)]
    groups = [g for g in groups if g]
    lo, hi = (w, e) if wide else (s, n)
    olo, ohi = (s, n) if wide else (w, e)
    cuts = [lo] + [(along(a[-1]) + along(b[0])) / 2 for a, b in zip(groups, groups[1:], strict=False)] + [hi]
    out: dict[str, tuple] = {}
    for gi, g in enumerate(groups):
        g = sorted(g, key=lambda p: (other(p), p[0]))
        ocuts = [olo] + [(other(a) + other(b)) / 2 for a, b in zip(g, g[1:], strict=False)] + [ohi]
        for k, p in enumerate(g):
            a0, a1, o0, o1 = cuts[gi], cuts[gi + 1], ocuts[k], ocuts[k + 1]
            out[p[0]] = (o0, a0, o1, a1) if wide else (a0, o0, a1, o1)
    return out


def demo_boxes(units: list[tuple[str, str | None, float | None, float | None]],
               seed: tuple[str, ...] = ()) -> dict[str, tuple]:
    """(code, parent, lat, lng) rows → a tiling box per unit. Codes in `seed` anchor at SEED_POINT;
    their sibling grids just beside it."""
    kids: dict[str | None, list[tuple[str, float, float]]] = defaultdict(list)
    seed_set = set(seed)
    seed_home = seed[-2] if len(seed) > 1 else None  # the seed grid's village: its grids sit beside it
    for i, (code, parent, lat, lng) in enumerate(units):
        la, ln = lat if lat is not None else EXTENT[0], lng if lng is not None else EXTENT[1]
        if code in seed_set:
            la, ln = SEED_POINT
        elif seed_home is not None and parent == seed_home:
            la, ln = SEED_POINT[0] + 0.0015 * ((i % 3) - 1 or 1), SEED_POINT[1] - 0.002 * (1 + i % 4)
        kids[parent].append((code, la, ln))
    boxes: dict[str, tuple] = {}
    stack = [(None, EXTENT)]
    while stack:
        parent, box = stack.pop()
        if not kids.get(parent):
            continue
        for code, b in _split(box, kids[parent]).items():
            boxes[code] = b
            stack.append((code, b))
    return boxes


def fill_demo(s: Session, seed: tuple[str, ...] | None = None) -> int:
    """Replace every unit's boundary with the generated demo tiling; returns the units filled."""
    if seed is None:
        from grid.org import demo

        seed = (demo.SEED_COUNTY, demo.SEED_TOWNSHIP, demo.SEED_VILLAGE, demo.SEED_GRID)
    units = list(s.execute(select(OrgUnit.code, OrgUnit.parent_code, OrgUnit.lat, OrgUnit.lng)
                           .order_by(OrgUnit.code)).all())
    boxes = demo_boxes(units, seed)
    s.execute(delete(UnitBoundary))
    rows = [{"unit_code": c, "geojson": json.dumps(rectangle(*b))} for c, b in boxes.items()]
    for i in range(0, len(rows), 2000):
        s.execute(insert(UnitBoundary), rows[i:i + 2000])
    _CACHE.clear()
    return len(rows)


def boundary(s: Session, unit_code: str) -> dict | None:
    raw = s.scalar(select(UnitBoundary.geojson).where(UnitBoundary.unit_code == unit_code))
    return json.loads(raw) if raw else None


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
    q = (select(UnitBoundary.unit_code, UnitBoundary.geojson)
         .join(OrgUnit, OrgUnit.code == UnitBoundary.unit_code).where(OrgUnit.level == "grid"))
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
