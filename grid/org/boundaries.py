"""Unit boundaries (GeoJSON, WGS-84/CGCS2000): the demo city's generated tiling, reads by unit,
and the GCJ-02 conversion some Chinese tile providers need.

**Storage.** One GeoJSON geometry per unit in `unit_boundary` (`grid.org.models.UnitBoundary`),
`[lng, lat]` order as GeoJSON says, in WGS-84 (CGCS2000 differs from it by centimetres, far below
what a grid outline means). An imported grid's outline (`org_unit.boundary`, from the org import)
counts when no `unit_boundary` row overrides it (`geometry_of`, `many`).

**The demo tiling** (`demo_tiling`): Xiangyang's outline (a hand-drawn 27-point polygon of the
real extent, about 31.2-32.6 N, 110.8-113.1 E) is cut level by level into nested Voronoi cells
(`shapely.voronoi_polygons`, clipped to the parent), so every unit's polygon lies inside its
parent's and the children of a unit tile it without gaps. Counties get hand-placed seeds (several
per large county, merged), so 襄州区 wraps the urban core and 保康县 takes the mountainous west as
on a real map; below them the seeds are spread inside the parent by best-candidate sampling
(even-sized cells), deterministic per unit code. The seed chain (襄城区 / 真武山街道 / 檀溪社区 /
第十五网格) has SEED_POINT as a seed from the township down (the county's seed is just south of it), so the seed story's address lies in
第十五网格. Work is done in a plane scaled by cos(latitude), so cells are round on the ground,
not stretched east-west. Each unit's point (`lat`/`lng`) becomes its seed, inside its polygon.

**GCJ-02** (`wgs84_to_gcj02`, `gcj02_to_wgs84`, `to_gcj02`): the published "Mars coordinates"
offset (Krasovsky 1940 ellipsoid constants), used by AutoNavi/Tencent tiles; 天地图 and a city's
own CGCS2000 tile server need none. Outside China the offset is zero, as the providers do it.
"""
from __future__ import annotations

import json
import math
from collections.abc import Iterable

LAT0 = 31.9  # the plane's reference latitude (Xiangyang's middle)
KX = math.cos(math.radians(LAT0))  # degrees of longitude → ground-true plane units
SEED_POINT = (32.0213, 112.1432)  # 南山家属院, 檀溪社区 (the seed story's report), lat/lng

# Xiangyang's outline, (lng, lat), clockwise from 老河口's west: a plausible simplification of
# the real border, 110.8-113.1 E, 31.2-32.6 N.
CITY_OUTLINE = [
    (111.55, 32.45), (111.70, 32.60), (111.90, 32.52), (112.10, 32.48), (112.35, 32.42),
    (112.55, 32.38), (112.75, 32.42), (112.95, 32.38), (113.10, 32.22), (113.05, 32.00),
    (112.90, 31.82), (112.70, 31.70), (112.55, 31.62), (112.50, 31.42), (112.35, 31.35),
    (112.05, 31.38), (111.85, 31.22), (111.60, 31.30), (111.40, 31.40), (111.15, 31.48),
    (110.90, 31.60), (110.80, 31.78), (110.88, 31.98), (111.05, 32.10), (111.20, 32.18),
    (111.30, 32.32), (111.45, 32.38),
]

