"""API case list (`GET /api/v1/cases`) p95 at 100,000 cases against 10,000 in the same run.

    .venv/bin/python -m bench.api_bench                       # SQLite, then PostgreSQL (local server)
    .venv/bin/python -m bench.api_bench --dialects sqlite --small 10000 --large 100000 --runs 200
    .venv/bin/python -m bench.api_bench --pg postgresql://postgres@127.0.0.1:5432/test

Each dialect gets a scratch database (a temp SQLite file; PostgreSQL `gridflow_api_bench_<pid>`,
dropped at the end), migrated, with ./workflows deployed and the demo city (`--size`, default
small: the list's cost follows the cases, not the grids). Cases are bulk-inserted as `dispute_case`
rows spread over every grid and three years of `updated_at` (a third open, each open one with an
instance and an open work item carrying a due time, so the list's deadline lookup has work). The
client is a city-wide API client with `cases:read` (the heaviest jurisdiction), and the calls go
through the app's WSGI stack (Flask test client: server time, token check, rate limit, audit row
included). Four kinds of call, `--runs` each, interleaved:

- `first`: the first page (`limit=50`), no cursor;
- `cursor`: a page after a random cursor (deep pagination, how a full sync walks);
- `since`: `updated_since` = a random day in the last month (incremental sync);
- `county`: the first page for a county-wide client (a path prefix, not the whole city).

Measured at `--small` cases, then the same after filling up to `--large`; the ratio p95(large) /
p95(small) is the number that matters (target: below 2.0, i.e. the list does not scan the table).
Also reported: `cursor_vs_first_p95`, a deep page against the first page at each size (near 1
when the cursor seeks in the index; a ratio within one size, so less at the mercy of the load).
Results: bench/results/api-<dialect>-<date>.json with the load average and the query plans
(first page; a page after a cursor).
"""
from __future__ import annotations

import argparse
import base64
import json
import os
import platform
import random
import statistics
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "bench" / "results"
TARGET_RATIO = 2.0
CHUNK = 5000
KINDS = ("first", "cursor", "since", "county")


def _scratch(dialect: str, pg: str) -> tuple[str, object]:
    if dialect == "sqlite":
        tmp = tempfile.mkdtemp(prefix="gridflow_api_bench_")
        return f"sqlite:///{tmp}/api.sqlite", None
    from sqlalchemy import create_engine, text

    name = f"gridflow_api_bench_{os.getpid()}"
    admin = create_engine(pg.replace("postgresql://", "postgresql+psycopg://", 1), isolation_level="AUTOCOMMIT")
    with admin.connect() as c:
        c.execute(text(f'DROP DATABASE IF EXISTS "{name}"'))
        c.execute(text(f'CREATE DATABASE "{name}"'))
    admin.dispose()
    return pg.rsplit("/", 1)[0] + "/" + name, name


def _drop(pg: str, name: str) -> None:
    from sqlalchemy import create_engine, text

    admin = create_engine(pg.replace("postgresql://", "postgresql+psycopg://", 1), isolation_level="AUTOCOMMIT")
    with admin.connect() as c:
        c.execute(text(f"SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = '{name}' "
                       "AND pid <> pg_backend_pid()"))
        c.execute(text(f'DROP DATABASE IF EXISTS "{name}"'))
    admin.dispose()


