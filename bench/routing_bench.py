"""Route 10,000 random points against the full demo city's grid polygons (~9,800): points/s.

    .venv/bin/python bench/routing_bench.py
"""
from __future__ import annotations

import random
import time
from datetime import UTC, datetime

from grid.cases import routing
from grid.org import demo


def main() -> None:
    b = demo.build("full", 42, datetime.now(UTC))
    units = [(u["code"], u["parent_code"], u["lat"], u["lng"]) for u in b.units]
    boxes = routing.demo_boxes(units, (demo.SEED_COUNTY, demo.SEED_TOWNSHIP, demo.SEED_VILLAGE, demo.SEED_GRID))
    grids = [(u["code"], routing.rectangle(*boxes[u["code"]])) for u in b.units if u["level"] == "grid"]
    t0 = time.perf_counter()
    r = routing.Router(grids)
    build = time.perf_counter() - t0
    s, w, n, e = routing.EXTENT
    rnd = random.Random(1)
    pts = [(rnd.uniform(s, n), rnd.uniform(w, e)) for _ in range(10_000)]
    t0 = time.perf_counter()
    one = [r.route(la, ln) for la, ln in pts]
    single = time.perf_counter() - t0
    t0 = time.perf_counter()
    many = r.route_many(pts)
    batch = time.perf_counter() - t0
    assert one == many and None not in one
    print(f"{len(grids)} grid polygons, index built in {build * 1e3:.0f} ms")
    print(f"one by one: {len(pts) / single:,.0f} points/s ({single / len(pts) * 1e3:.3f} ms/point)")
    print(f"batch:      {len(pts) / batch:,.0f} points/s ({batch / len(pts) * 1e3:.4f} ms/point)")


if __name__ == "__main__":
    main()