# Hand-placed county seeds (lat, lng), by 6-digit county code: several seeds make one county.
COUNTY_SEEDS: dict[str, list[tuple[float, float]]] = {
    "420602": [(32.010, 112.120), (32.013, 112.150), (31.94, 112.05), (31.88, 111.96)],  # 襄城区
    "420606": [(32.050, 112.120), (32.07, 112.03), (32.12, 111.95), (32.18, 111.88)],  # 樊城区
    "420607": [(32.14, 112.26), (32.25, 112.20), (32.36, 112.34), (32.22, 112.50), (32.40, 112.05),
               (32.10, 112.40)],  # 襄州区
    "420624": [(31.774, 111.839), (31.45, 111.75), (31.60, 111.60), (31.86, 111.70)],  # 南漳县
    "420625": [(32.263, 111.653), (32.15, 111.35), (32.08, 111.55)],  # 谷城县
    "420626": [(31.878, 111.262), (31.65, 111.10), (32.00, 111.05), (31.70, 111.35)],  # 保康县
    "420682": [(32.386, 111.676), (32.50, 111.74), (32.38, 111.86)],  # 老河口市
    "420683": [(32.129, 112.772), (31.95, 112.85), (32.30, 112.90), (32.10, 113.00), (32.30, 112.65)],  # 枣阳市
    "420684": [(31.720, 112.257), (31.50, 112.35), (31.80, 112.45), (31.55, 112.10)],  # 宜城市
    "420671": [(32.105, 112.090), (32.14, 112.15)],  # 襄阳高新技术产业开发区
    "420672": [(32.045, 112.245), (32.00, 112.30)],  # 襄阳经济技术开发区
    "420673": [(32.045, 112.185)],  # 鱼梁洲经济开发区
}
TERRITORIAL = ("city", "county", "township", "village", "grid")  # grid.org.models.LEVELS: units with an area
CANDIDATES = 12  # best-candidate sampling: candidates tried per seed


# ---- the plane --------------------------------------------------------------------------------
def _to_plane(lat: float, lng: float) -> tuple[float, float]:
    return (lng * KX, lat)


def _geom_from_plane(g):
    import shapely

    return shapely.transform(g, lambda xy: xy / [KX, 1.0])


def _geojson(g) -> dict:
    """A GeoJSON Polygon/MultiPolygon with 6 decimals (about 0.1 m)."""
    import numpy as np

    def rings(p) -> list:
        return [np.round(np.asarray(r.coords)[:, :2], 6).tolist() for r in (p.exterior, *p.interiors)]

    if g.geom_type == "Polygon":
        return {"type": "Polygon", "coordinates": rings(g)}
    return {"type": "MultiPolygon", "coordinates": [rings(p) for p in g.geoms]}


def _covers(gj: dict, lat: float, lng: float) -> bool:
    import shapely

    polys = [gj["coordinates"]] if gj["type"] == "Polygon" else gj["coordinates"]
    return any(bool(shapely.intersects_xy(shapely.polygons(p[0], holes=p[1:] or None), lng, lat)) for p in polys)


# ---- tessellation -----------------------------------------------------------------------------
def _spread(poly, n: int, fixed: list[tuple[float, float] | None], rng) -> list[tuple[float, float]]:
    """n seeds inside `poly` (plane coordinates): the fixed ones where given, the others by
    best-candidate sampling (each the candidate farthest from the seeds chosen so far)."""
    import numpy as np
    import shapely

    inner = poly.buffer(-0.15 * math.sqrt(poly.area / max(n, 1)))  # keep seeds off the edges
    if inner.is_empty or inner.area < poly.area * 0.2:
        inner = poly
    poly = inner
    minx, miny, maxx, maxy = poly.bounds
    want = max(n * CANDIDATES, 16)
    ratio = max(poly.area / max((maxx - minx) * (maxy - miny), 1e-18), 0.02)
    pool = np.empty((0, 2))
    while len(pool) < want:
        m = int(want / ratio * 1.3) + 16
        xs, ys = rng.uniform(minx, maxx, m), rng.uniform(miny, maxy, m)
        inside = shapely.contains_xy(poly, xs, ys)
        pool = np.vstack([pool, np.column_stack([xs[inside], ys[inside]])])
    chosen = [p for p in fixed if p is not None]
    out: list[tuple[float, float]] = []
    k = 0
    for f in fixed:
        if f is not None:
            out.append(f)
            continue
        cand = pool[k:k + CANDIDATES]
        k += CANDIDATES
        if chosen:
            d = ((cand[:, None, :] - np.array(chosen)[None, :, :]) ** 2).sum(axis=2).min(axis=1)
            best = cand[int(d.argmax())]
        else:
            best = cand[0]
        p = (float(best[0]), float(best[1]))
        chosen.append(p)
        out.append(p)
    return out