def fill(svc, upto: int, now: datetime, seed: int = 11) -> int:
    """Bulk-insert cases until there are `upto`; returns how many were added."""
    from sqlalchemy import func, insert, select

    from engine.models import Instance, WorkItem
    from grid.cases.models import CATEGORIES, DisputeCase
    from grid.org.models import OrgUnit, StaffRole

    rng = random.Random(seed)
    with svc.db.read() as s:
        have = s.scalar(select(func.count()).select_from(DisputeCase)) or 0
        grids = list(s.execute(select(OrgUnit.code, OrgUnit.path, OrgUnit.lat, OrgUnit.lng, StaffRole.staff_id)
                               .join(StaffRole, StaffRole.unit_code == OrgUnit.code)
                               .where(OrgUnit.level == "grid", StaffRole.role == "grid_worker")))
        template = s.execute(select(Instance.process_id, Instance.version_id, Instance.state_json)
                             .limit(1)).first()
        top = max(s.scalar(select(func.max(DisputeCase.id))) or 0, s.scalar(select(func.max(Instance.id))) or 0)
    todo = upto - have
    if todo <= 0:
        return 0
    span = 3 * 365 * 24 * 3600
    t0 = time.perf_counter()
    done = 0
    while done < todo:
        n = min(CHUNK, todo - done)
        cases, insts, items = [], [], []
        for k in range(n):
            i = top + done + k + 1
            code, path, lat, lng, worker = grids[rng.randrange(len(grids))]
            reported = now - timedelta(seconds=rng.randrange(span))
            updated = min(now - timedelta(seconds=5), reported + timedelta(hours=rng.randrange(1, 24 * 60)))
            is_open = rng.random() < 0.33
            row = {"id": i, "case_no": f"MD{reported:%Y%m%d}{i:07d}", "category": rng.choice(CATEGORIES),
                   "description": f"批量生成的纠纷 {i}", "location_text": "批量地址",
                   "lat": lat, "lng": lng, "parties": [], "photos": [], "reporter_id": worker, "grid_code": code,
                   "unit_path": path, "current_level": "village", "current_unit": code[:12],
                   "status": "open" if is_open else "archived", "reported_at": reported, "updated_at": updated,
                   "archived_at": None if is_open else updated, "escalations": 0, "rework_count": 0,
                   "warnings": 0, "overdue": 0, "source": "grid_worker", "instance_id": None}
            if is_open and template is not None:
                row["instance_id"] = i
                insts.append({"id": i, "process_id": template.process_id, "version_id": template.version_id,
                              "business_key": row["case_no"], "status": "running", "state_json": template.state_json,
                              "lock_version": 1, "created_at": reported, "updated_at": updated})
                items.append({"instance_id": i, "task_guid": f"bench-{i}", "task_spec": "dispatch", "name": "派件",
                              "process_id": template.process_id,
                              "unit_id": code[:12], "role": "grid_head", "state": "open", "created_at": updated,
                              "warn_at": updated + timedelta(days=2), "due_at": updated + timedelta(days=3)})
            cases.append(row)
        with svc.db.write() as s:
            if insts:
                s.execute(insert(Instance), _fit(Instance, insts))
            s.execute(insert(DisputeCase), cases)
            if items:
                s.execute(insert(WorkItem), _fit(WorkItem, items))
        done += n
    if svc.db.engine.dialect.name == "postgresql":
        with svc.db.engine.begin() as c:  # committed: a rolled-back ANALYZE leaves no statistics
            c.exec_driver_sql("ANALYZE")
    print(f"  filled {todo:,} cases in {time.perf_counter() - t0:.1f} s")
    return todo


def _fit(model, rows: list[dict]) -> list[dict]:
    """Keep the columns the model has (the instance/work-item tables grow columns over time)."""
    cols = {c.key for c in model.__table__.columns}
    return [{k: v for k, v in r.items() if k in cols} for r in rows]


def _cursor_at(svc, rng: random.Random, count: int) -> str:
    from sqlalchemy import select

    from grid.cases.api_reads import encode_cursor
    from grid.cases.models import DisputeCase

    with svc.db.read() as s:
        row = s.execute(select(DisputeCase.updated_at, DisputeCase.id).order_by(DisputeCase.updated_at, DisputeCase.id)
                        .offset(rng.randrange(max(count - 60, 1))).limit(1)).first()
    return encode_cursor(row.updated_at.isoformat(), row.id)


def measure(app, svc, tokens: dict[str, str], runs: int, count: int, now: datetime, seed: int = 5) -> dict:
    rng = random.Random(seed)
    client = app.test_client()
    times: dict[str, list[float]] = {k: [] for k in KINDS}
    cursors = [_cursor_at(svc, rng, count) for _ in range(min(runs, 50))]
    for i in range(runs + 5):
        for kind in (KINDS if i % 2 == 0 else KINDS[::-1]):
            token = tokens["county" if kind == "county" else "city"]
            q = {"limit": 50}
            if kind == "cursor":
                q["cursor"] = cursors[i % len(cursors)]
            elif kind == "since":
                q["updated_since"] = (now - timedelta(days=rng.randrange(1, 30))).isoformat().replace("+00:00", "Z")
            t0 = time.perf_counter()
            r = client.get("/api/v1/cases", query_string=q, headers={"Authorization": f"Bearer {token}"})
            dt = time.perf_counter() - t0
            assert r.status_code == 200, (r.status_code, r.data[:300])
            assert len(r.get_json()["items"]) > 0
            if i >= 5:  # warm-up
                times[kind].append(dt * 1000)
    out = {}
    for k, v in times.items():
        v.sort()
        out[k] = {"median_ms": round(statistics.median(v), 2), "p95_ms": round(v[int(len(v) * 0.95) - 1], 2),
                  "n": len(v)}
    return out


def _plan(svc, deep: bool = False) -> list[str]:
    """The plan of the city-wide first page (or a page after a cursor), as the database answers it."""
    from sqlalchemy import or_, select

    from engine import clock
    from grid.cases.api_reads import SETTLE
    from grid.cases.models import DisputeCase

    q = (select(DisputeCase.id).where(DisputeCase.unit_path.like("420600000000/%"),
                                      DisputeCase.updated_at <= clock.now() - SETTLE)
         .order_by(DisputeCase.updated_at, DisputeCase.id).limit(50))
    if deep:  # the cursor's condition as grid.cases.api_reads.list_cases writes it
        at = clock.now() - timedelta(days=30)
        q = q.where(DisputeCase.updated_at >= at, or_(DisputeCase.updated_at > at, DisputeCase.id > 1))
    eng = svc.db.engine
    sql = str(q.compile(eng, compile_kwargs={"literal_binds": True}))
    prefix = "EXPLAIN QUERY PLAN " if eng.dialect.name == "sqlite" else "EXPLAIN "
    with eng.connect() as c:
        return [" ".join(str(x) for x in row) for row in c.exec_driver_sql(prefix + sql)]


