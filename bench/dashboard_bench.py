"""Dashboard bench (issue 11): the city dashboard, a county drill-down and a ranking at two history
sizes in the same run, p50/p95 server time through the Flask test client, and the ratio between
the sizes (the target: under 2, so that the cost does not grow with history; and the city
dashboard under 200 ms p95).

    .venv/bin/python -m bench.dashboard_bench [--dialects sqlite,postgresql] [--size full|small]
        [--closed 1000000 --open 100000] [--base 10000] [--requests 15] [--days 1096] [--no-save]

What it builds, per dialect, in one scratch database: the demo city (grid.org.demo), then `--base`
cases (9 closed : 1 open), measured; then the rest up to `--closed` + `--open`, measured again.
The cases are generated straight into `indicator_rollup`, and `indicator_total` is filled with
their sums per ancestor with totals (township, county, city), day/month/year bucket, per category
and "*", as its triggers would (checked at the small scale: `rollups.rebuild(check=True)` finds no
difference); both are rewritten at each scale, one county at a time, so that memory stays bounded
(`case_late` for the late count is empty here). Each case follows one
of a few record sequences (resolved at the village, escalated once, late at the village then
resolved above, reworked, settled on the spot, duplicate, still open), and what each record adds
is computed by `grid.cases.rollup.contributions`, the function the step listener uses, so the
rows obey the same invariants as live ones (one computation per sequence and report day, reused
for every case of that day with its own grid and units). Report days are spread uniformly over
`--days` days ending on the measured month. No dispute_case or case_record rows are written:
no dashboard query reads them (so the rollup's own rebuild from the records would disagree on
this database; it is a bench database only). Rows go in with executemany (SQLite) or COPY
(PostgreSQL), in key order.

Scratch data: an SQLite file in a temp dir, or a PostgreSQL database gridflow_dashbench_<pid>
(dropped at the end); never CI's `test`. Results: bench/results/dashboard-<dialect>-<date>.json
with the load average at start and at each measurement. Exit code 1 when a target is missed.
"""
from __future__ import annotations

import argparse
import json
import os
import random
import statistics
import sys
import tempfile
import time
from collections import defaultdict
from datetime import date, datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from sqlalchemy import select, text  # noqa: E402

from engine import clock  # noqa: E402
from engine.calendar import WorkCalendar  # noqa: E402
from engine.db import Database  # noqa: E402
from engine.deploy import Bundle, deploy  # noqa: E402
from engine.migrate import upgrade  # noqa: E402
from grid.cases import rollup, rollups  # noqa: E402
from grid.cases.models import CATEGORIES, IndicatorRollup  # noqa: E402
from grid.config import Settings  # noqa: E402
from grid.org import demo  # noqa: E402
from grid.org.models import OrgUnit  # noqa: E402
from grid.services import Services  # noqa: E402

NOW = datetime(2026, 12, 15, 10, 0, tzinfo=clock.SHANGHAI)  # the measured month: December 2026
PG_DEFAULT = "postgresql://postgres@127.0.0.1:5432/postgres"
CITY = demo.CITY_CODE
TARGET_P95_MS = 200.0
TARGET_RATIO = 2.0

