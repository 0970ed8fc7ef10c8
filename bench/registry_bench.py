"""Registry benchmark: import a million residents, re-import them, and open "my grid" for a grid of
500 households.

    .venv/bin/python -m bench.registry_bench [--rows 1000000] [--households 500] [--pg URL] [--tracemalloc]

Steps, each in a fresh child process so that its peak memory (ru_maxrss) is its own:
  setup     a scratch SQLite database (or PostgreSQL with --pg): migrate, deploy, the full demo city
            (about 9,700 grids, no households)
  generate  a CSV of N synthetic residents spread over every grid (valid, unique ID numbers)
  import    `grid.registry.writer.import_file` on it: rows/s and peak memory (both passes, one transaction)
  reimport  the same file again: every row found unchanged, nothing written
  mygrid    a fresh grid with 500 households (and 20 flagged residents with running visit schedules):
            `grid.registry.pages.grid_overview` and the whole /registry/grid/<code> page through Flask, median of 20
With --tracemalloc the import runs once more on the first 100,000 rows under tracemalloc, for the peak
of Python allocations (tracemalloc slows Python down, so the timed run goes without it).
"""
from __future__ import annotations

import argparse
import csv
import json
import multiprocessing as mp
import os
import platform
import resource
import shutil
import statistics
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

from tests.pg_admin import create_database, drop_database

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
RESULTS = HERE / "results"
MY_GRID = "420602003005099"  # a new grid in 檀溪社区 for the "my grid" measurement


def _peak_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux: KiB


def _child(fn, *args) -> dict:
    """Run fn(*args) in a fresh process; returns its dict plus its peak RSS."""
    ctx = mp.get_context("spawn")
    q = ctx.Queue()
    p = ctx.Process(target=_wrap, args=(q, fn, args))
    p.start()
    out = q.get()
    p.join()
    if "error" in out:
        raise RuntimeError(out["error"])
    return out


def _wrap(q, fn, args) -> None:
    try:
        out = fn(*args)
        out["peak_rss_mb"] = round(_peak_mb(), 1)
        q.put(out)
    except BaseException as e:  # noqa: BLE001
        import traceback

        q.put({"error": f"{type(e).__name__}: {e}\n{traceback.format_exc()}"})


def _services(url: str):
    from grid.config import Settings
    from grid.registry import visits
    from grid.services import Services

    svc = Services.build(Settings(database_url=url, workflows=ROOT / "workflows", forms=ROOT / "forms"))
    visits.install(svc)
    return svc


# ---- steps (child processes) --------------------------------------------------------------------
def step_setup(url: str) -> dict:
    from engine.deploy import Bundle, deploy
    from engine.migrate import upgrade
    from grid.org import demo

    t0 = time.perf_counter()
    svc = _services(url)
    upgrade(svc.db)
    with svc.db.write() as s:
        deploy(s, Bundle.from_dirs(ROOT / "workflows", ROOT / "forms"), actor="bench")
    counts = demo.generate(svc.db, "full")
    return {"seconds": round(time.perf_counter() - t0, 2), "grids": counts["grid"], "staff": counts["staff"]}


def step_generate(url: str, path: str, rows: int) -> dict:
    from grid.registry import demo as registry_demo
    from grid.registry.reader import COLUMNS

    t0 = time.perf_counter()
    svc = _services(url)
    with svc.db.read() as s:
        grids = registry_demo._grids(s)
    people = registry_demo.People(datetime(2026, 1, 5).date())
    per_grid = max(1, round(rows / 2.75 / len(grids)))
    n = 0
    with open(path, "w", encoding="utf-8", newline="") as f:
        w = csv.writer(f)
        w.writerow([label for _k, label in COLUMNS])
        rounds = 0
        while n < rows:
            for g in grids:
                if rounds:  # a second round over the grids: new addresses
                    g = registry_demo.GridInfo(g.code, g.seq + 50 * rounds, g.village, g.village_kind, g.township,
                                               g.county6, g.lat, g.lng)
                for b, hhs in registry_demo.grid_rows(g, per_grid, 42 + rounds, people):
                    for door, members in hhs:
                        for p in members:
                            w.writerow([g.code, b["address"], b["lat"], b["lng"], door, p["name"], p["id_number"],
                                        p["phone"] or "", p["birth_date"].isoformat(), "男" if p["sex"] == "M" else "女",
                                        {"head": "户主", "spouse": "配偶", "child": "子女", "parent": "父母"}[p["relation"]],
                                        "在住"])
                            n += 1
                            if n >= rows:
                                break
                        if n >= rows:
                            break
                    if n >= rows:
                        break
                if n >= rows:
                    break
            rounds += 1
    return {"rows": n, "seconds": round(time.perf_counter() - t0, 2), "bytes": os.path.getsize(path)}