def run(dialect: str, pg: str, small: int, large: int, runs: int, size: str) -> dict:
    from engine.db import Database
    from engine.deploy import Bundle, deploy
    from engine.migrate import upgrade
    from grid.config import Settings
    from grid.org import api_clients, demo
    from grid.services import Services

    url, name = _scratch(dialect, pg)
    db = Database(url)
    try:
        upgrade(db)
        settings = Settings(database_url=db.url_with_password, workflows=ROOT / "workflows", forms=ROOT / "forms")
        settings.secret_key = base64.b64encode(os.urandom(32)).decode()
        svc = Services.build(settings, db=db)
        with db.write() as s:
            deploy(s, Bundle.from_dirs(ROOT / "workflows", ROOT / "forms"), actor="bench")
        t0 = time.perf_counter()
        demo.generate(db, size=size)
        print(f"  demo city ({size}) in {time.perf_counter() - t0:.1f} s")
        tokens = {"city": api_clients.create(svc, "bench city", ["cases:read"], demo.CITY_CODE,
                                             rate_per_minute=10**9)[1],
                  "county": api_clients.create(svc, "bench county", ["cases:read"], demo.SEED_COUNTY,
                                               rate_per_minute=10**9)[1]}
        import web.api
        from web import create_app

        app = create_app(settings, services=svc, TESTING=True)
        if "api" not in app.blueprints:
            web.api.register(app)
        from grid.cases import service as cases
        from grid.org import service as org

        with db.read() as s:
            worker = org.staff_by_username(s, demo.SEED_GRID_WORKER[0]).id
        cases.report(svc, worker, {"category": "neighbour", "description": "模板案件：楼道堆物引发邻里纠纷", "settled_on_spot": False,
                                   "location": {"text": "檀溪路", "lat": 32.0213, "lng": 112.1432}, "parties": []})
        now = datetime.now(UTC)
        result: dict = {"dialect": dialect, "size": size, "runs": runs}
        for label, n in (("small", small), ("large", large)):
            fill(svc, n, now)
            result[label] = {"cases": n, **measure(app, svc, tokens, runs, n, now)}
            print(f"  {n:>7,} cases: " + ", ".join(f"{k} p95 {result[label][k]['p95_ms']:.1f} ms" for k in KINDS))
        result["ratio_p95"] = {k: round(result["large"][k]["p95_ms"] / result["small"][k]["p95_ms"], 2) for k in KINDS}
        # a deep page (random cursor) against the first page, at each size: near 1 when the cursor seeks
        result["cursor_vs_first_p95"] = {lb: round(result[lb]["cursor"]["p95_ms"] / result[lb]["first"]["p95_ms"], 2)
                                         for lb in ("small", "large")}
        result["plan_first_page"] = _plan(svc)
        result["plan_deep_page"] = _plan(svc, deep=True)
        result["target_ratio"] = TARGET_RATIO
        result["pass"] = all(v <= TARGET_RATIO for v in result["ratio_p95"].values())
        return result
    finally:
        db.dispose()
        if name:
            _drop(pg, name)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--dialects", default="sqlite,postgresql")
    ap.add_argument("--pg", default=os.environ.get("GRIDFLOW_BENCH_PG_URL", "postgresql://postgres@127.0.0.1:5432/test"))
    ap.add_argument("--small", type=int, default=10_000)
    ap.add_argument("--large", type=int, default=100_000)
    ap.add_argument("--runs", type=int, default=100)
    ap.add_argument("--size", choices=("small", "full"), default="small")
    ap.add_argument("--no-save", action="store_true")
    a = ap.parse_args()
    RESULTS.mkdir(parents=True, exist_ok=True)
    ok = True
    for dialect in a.dialects.split(","):
        print(f"{dialect}:")
        load = os.getloadavg()
        res = run(dialect, a.pg, a.small, a.large, a.runs, a.size)
        res["env"] = {"cpus": os.cpu_count(), "load_at_start": [round(x, 2) for x in load],
                      "python": platform.python_version(), "at": datetime.now(UTC).isoformat(timespec="seconds")}
        print(f"  ratio p95 {a.large:,} / {a.small:,}: {res['ratio_p95']} -> {'PASS' if res['pass'] else 'MISS'}"
              f" (target < {TARGET_RATIO}); deep page / first page p95: {res['cursor_vs_first_p95']}")
        ok = ok and res["pass"]
        if not a.no_save:
            path = RESULTS / f"api-{dialect}-{datetime.now(UTC):%Y-%m-%d}.json"
            path.write_text(json.dumps(res, ensure_ascii=False, indent=2), encoding="utf-8")
            print(f"  saved {path.relative_to(ROOT)}")
    raise SystemExit(0 if ok else 1)


if __name__ == "__main__":
    main()