# (weight, records): each record is (kind, unit role, hours after the report, data)
CLOSED = [
    (60, [("level_entered", "v", 1, {}), ("dispatched", "v", 2, {}), ("resolved", "v", 40, {}),
          ("verified", "g", 60, {"satisfied": True}), ("archived", "v", 61, {"result": "satisfied"})]),
    (12, [("level_entered", "v", 1, {}), ("dispatched", "v", 2, {}), ("cannot_resolve", "v", 50, {}),
          ("escalation", "v", 50, {}), ("level_entered", "t", 50, {}), ("dispatched", "t", 52, {}),
          ("resolved", "t", 150, {}), ("verified", "g", 170, {"satisfied": True}),
          ("archived", "t", 171, {"result": "satisfied"})]),
    (6, [("level_entered", "v", 1, {}), ("dispatched", "v", 2, {}), ("warning", "v", 75, {}),
         ("supervision", "v", 75, {}), ("urge", "v", 80, {}), ("accountability", "v", 170, {}),
         ("escalation", "v", 170, {}), ("level_entered", "t", 170, {}), ("dispatched", "t", 171, {}),
         ("resolved", "t", 260, {}), ("verified", "g", 280, {"satisfied": True}),
         ("archived", "t", 281, {"result": "satisfied"}), ("accountability_decided", "v", 300, {"outcome": "notice"})]),
    (7, [("level_entered", "v", 1, {}), ("dispatched", "v", 2, {}), ("resolved", "v", 40, {}),
         ("verified", "g", 60, {"satisfied": False}), ("rework", "v", 60, {"count": 1}),
         ("level_entered", "v", 60, {}), ("resolved", "v", 100, {}), ("verified", "g", 120, {"satisfied": True}),
         ("archived", "v", 121, {"result": "satisfied"})]),
    (12, [("archived", "g", 0, {"result": "settled_on_spot"})]),
    (3, [("level_entered", "v", 1, {}), ("archived", "v", 5, {"result": "duplicate"})]),
]
OPEN = [(1, [("level_entered", "v", 1, {}), ("dispatched", "v", 2, {})])]


