"""Point-in-polygon routing against the full demo city's grid polygons (~9,800 nested Voronoi
cells, grid.org.boundaries), and what the boundaries add to the demo build.

    .venv/bin/python -m bench.routing_bench [--points 10000] [--no-save]

1. The tiling: `boundaries.demo_tiling` over the full city (12,652 units), then the same rows
   written to a scratch SQLite `unit_boundary` table: the demo build's share for boundaries
   (bench.demo_bench times the whole build, target < 60 s).
2. The index: `routing.Router` (shapely STRtree) over the grid polygons.
3. Routing --points random points inside Xiangyang's outline, one by one (`route`, what an
   Open311/API/hotline intake does) and in one batch (`route_many`); both must agree, and every
   point inside the outline lands in exactly one grid. Target: under 1 ms per point one by one.
Results: bench/results/routing-<date>.json (with the load average).
"""
from __future__ import annotations

import argparse
import json
import os
import random
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

from grid.cases import routing
from grid.org import boundaries, demo

ROOT = Path(__file__).resolve().parent.parent
TARGET_MS = 1.0


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--points", type=int, default=10_000)
    ap.add_argument("--no-save", action="store_true")
    a = ap.parse_args()
    load = os.getloadavg()
    b = demo.build("full", 42, datetime.now(UTC))
    chain = (demo.SEED_COUNTY, demo.SEED_TOWNSHIP, demo.SEED_VILLAGE, demo.SEED_GRID)

    t0 = time.perf_counter()
    tiles = boundaries.demo_tiling(b.units, chain)
    tiling = time.perf_counter() - t0

    from sqlalchemy import create_engine, insert

    from grid.org.models import UnitBoundary

    tmp = tempfile.mkdtemp(prefix="gridflow_routing_bench_")
    eng = create_engine(f"sqlite:///{tmp}/b.sqlite")
    UnitBoundary.__table__.create(eng)
    t0 = time.perf_counter()
    rows = [{"unit_code": c, "geojson": json.dumps(g, separators=(",", ":"))} for c, (g, _la, _ln) in tiles.items()]
    with eng.begin() as c:
        for i in range(0, len(rows), 2000):
            c.execute(insert(UnitBoundary), rows[i:i + 2000])
    write = time.perf_counter() - t0
    eng.dispose()

    levels = {u["code"]: u["level"] for u in b.units}
    grids = [(c, g) for c, (g, _la, _ln) in tiles.items() if levels[c] == "grid"]
    t0 = time.perf_counter()
    r = routing.Router(grids)
    build = time.perf_counter() - t0

    from shapely.geometry import Point, shape

    outline = shape(tiles[demo.CITY_CODE][0])
    w, s, e, n = outline.bounds
    rnd = random.Random(1)
    pts: list[tuple[float, float]] = []
    while len(pts) < a.points:
        la, ln = rnd.uniform(s, n), rnd.uniform(w, e)
        if outline.contains(Point(ln, la)):
            pts.append((la, ln))
    t0 = time.perf_counter()
    one = [r.route(la, ln) for la, ln in pts]
    single = time.perf_counter() - t0
    t0 = time.perf_counter()
    many = r.route_many(pts)
    batch = time.perf_counter() - t0
    assert one == many, "route and route_many agree"
    missed = sum(1 for x in one if x is None)
    assert missed == 0, f"{missed} points inside the city routed to no grid"
    assert r.route(*boundaries.SEED_POINT) == demo.SEED_GRID
    ms = single / len(pts) * 1e3
    res = {
        "grids": len(grids), "units": len(tiles), "points": len(pts),
        "tiling_s": round(tiling, 2), "write_sqlite_s": round(write, 2), "index_build_ms": round(build * 1e3, 1),
        "one_by_one_points_per_s": round(len(pts) / single), "one_by_one_ms_per_point": round(ms, 4),
        "batch_points_per_s": round(len(pts) / batch), "batch_ms_per_point": round(batch / len(pts) * 1e3, 5),
        "target_ms_per_point": TARGET_MS, "pass": ms < TARGET_MS,
        "env": {"cpus": os.cpu_count(), "load_at_start": [round(x, 2) for x in load],
                "at": datetime.now(UTC).isoformat(timespec="seconds")},
    }
    print(f"boundaries for {len(tiles):,} units: tiling {tiling:.2f} s, writing to SQLite {write:.2f} s")
    print(f"{len(grids):,} grid polygons, index built in {build * 1e3:.0f} ms")
    print(f"one by one: {res['one_by_one_points_per_s']:,} points/s ({ms:.3f} ms/point) "
          f"-> {'PASS' if res['pass'] else 'MISS'} (target < {TARGET_MS} ms)")
    print(f"batch:      {res['batch_points_per_s']:,} points/s ({res['batch_ms_per_point']:.4f} ms/point)")
    if not a.no_save:
        out = ROOT / "bench" / "results" / f"routing-{datetime.now(UTC):%Y-%m-%d}.json"
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(json.dumps(res, indent=2), encoding="utf-8")
        print(f"saved {out.relative_to(ROOT)}")
    raise SystemExit(0 if res["pass"] else 1)


if __name__ == "__main__":
    main()