def step_import(url: str, path: str, trace: bool = False) -> dict:
    from grid.registry import writer

    svc = _services(url)
    if trace:
        import tracemalloc

        tracemalloc.start()
    last = [0.0]

    def progress(done, total, note=""):
        now = time.perf_counter()
        if now - last[0] > 10:
            last[0] = now
            print(f"  import: {done:,}/{total:,} {note}", file=sys.stderr, flush=True)

    t0 = time.perf_counter()
    res = writer.import_file(svc, path, actor="bench", progress=progress)
    seconds = time.perf_counter() - t0
    out = {"ok": res.ok, "rows": res.rows, "seconds": round(seconds, 2), "rows_per_s": round(res.rows / seconds),
           "counts": res.counts, "errors": [str(e) for e in res.errors[:5]]}
    if trace:
        import tracemalloc

        out["tracemalloc_peak_mb"] = round(tracemalloc.get_traced_memory()[1] / 2**20, 1)
        tracemalloc.stop()
    with svc.db.read() as s:
        from sqlalchemy import func, select

        from grid.registry.models import Resident

        out["residents_in_db"] = s.scalar(select(func.count()).select_from(Resident))
    return out


def step_mygrid(url: str, households: int, flags: int, runs: int) -> dict:
    from sqlalchemy import select

    from engine import clock
    from grid.org import demo
    from grid.org import service as org
    from grid.registry import demo as registry_demo
    from grid.registry import pages as registry_pages
    from grid.registry import visits
    from grid.registry.models import Resident
    from web import create_app

    svc = _services(url)
    with svc.db.write() as s:
        if org.get_unit(s, MY_GRID) is None:
            org.add_unit(s, MY_GRID, "第九十九网格", "grid", "网格", demo.SEED_VILLAGE, 32.03, 112.14)
        worker = org.staff_by_username(s, demo.SEED_GRID_WORKER[0])
        if not org.holds_role(s, worker.id, MY_GRID, "grid_worker"):
            org.assign_role(s, worker.id, MY_GRID, "grid_worker")
        gw = worker.id
    t0 = time.perf_counter()
    residents = registry_demo.fill_grid(svc, MY_GRID, households)
    fill_s = time.perf_counter() - t0
    with svc.db.read() as s:
        ids = list(s.scalars(select(Resident.id).where(Resident.grid_code == MY_GRID).order_by(Resident.id)
                             .limit(flags * 7)))[::7]
    cats = ["elderly_alone", "community_correction", "disabled", "released", "mental_disorder"]
    t1 = time.perf_counter()
    for i, rid in enumerate(ids):
        visits.flag(svc, gw, rid, cats[i % len(cats)], ("high", "medium", "low")[i % 3])
    flag_s = time.perf_counter() - t1

    service = []
    for _ in range(runs):
        t = time.perf_counter()
        view = registry_pages.grid_overview(svc, gw, MY_GRID)
        service.append(time.perf_counter() - t)
    svc.settings.secret_key = "bench"
    app = create_app(svc.settings, services=svc, TESTING=True)
    client = app.test_client()
    import re

    page = client.get("/login").get_data(as_text=True)
    tok = re.search(r'name="csrf_token" value="([^"]+)"', page).group(1)
    from grid.org.passwords import DEMO_PASSWORD

    r = client.post("/login", data={"username": demo.SEED_GRID_WORKER[0], "password": DEMO_PASSWORD,
                                    "csrf_token": tok})
    assert r.status_code == 302, r.status_code
    pages, size = [], 0
    for _ in range(runs):
        t = time.perf_counter()
        r = client.get(f"/registry/grid/{MY_GRID}")
        pages.append(time.perf_counter() - t)
        assert r.status_code == 200
        size = len(r.data)
    _ = clock
    return {"households": view.counts["households"], "residents": residents, "buildings": view.counts["buildings"],
            "flags": len(ids), "due_visits": view.counts["due_visits"], "fill_seconds": round(fill_s, 2),
            "flag_ms_each": round(1000 * flag_s / max(len(ids), 1), 1),
            "service_median_ms": round(1000 * statistics.median(service), 1),
            "service_p95_ms": round(1000 * sorted(service)[int(0.95 * (len(service) - 1))], 1),
            "page_median_ms": round(1000 * statistics.median(pages), 1),
            "page_p95_ms": round(1000 * sorted(pages)[int(0.95 * (len(pages) - 1))], 1),
            "page_kb": round(size / 1024)}