def _cells(parent, seeds: list[list[tuple[float, float]]]):
    """One geometry per kid (each kid has one or more seeds): Voronoi cells of all seeds clipped
    to `parent` and merged per kid; a piece cut off from its seed (a concave parent) goes to the
    neighbour it shares the longest edge with."""
    import shapely
    from shapely.geometry import Point
    from shapely.ops import unary_union

    if len(seeds) == 1:
        return [parent]
    flat = [(i, p) for i, ps in enumerate(seeds) for p in ps]
    import numpy as np

    cells = shapely.voronoi_polygons(shapely.multipoints(np.array([p for _i, p in flat])), extend_to=parent,
                                     ordered=True)
    clipped = shapely.intersection(list(cells.geoms), parent)
    parts: list[list] = [[] for _ in seeds]
    for (i, _p), g in zip(flat, clipped, strict=True):
        if not g.is_empty:
            parts[i].append(g)
    merged = [unary_union(ps) if ps else None for ps in parts]
    orphans = []
    for i, g in enumerate(merged):
        if g is not None and g.geom_type != "Polygon":
            pieces = [q for q in getattr(g, "geoms", [g]) if q.geom_type == "Polygon"]
            keep = [q for q in pieces if any(q.covers(Point(p)) for p in seeds[i])] \
                or [max(pieces, key=lambda q: q.area)]
            merged[i] = unary_union(keep)
            orphans += [q for q in pieces if not any(q is k for k in keep)]
    for q in orphans:
        best, edge = None, 0.0
        for j, g in enumerate(merged):
            if g is None:
                continue
            shared = g.boundary.intersection(q.boundary).length
            if shared > edge:
                best, edge = j, shared
        if best is not None:
            merged[best] = unary_union([merged[best], q])
    return merged


def _rng(code: str):
    import numpy as np

    return np.random.default_rng(int.from_bytes(code.encode(), "big") % (2**61 - 1))


def demo_tiling(units: Iterable[dict], seed_chain: Iterable[str] = ()) -> dict[str, tuple[dict, float, float]]:
    """{code: (GeoJSON geometry, lat, lng)} for unit rows (`code`, `parent_code`, `level`; the
    demo's counties by their 6-digit prefix). Codes in `seed_chain` hold SEED_POINT. The whole
    full city (12,652 units) takes a few seconds (bench.routing_bench measures it)."""
    from shapely.geometry import Point, Polygon, shape

    rows = [u for u in units if u["level"] in TERRITORIAL]  # departments (functional units) have no area
    kids: dict[str | None, list[dict]] = {}
    for u in rows:
        kids.setdefault(u["parent_code"], []).append(u)
    chain = set(seed_chain)
    seed_xy = _to_plane(*SEED_POINT)
    outline = Polygon([_to_plane(lat, lng) for lng, lat in CITY_OUTLINE])
    out: dict[str, tuple[dict, float, float]] = {}
    roots = kids.get(None, [])
    # the city (or cities): the outline; its point is kept
    stack = []
    for r in roots:
        out[r["code"]] = (_geojson(_geom_from_plane(outline)), r.get("lat"), r.get("lng"))
        stack.append((r["code"], outline))
    while stack:
        code, geom = stack.pop()
        children = sorted(kids.get(code, []), key=lambda u: u["code"])
        if not children:
            continue
        rng = _rng(code)
        seeds: list[list[tuple[float, float]]] = []
        if children[0]["level"] == "county":
            for c in children:
                pts = COUNTY_SEEDS.get(c["code"][:6])
                if pts is None:
                    pts = [(c["lat"], c["lng"])] if c.get("lat") is not None else []
                pts = [_to_plane(la, ln) for la, ln in pts]
                seeds.append([p for p in pts if geom.contains(Point(p))])
            missing = [i for i, s in enumerate(seeds) if not s]
            if missing:
                extra = _spread(geom, len(seeds), [s[0] if s else None for s in seeds], rng)
                for i in missing:
                    seeds[i] = [extra[i]]
        else:
            fixed = [seed_xy if c["code"] in chain and geom.contains(Point(seed_xy)) else None for c in children]
            seeds = [[p] for p in _spread(geom, len(children), fixed, rng)]
        for c, g, ss in zip(children, _cells(geom, seeds), seeds, strict=True):
            if g is None or g.is_empty:
                continue
            gj = _geojson(_geom_from_plane(g))
            at = (round(ss[0][1], 6), round(ss[0][0] / KX, 6))
            if not _covers(gj, at[0], at[1]):
                rp = shape(gj).representative_point()
                at = (round(rp.y, 6), round(rp.x, 6))
            out[c["code"]] = (gj, at[0], at[1])
            stack.append((c["code"], g))
    return out