def _expand(kinds: list, total: int) -> list[int]:
    """How many cases of each sequence make `total` (by weight, the remainder to the first)."""
    w = sum(k for k, _ in kinds)
    counts = [total * k // w for k, _ in kinds]
    counts[0] += total - sum(counts)
    return counts


class Generator:
    """Rollup rows for synthetic cases, through rollup.contributions."""

    def __init__(self, grids: list[tuple[str, str, str]], days: int, cal: WorkCalendar, seed: int = 11):
        self.grids, self.days, self.cal = grids, days, cal  # (grid, village, township)
        self.rng = random.Random(seed)
        self.cache: dict[tuple[int, int, str], list[tuple[str, date, str, str, int]]] = {}
        self.first_day = clock.local(NOW).date() - timedelta(days=days - 1)

    def _template(self, seq_id: int, seq: list, day_no: int, category: str) -> list[tuple[str, date, str, str, int]]:
        key = (seq_id, day_no, category)
        if key not in self.cache:
            at0 = datetime.combine(self.first_day + timedelta(days=day_no), datetime.min.time(),
                                   clock.SHANGHAI) + timedelta(hours=9)
            st = rollup.CaseState(grid="g", category=category)
            rows = [("g", at0.date(), category, "", "reported", 1), ("g", at0.date(), category, "", "reported_grid_worker", 1)]
            for kind, role, hours, data in seq:
                level = {"v": "village", "t": "township", "g": None}[role]
                rows += rollup.contributions(st, self.cal, kind, level, role, at0 + timedelta(hours=hours), data)
            self.cache[key] = [(u, d, lv, m, v) for u, d, _c, lv, m, v in rows if v]
        return self.cache[key]

    def add(self, totals: dict, sequences: list, n: int, seq_base: int) -> None:
        rng, grids, days = self.rng, self.grids, self.days
        for i, count in enumerate(_expand(sequences, n)):
            seq = sequences[i][1]
            for _ in range(count):
                g, v, t = grids[rng.randrange(len(grids))]
                cat = CATEGORIES[rng.randrange(len(CATEGORIES))]
                units = {"g": g, "v": v, "t": t}
                for u, d, lv, m, val in self._template(seq_base + i, seq, rng.randrange(days), cat):
                    totals[(units[u], d, cat, lv, m)] += val


def _grids(db: Database) -> list[tuple[str, str, str]]:
    with db.read() as s:
        units = {u.code: u for u in s.scalars(select(OrgUnit))}
    out = []
    for u in units.values():
        if u.level == "grid" and u.parent_code in units:
            v = units[u.parent_code]
            if v.parent_code:
                out.append((u.code, v.code, v.parent_code))
    return sorted(out)


def _units(db: Database) -> dict[str, tuple[str | None, str]]:
    with db.read() as s:
        return {c: (p, lv) for c, p, lv in s.execute(select(OrgUnit.code, OrgUnit.parent_code, OrgUnit.level))}


def _first_total(units: dict, unit: str) -> str | None:
    """The nearest unit at or above `unit` that has totals (grid.cases.rollups.TOTAL_LEVELS)."""
    c, depth = unit, 0
    while c is not None and c in units and depth < rollups.MAX_DEPTH:
        if units[c][1] in rollups.TOTAL_LEVELS:
            return c
        c, depth = units[c][0], depth + 1
    return None


def subtree_totals(units: dict, rows: dict) -> dict:
    """What indicator_total's triggers hold for the rollup `rows` (grid.cases.rollups.compute's
    rule: every ancestor with totals, day/month/year, per category and "*"), aggregated in stages so
    that a million cases take a minute: the rollup summed onto its nearest scope with totals, those
    summed upward one level at a time, then the month, year and all-category rows from the days."""
    days: dict = defaultdict(int)
    first = {u: _first_total(units, u) for u in {k[0] for k in rows}}
    for (unit, day, cat, lv, measure), v in rows.items():
        scope = first[unit]
        if scope is not None and v:
            days[(scope, day, cat, lv, measure)] += v
    by_depth: dict[int, list] = defaultdict(list)
    depth = {}
    for code in {k[0] for k in days} | {c for c, (_p, lv) in units.items() if lv in rollups.TOTAL_LEVELS}:
        d, c = 0, code
        while units.get(c, (None,))[0] is not None:
            c, d = units[c][0], d + 1
        depth[code] = d
    for key in list(days):
        by_depth[depth[key[0]]].append(key)
    for d in range(max(depth.values(), default=0), -1, -1):  # deepest first: each adds itself to its nearest scope above
        for key in by_depth[d]:
            parent = units[key[0]][0]
            up = _first_total(units, parent) if parent is not None else None
            if up is not None:
                new = (up, *key[1:])
                if new not in days:
                    by_depth[depth[up]].append(new)
                days[new] += days[key]
    out: dict = defaultdict(int)
    for (scope, day, cat, lv, measure), v in days.items():
        for bucket, ps in (("d", day), ("m", day.replace(day=1)), ("y", date(day.year, 1, 1))):
            out[(scope, bucket, ps, cat, lv, measure)] += v
            out[(scope, bucket, ps, rollups.ALL, lv, measure)] += v
    return out


def _write(db: Database, rows: dict) -> int:
    """Replace indicator_rollup with `rows` and indicator_total with their subtree sums (what its
    triggers would hold), with the triggers dropped meanwhile. Returns the number of total rows."""
    with db.write() as s:
        for stmt in rollups.drop_ddl(db.dialect):
            s.connection().exec_driver_sql(stmt)
        s.execute(text("DELETE FROM indicator_total"))
        s.execute(text("DELETE FROM indicator_rollup"))
    try:
        t0 = time.perf_counter()
        _bulk(db, "indicator_rollup", ("unit_code", "day", "category", "level", "measure"),
              sorted((*k, v) for k, v in rows.items()))
        t1 = time.perf_counter()
        tree = subtree_totals(_units(db), rows)
        t2 = time.perf_counter()
        _bulk(db, "indicator_total", TOTAL_KEY, sorted((*k, v) for k, v in tree.items() if v))
        print(f"  rollup written {t1 - t0:.1f} s, totals computed {t2 - t1:.1f} s, written "
              f"{time.perf_counter() - t2:.1f} s", file=sys.stderr)
        return len(tree)
    finally:
        with db.write() as s:
            for stmt in rollups.trigger_ddl(db.dialect):
                s.connection().exec_driver_sql(stmt)


TOTAL_KEY = ("scope", "bucket", "period_start", "category", "level", "measure")


def _bulk(db: Database, table: str, key: tuple[str, ...], rows: list[tuple]) -> None:
    """Plain inserts of rows sorted by the primary key (B-tree appends): COPY on PostgreSQL,
    executemany on SQLite."""
    cols = ", ".join(key)
    if db.dialect == "postgresql":
        raw = db.engine.raw_connection()
        try:
            cur = raw.cursor()
            with cur.copy(f"COPY {table} ({cols}, value) FROM STDIN") as cp:
                for r in rows:
                    cp.write_row(r)
            raw.commit()
            cur.execute(f"ANALYZE {table}")
            raw.commit()
        finally:
            raw.close()
        return
    with db.write() as s:
        conn = s.connection().connection.dbapi_connection
        marks = ", ".join("?" * (len(key) + 1))
        conn.executemany(f"INSERT INTO {table} ({cols}, value) VALUES ({marks})",
                         (tuple(x.isoformat() if isinstance(x, date) else x for x in r) for r in rows))


def _p(values: list[float]) -> dict:
    vals = sorted(values)
    return {"p50": round(statistics.median(vals), 1), "p95": round(vals[max(0, int(len(vals) * 0.95 + 0.5) - 1)], 1),
            "n": len(vals)}


def _measure(app, county: str, requests: int) -> dict:
    from grid.org.passwords import DEMO_PASSWORD
    from tests.web_helpers import TOKEN

    client = app.test_client()
    token = TOKEN.search(client.get("/login").get_data(as_text=True)).group(1)
    r = client.post("/login", data={"username": f"sup.{CITY}", "password": DEMO_PASSWORD, "csrf_token": token})
    assert r.status_code == 302, r.status_code
    pages = {"city_dashboard": f"/dashboard/{CITY}", "county_drilldown": f"/dashboard/{county}",
             "ranking": f"/dashboard/{CITY}?rank=overdue_rate&period=quarter"}
    out = {}
    for name, path in pages.items():
        for _ in range(1):  # warm-up: caches, the first query plans
            assert client.get(path).status_code == 200, path
        times = []
        for _ in range(requests):
            t0 = time.perf_counter()
            resp = client.get(path)
            times.append((time.perf_counter() - t0) * 1000)
            assert resp.status_code == 200, path
        out[name] = _p(times)
    return out


def _rollup_rows(db: Database) -> tuple[int, int]:
    with db.read() as s:
        return (s.scalar(select(text("count(*)")).select_from(IndicatorRollup)) or 0,
                s.scalar(select(text("count(*)")).select_from(rollups.IndicatorTotal)) or 0)


def run(dialect: str, args) -> dict:
    tmp = tempfile.TemporaryDirectory(prefix="gridflow_dashbench_")
    pg_name = f"gridflow_dashbench_{os.getpid()}"
    if dialect == "sqlite":
        url = f"sqlite:///{tmp.name}/bench.sqlite"
    else:
        import psycopg

        base = os.environ.get("GRIDFLOW_BENCH_PG_URL", PG_DEFAULT)
        with psycopg.connect(base, autocommit=True) as c:
            c.execute(f'DROP DATABASE IF EXISTS "{pg_name}"')
            c.execute(f'CREATE DATABASE "{pg_name}"')
        url = base.rsplit("/", 1)[0] + "/" + pg_name
    db = Database(url)
    fake = clock.install_fake(NOW)
    try:
        t0 = time.perf_counter()
        upgrade(db)
        settings = Settings(database_url=db.url_with_password, workflows=ROOT / "workflows", forms=ROOT / "forms")
        svc = Services.build(settings, db=db)
        with db.write() as s:
            deploy(s, Bundle.from_dirs(ROOT / "workflows", ROOT / "forms"), actor="bench")
        demo.generate(db, size=args.size)
        city_s = time.perf_counter() - t0
        grids = _grids(db)
        with db.read() as s:
            county = s.scalar(select(OrgUnit.code).where(OrgUnit.parent_code == CITY).order_by(OrgUnit.code))
        from web import create_app

        svc.settings.secret_key = "bench-secret"
        svc.settings.uploads = Path(tmp.name) / "uploads"
        app = create_app(svc.settings, services=svc)
        gen = Generator(grids, args.days, svc.runtime.calendar)
        result = {"dialect": dialect, "size": args.size, "grids": len(grids), "city_build_s": round(city_s, 1),
                  "scales": {}}
        done_closed = done_open = 0
        totals: dict = defaultdict(int)  # the rollup of every case so far; both tables rewritten per scale
        for closed, opened in ((args.base * 9 // 10, args.base - args.base * 9 // 10), (args.closed, args.open)):
            t1 = time.perf_counter()
            gen.add(totals, CLOSED, closed - done_closed, 0)
            gen.add(totals, OPEN, opened - done_open, 100)
            gen_s = time.perf_counter() - t1
            t2 = time.perf_counter()
            n_total = _write(db, totals)
            ins_s = time.perf_counter() - t2
            if not done_closed:  # the small scale: the bench's totals are what the triggers keep
                with db.write() as s:
                    assert rollups.rebuild(s, check=True) == [], "the bench's totals differ from rollups.compute"
            done_closed, done_open = closed, opened
            load = os.getloadavg()
            print(f"{dialect}: {closed + opened:,} cases, {len(totals):,} rollup rows, {n_total:,} total rows "
                  f"(generated {gen_s:.1f} s, written {ins_s:.1f} s); measuring (load {load[0]:.2f})",
                  file=sys.stderr)
            pages = _measure(app, county, args.requests)
            result["scales"][str(closed + opened)] = {
                "closed": closed, "open": opened, "rollup_and_total_rows": _rollup_rows(db), "generate_s": round(gen_s, 1),
                "insert_s": round(ins_s, 1), "load_before": load, "load_after": os.getloadavg(), "pages": pages}
            print(json.dumps(pages), file=sys.stderr)
        small, large = (result["scales"][k]["pages"] for k in list(result["scales"]))
        result["ratio_p50"] = {k: round(large[k]["p50"] / small[k]["p50"], 2) for k in small}
        result["targets"] = {
            "city_dashboard_p95_ms": {"value": large["city_dashboard"]["p95"], "target": TARGET_P95_MS,
                                      "pass": large["city_dashboard"]["p95"] < TARGET_P95_MS},
            "ratio_large_small": {"value": max(result["ratio_p50"].values()), "target": TARGET_RATIO,
                             "pass": max(result["ratio_p50"].values()) < TARGET_RATIO}}
        return result
    finally:
        clock.set_source(None)
        del fake
        db.dispose()
        if dialect == "postgresql":
            import psycopg

            with psycopg.connect(os.environ.get("GRIDFLOW_BENCH_PG_URL", PG_DEFAULT), autocommit=True) as c:
                c.execute(f'DROP DATABASE IF EXISTS "{pg_name}" WITH (FORCE)')
        tmp.cleanup()


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--dialects", default="sqlite,postgresql")
    ap.add_argument("--size", default="full", choices=("full", "small"))
    ap.add_argument("--closed", type=int, default=1_000_000)
    ap.add_argument("--open", type=int, default=100_000)
    ap.add_argument("--base", type=int, default=10_000)
    ap.add_argument("--days", type=int, default=1096, help="history span in days (default three years)")
    ap.add_argument("--requests", type=int, default=15)
    ap.add_argument("--no-save", action="store_true")
    args = ap.parse_args(argv)
    ok = True
    load = os.getloadavg()
    for dialect in [d.strip() for d in args.dialects.split(",") if d.strip()]:
        res = run(dialect, args)
        res.update(load_at_start=load, cpus=os.cpu_count(), when=datetime.now().isoformat(timespec="seconds"),
                   requests=args.requests, days=args.days)
        print(json.dumps({k: res[k] for k in ("dialect", "ratio_p50", "targets")}, ensure_ascii=False))
        ok = ok and all(t["pass"] for t in res["targets"].values())
        if not args.no_save:
            out = ROOT / "bench" / "results" / f"dashboard-{dialect}-{date.today().isoformat()}.json"
            out.write_text(json.dumps(res, indent=1, ensure_ascii=False, default=str) + "\n", encoding="utf-8")
            print(f"wrote {out}", file=sys.stderr)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