# ---- main -----------------------------------------------------------------------------------------
def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m bench.registry_bench", description=__doc__.split("\n\n")[0])
    ap.add_argument("--rows", type=int, default=1_000_000, help="residents to import")
    ap.add_argument("--households", type=int, default=500, help="households in the 'my grid' grid")
    ap.add_argument("--flags", type=int, default=20, help="flagged residents in the 'my grid' grid")
    ap.add_argument("--runs", type=int, default=20, help="repetitions of the 'my grid' measurement")
    ap.add_argument("--pg", help="run on this PostgreSQL server (a scratch database is created) instead of SQLite")
    ap.add_argument("--tracemalloc", action="store_true", help="also measure Python allocations on 100k rows")
    ap.add_argument("--keep", action="store_true", help="keep the scratch directory (database and CSV)")
    ap.add_argument("--no-save", action="store_true", help="do not write bench/results/*.json")
    args = ap.parse_args(argv)

    tmp = tempfile.mkdtemp(prefix="gridflow_registry_bench_")
    pg_name = None
    if args.pg:
        pg_name = f"gridflow_registry_bench_{os.getpid()}"
        url = create_database(args.pg, pg_name)
    else:
        url = f"sqlite:///{tmp}/registry.sqlite"
    csv_path = f"{tmp}/residents.csv"
    report: dict = {"when": datetime.now(UTC).isoformat(timespec="seconds"), "database": "postgresql" if args.pg
                    else "sqlite", "python": platform.python_version(), "machine": platform.machine(),
                    "cpus": os.cpu_count()}
    try:
        print(f"setup: {url}", flush=True)
        report["setup"] = _child(step_setup, url)
        print(f"  {report['setup']}", flush=True)
        print(f"generate {args.rows:,} rows", flush=True)
        report["generate"] = _child(step_generate, url, csv_path, args.rows)
        print(f"  {report['generate']}", flush=True)
        print("import", flush=True)
        report["import"] = _child(step_import, url, csv_path)
        print(f"  {report['import']}", flush=True)
        print("re-import (idempotent)", flush=True)
        report["reimport"] = _child(step_import, url, csv_path)
        print(f"  {report['reimport']}", flush=True)
        if args.tracemalloc:
            small = f"{tmp}/first100k.csv"
            with open(csv_path, encoding="utf-8") as src, open(small, "w", encoding="utf-8") as dst:
                for i, line in enumerate(src):
                    if i > 100_000:
                        break
                    dst.write(line)
            print("tracemalloc: re-import of the first 100k rows", flush=True)
            report["tracemalloc_100k"] = _child(step_import, url, small, True)
            print(f"  {report['tracemalloc_100k']}", flush=True)
        print(f"my grid: {args.households} households", flush=True)
        report["my_grid"] = _child(step_mygrid, url, args.households, args.flags, args.runs)
        print(f"  {report['my_grid']}", flush=True)
    finally:
        if pg_name:
            drop_database(args.pg, pg_name)
        if args.keep:
            print(f"kept {tmp}")
        else:
            shutil.rmtree(tmp, ignore_errors=True)
    imp, mg = report["import"], report["my_grid"]
    print(f"\nimport: {imp['rows']:,} rows in {imp['seconds']} s = {imp['rows_per_s']:,} rows/s, "
          f"peak RSS {imp['peak_rss_mb']} MB; re-import {report['reimport']['rows_per_s']:,} rows/s; "
          f"my grid ({mg['households']} households, {mg['residents']} residents): service "
          f"{mg['service_median_ms']} ms, page {mg['page_median_ms']} ms (median)")
    if not args.no_save:
        RESULTS.mkdir(exist_ok=True)
        path = RESULTS / f"registry-{report['database']}-{datetime.now(UTC).date().isoformat()}.json"
        path.write_text(json.dumps(report, indent=2, ensure_ascii=False) + "\n")
        print(f"wrote {path.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