# ---- reads ------------------------------------------------------------------------------------
def geometry_of(s, unit_code: str) -> dict | None:
    """A unit's boundary (GeoJSON dict) or None: the `unit_boundary` row, else the imported outline."""
    from sqlalchemy import select

    from grid.org.models import OrgUnit, UnitBoundary

    raw = s.scalar(select(UnitBoundary.geojson).where(UnitBoundary.unit_code == unit_code))
    if raw is None:
        raw = s.scalar(select(OrgUnit.boundary).where(OrgUnit.code == unit_code))
    return _load(raw)


def many(s, codes: Iterable[str]) -> dict[str, dict]:
    """Boundaries of several units by primary key (missing ones are left out)."""
    from sqlalchemy import select

    from grid.org.models import OrgUnit, UnitBoundary

    codes = list(dict.fromkeys(codes))
    out: dict[str, dict] = {}
    for i in range(0, len(codes), 500):
        part = codes[i:i + 500]
        q = (select(OrgUnit.code, UnitBoundary.geojson, OrgUnit.boundary)
             .outerjoin(UnitBoundary, UnitBoundary.unit_code == OrgUnit.code).where(OrgUnit.code.in_(part)))
        for code, a, b in s.execute(q):
            g = _load(a or b)
            if g is not None:
                out[code] = g
    return out


def _load(raw: str | None) -> dict | None:
    if not raw:
        return None
    try:
        g = json.loads(raw)
    except ValueError:
        return None
    return g if isinstance(g, dict) and g.get("type") in ("Polygon", "MultiPolygon") else None


def contains(geometry: dict | None, lat: float, lng: float) -> bool | None:
    """Whether the point lies in the geometry (on the edge counts); None without a geometry."""
    if geometry is None:
        return None
    from shapely.geometry import Point, shape

    return bool(shape(geometry).covers(Point(lng, lat)))


M_PER_DEG_LAT = 111_195.0  # metres per degree of latitude (mean Earth radius 6,371 km)


def distance_m(geometry: dict | None, lat: float, lng: float) -> float | None:
    """Metres from the point to the geometry (0 inside or on the edge); None without a geometry.
    Measured in the plane scaled by cos(latitude) around the point: exact enough for the tens to
    thousands of metres a "the pin is outside the grid" check cares about."""
    if geometry is None:
        return None
    import shapely
    from shapely.geometry import Point, shape

    g = shape(geometry)
    if g.covers(Point(lng, lat)):
        return 0.0
    kx = math.cos(math.radians(lat))
    plane = shapely.transform(g, lambda xy: xy * [kx, 1.0])
    return float(plane.distance(Point(lng * kx, lat))) * M_PER_DEG_LAT


def write_demo(s, units: list[dict], seed_chain: Iterable[str]) -> int:
    """Replace every boundary with the demo tiling of `units` (row dicts, whose `lat`/`lng` become
    the seed points: each unit's point inside its polygon). Returns the boundaries written."""
    from sqlalchemy import delete, insert

    from grid.org.models import UnitBoundary

    tiles = demo_tiling(units, seed_chain)
    for u in units:
        t = tiles.get(u["code"])
        if t is not None and t[1] is not None:
            u["lat"], u["lng"] = t[1], t[2]
    s.execute(delete(UnitBoundary))
    rows = [{"unit_code": c, "geojson": json.dumps(g, separators=(",", ":"))} for c, (g, _la, _ln) in tiles.items()]
    for i in range(0, len(rows), 2000):
        s.execute(insert(UnitBoundary), rows[i:i + 2000])
    return len(rows)


