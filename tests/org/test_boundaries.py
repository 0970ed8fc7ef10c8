"""Demo boundaries: nested Voronoi polygons that tile Xiangyang, the seed chain where it is, and the
GCJ-02 conversion checked against published values."""
from __future__ import annotations

from collections import defaultdict
from datetime import UTC, datetime

import pytest
import shapely
from shapely.geometry import Point, shape

from grid.cases import routing
from grid.org import boundaries, demo
from grid.org.models import OrgUnit

NOW = datetime(2026, 1, 5, 8, 0, tzinfo=UTC)
CHAIN = (demo.SEED_COUNTY, demo.SEED_TOWNSHIP, demo.SEED_VILLAGE, demo.SEED_GRID)


def _tiles(size: str):
    b = demo.build(size, 42, NOW)
    units = [u for u in b.units if u["level"] in boundaries.TERRITORIAL]  # not departments
    return units, boundaries.demo_tiling(b.units, CHAIN)


def _check_nested(units, tiles) -> None:
    kids = defaultdict(list)
    for u in units:
        kids[u["parent_code"]].append(u["code"])
    assert set(tiles) == {u["code"] for u in units}, "every unit has a polygon"
    for parent, codes in kids.items():
        if parent is None:
            continue
        p = shape(tiles[parent][0])
        union = shapely.union_all([shape(tiles[c][0]) for c in codes])
        # children tile the parent: no gap, no spill (up to the 6-decimal rounding)
        assert p.symmetric_difference(union).area <= p.area * 1e-3, parent
        for a in codes:
            assert p.buffer(1e-5).covers(shape(tiles[a][0])), (parent, a)
    for code, (g, lat, lng) in tiles.items():
        assert g["type"] == "Polygon" and shape(g).is_valid, code
        assert shape(g).covers(Point(lng, lat)), f"{code}'s point lies in its polygon"


def test_small_city_is_nested_and_holds_the_seed_point():
    units, tiles = _tiles("small")
    _check_nested(units, tiles)
    seed = Point(boundaries.SEED_POINT[1], boundaries.SEED_POINT[0])
    for code in CHAIN:
        assert shape(tiles[code][0]).contains(seed), code
    # siblings of the seed grid do not hold it
    assert not shape(tiles[demo.SEED_VILLAGE + "001"][0]).contains(seed)


@pytest.mark.slow
def test_full_city_tiles_xiangyang():
    units, tiles = _tiles("full")
    _check_nested(units, tiles)
    city = shape(tiles[demo.CITY_CODE][0])
    w, s, e, n = city.bounds
    assert 110.7 <= w <= 110.9 and 113.0 <= e <= 113.2 and 31.1 <= s <= 31.3 and 32.5 <= n <= 32.7
    counties = {u["code"]: u["name"] for u in units if u["level"] == "county"}
    assert len(counties) == 12
    # the big rural counties are big, the island district small, as on the map
    area = {counties[c]: shape(tiles[c][0]).area for c in counties}
    assert area["保康县"] > 10 * area["鱼梁洲经济开发区"] and area["枣阳市"] > area["襄城区"]
    assert {counties[c] for c in counties if shape(tiles[c][0]).contains(Point(111.26, 31.88))} == {"保康县"}
    r = routing.Router([(c, g) for c, (g, _a, _b) in tiles.items() if len(c) == 15])
    assert r.route(*boundaries.SEED_POINT) == demo.SEED_GRID


def test_demo_generate_stores_boundaries_and_routes(svc):
    """The demo city (built by the fixture) has an outline per unit, and a point routes to its grid."""
    with svc.db.read() as s:
        grid = boundaries.geometry_of(s, demo.SEED_GRID)
        unit = s.get(OrgUnit, demo.SEED_VILLAGE)
        assert grid is not None and boundaries.contains(grid, *boundaries.SEED_POINT)
        assert boundaries.contains(boundaries.geometry_of(s, unit.code), unit.lat, unit.lng)
        assert set(boundaries.many(s, [demo.SEED_GRID, demo.SEED_VILLAGE, "nope"])) == {demo.SEED_GRID,
                                                                                      demo.SEED_VILLAGE}
    routing._CACHE.clear()
    assert routing.route(svc, *boundaries.SEED_POINT) == demo.SEED_GRID
    assert routing.route(svc, 40.0, 116.4) is None  # Beijing is not in Xiangyang


def test_imported_grid_outline_routes_without_a_boundary_row(svc):
    """A grid whose outline came with the org import (`org_unit.boundary`) is routed too."""
    import json

    from sqlalchemy import delete

    from grid.org.models import UnitBoundary

    square = {"type": "Polygon", "coordinates": [[[112.0, 32.5], [112.01, 32.5], [112.01, 32.51], [112.0, 32.51],
                                                  [112.0, 32.5]]]}
    with svc.db.write() as s:
        s.execute(delete(UnitBoundary).where(UnitBoundary.unit_code == demo.SEED_GRID))
        s.get(OrgUnit, demo.SEED_GRID).boundary = json.dumps(square)
    routing._CACHE.clear()
    assert routing.route(svc, 32.505, 112.005) == demo.SEED_GRID
    with svc.db.read() as s:
        assert boundaries.geometry_of(s, demo.SEED_GRID) == square
    routing._CACHE.clear()


# ---- GCJ-02 -----------------------------------------------------------------------------------
# wandergis/coordtransform (test/app.js), the widely copied reference implementation:
#   wgs84togcj02(116.404, 39.915) -> [116.41024449916938, 39.91640428150164]
#   gcj02towgs84(116.404, 39.915) -> [116.39775550083061, 39.91359571849836]  (its one-step inverse)
def test_gcj02_matches_published_values():
    lat, lng = boundaries.wgs84_to_gcj02(39.915, 116.404)
    assert lng == pytest.approx(116.41024449916938, abs=1e-12) and lat == pytest.approx(39.91640428150164, abs=1e-12)
    back = boundaries.gcj02_to_wgs84(39.915, 116.404)
    # the iterative inverse agrees with the published one-step inverse to a few metres ...
    assert back[1] == pytest.approx(116.39775550083061, abs=5e-5) and back[0] == pytest.approx(39.91359571849836,
                                                                                                 abs=5e-5)
    # ... and, unlike it, round-trips to well under a millimetre
    again = boundaries.wgs84_to_gcj02(*back)
    assert again == pytest.approx((39.915, 116.404), abs=1e-8)


def test_gcj02_offset_in_xiangyang_and_none_abroad():
    lat, lng = boundaries.wgs84_to_gcj02(*boundaries.SEED_POINT)
    dy, dx = (lat - boundaries.SEED_POINT[0]) * 111_000, (lng - boundaries.SEED_POINT[1]) * 94_000
    assert 200 < (dx * dx + dy * dy) ** 0.5 < 900, "a few hundred metres, as the offset is in central China"
    assert boundaries.wgs84_to_gcj02(48.8566, 2.3522) == (48.8566, 2.3522)
    g = boundaries.to_gcj02({"type": "Polygon", "coordinates": [[[112.1, 32.0], [112.2, 32.0], [112.2, 32.1],
                                                                 [112.1, 32.0]]]})
    assert g["type"] == "Polygon" and g["coordinates"][0][0] != [112.1, 32.0]
    la, ln = boundaries.wgs84_to_gcj02(32.0, 112.1)
    assert g["coordinates"][0][0] == [round(ln, 7), round(la, 7)]