# ---- GCJ-02 -----------------------------------------------------------------------------------
_A = 6378245.0  # Krasovsky 1940 semi-major axis, as the GCJ-02 algorithm uses it
_EE = 0.00669342162296594323  # its first eccentricity squared


def _out_of_china(lat: float, lng: float) -> bool:
    return not (72.004 <= lng <= 137.8347 and 0.8293 <= lat <= 55.8271)


def _dlat(x: float, y: float) -> float:
    r = -100.0 + 2.0 * x + 3.0 * y + 0.2 * y * y + 0.1 * x * y + 0.2 * math.sqrt(abs(x))
    r += (20.0 * math.sin(6.0 * x * math.pi) + 20.0 * math.sin(2.0 * x * math.pi)) * 2.0 / 3.0
    r += (20.0 * math.sin(y * math.pi) + 40.0 * math.sin(y / 3.0 * math.pi)) * 2.0 / 3.0
    r += (160.0 * math.sin(y / 12.0 * math.pi) + 320 * math.sin(y * math.pi / 30.0)) * 2.0 / 3.0
    return r


def _dlng(x: float, y: float) -> float:
    r = 300.0 + x + 2.0 * y + 0.1 * x * x + 0.1 * x * y + 0.1 * math.sqrt(abs(x))
    r += (20.0 * math.sin(6.0 * x * math.pi) + 20.0 * math.sin(2.0 * x * math.pi)) * 2.0 / 3.0
    r += (20.0 * math.sin(x * math.pi) + 40.0 * math.sin(x / 3.0 * math.pi)) * 2.0 / 3.0
    r += (150.0 * math.sin(x / 12.0 * math.pi) + 300.0 * math.sin(x / 30.0 * math.pi)) * 2.0 / 3.0
    return r


def wgs84_to_gcj02(lat: float, lng: float) -> tuple[float, float]:
    """WGS-84 → GCJ-02 (lat, lng): the offset AutoNavi/Tencent map tiles are drawn in (a few
    hundred metres in Xiangyang). Identity outside China."""
    if _out_of_china(lat, lng):
        return lat, lng
    dlat, dlng = _dlat(lng - 105.0, lat - 35.0), _dlng(lng - 105.0, lat - 35.0)
    rad = lat / 180.0 * math.pi
    magic = 1 - _EE * math.sin(rad) ** 2
    sq = math.sqrt(magic)
    dlat = (dlat * 180.0) / ((_A * (1 - _EE)) / (magic * sq) * math.pi)
    dlng = (dlng * 180.0) / (_A / sq * math.cos(rad) * math.pi)
    return lat + dlat, lng + dlng


def gcj02_to_wgs84(lat: float, lng: float) -> tuple[float, float]:
    """GCJ-02 → WGS-84 by fixed-point iteration (the forward offset is smooth): better than 1 mm
    after a few rounds, unlike the one-step inverse often copied (about 1-2 m off)."""
    la, ln = lat, lng
    for _ in range(30):
        g_la, g_ln = wgs84_to_gcj02(la, ln)
        d_la, d_ln = g_la - lat, g_ln - lng
        la, ln = la - d_la, ln - d_ln
        if abs(d_la) < 1e-10 and abs(d_ln) < 1e-10:
            break
    return la, ln


def to_gcj02(geometry: dict) -> dict:
    """A GeoJSON geometry ([lng, lat] positions) with every position moved to GCJ-02."""

    def move(c):
        if c and isinstance(c[0], (int, float)):
            la, ln = wgs84_to_gcj02(c[1], c[0])
            return [round(ln, 7), round(la, 7)]
        return [move(x) for x in c]

    return {**geometry, "coordinates": move(geometry["coordinates"])}
