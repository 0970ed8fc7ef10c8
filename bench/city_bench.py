"""City-scale page bench (issue 16): each page's p50/p95 over HTTP against gunicorn, its ratio
to a floor page, at two history sizes and the growth ratio between them; plus the HTTP flow of a
whole case against the thin SpiffWorkflow loop for the same process.

    .venv/bin/python -m bench.city_bench [--scale 10000 --scale2 100000] [--size full|small] [--full]
        [--db sqlite|postgresql] [--runs 40] [--flows 15] [--workflows DIR --forms DIR] [--out FILE]

For each scale N: the demo city (grid.org.demo + grid.registry.demo), N open and 10·N archived
cases cloned in bulk from real cases (bench.web_bench's clone, with Core executemany instead of
ORM inserts: case row, instance state, work items, audit events, records, remapped to their own
grid), resident links for half of them, then the derived indexes (case_late, case_party, case_search)
filled as the migration fills them. The larger scale grows the same database (only the difference
is cloned). `gridflow serve --production` (gunicorn, 2 workers) serves it; pages are fetched with
real sessions, one client at a time. The HTTP flow (report + every task POST, redirects followed)
and the thin loop (plain SpiffWorkflow + one row, the same BPMN/DMN, the data the service layer
gave the engine) run at each scale on the same database.

Scratch data: SQLite files in a temp dir gridflow_citybench_<pid>_*, or a PostgreSQL database
gridflow_citybench_<pid> (dropped at the end); never CI's `test`. Exit code 1 when a target misses.
"""
from __future__ import annotations

import argparse
import base64
import http.cookiejar
import json
import os
import random
import re
import secrets
import shutil
import socket
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.parse
import urllib.request
import uuid
from datetime import timedelta
from pathlib import Path
from urllib.parse import quote

from sqlalchemy import bindparam, func, insert, literal_column, select

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench import web_bench  # noqa: E402
from bench._common import Relocator  # noqa: E402
from engine import clock  # noqa: E402
from engine.db import Database, UTCDateTime  # noqa: E402
from engine.deploy import Bundle, deploy  # noqa: E402
from engine.migrate import upgrade  # noqa: E402
from engine.models import Instance, InstanceEvent, WorkItem  # noqa: E402
from grid.cases import late_index, search  # noqa: E402
from grid.cases.models import CaseParty, CaseRecord, CaseSearch, DisputeCase  # noqa: E402
from grid.config import Settings  # noqa: E402
from grid.org import demo  # noqa: E402
from grid.org.models import OrgUnit, Staff  # noqa: E402
from grid.org.passwords import DEMO_PASSWORD  # noqa: E402
from grid.registry import demo as registry_demo  # noqa: E402
from grid.registry.models import Resident  # noqa: E402
from grid.services import Services  # noqa: E402

GRIDFLOW = [str(Path(sys.executable).with_name("gridflow"))]
STREET, COUNTY, CITY, VILLAGE = "420602003000", "420602000000", "420600000000", "420602003005"
FLOOR = "floor /settings"  # a staff page that reads no case data (session, auth, layout): the floor
TARGETS = {"growth_max": 1.5, "floor_ratio_max": 3.0, "flow_thin_max": 4.5}
PG_ADMIN = os.environ.get("GRIDFLOW_BENCH_PG_URL", "postgresql://postgres@127.0.0.1:5432/postgres")


def fast_clone(svc, template_ids: dict[str, int], n: int, hot: float, seed: int) -> None:
    """bench.web_bench.clone (the same rows: each template case's row, instance, work items, audit
    events and records, remapped to a grid of the city and shifted in time), written with the
    DB-API's executemany on rows whose unchanged columns were converted for the driver once per
    template: SQLAlchemy's per-row parameter processing was most of the build time."""
    rng = random.Random(seed)
    now = clock.now()
    db = svc.db
    tables = {"case": DisputeCase.__table__, "instance": Instance.__table__, "items": WorkItem.__table__,
              "events": InstanceEvent.__table__, "records": CaseRecord.__table__}
    dialect = db.engine.dialect
    procs = {k: {c.name: c.type._cached_bind_processor(dialect) for c in t.columns} for k, t in tables.items()}

    def conv(key: str, row: dict) -> dict:
        return {c: (procs[key][c](v) if procs[key][c] and v is not None else v) for c, v in row.items()}

    with db.read() as s:
        tpl = {}
        for stage, cid in template_ids.items():
            c = web_bench._rows(s, DisputeCase, DisputeCase.id, cid)[0]
            raw = {"case": [c], "instance": web_bench._rows(s, Instance, Instance.id, c["instance_id"]),
                   "items": web_bench._rows(s, WorkItem, WorkItem.instance_id, c["instance_id"]),
                   "events": web_bench._rows(s, InstanceEvent, InstanceEvent.instance_id, c["instance_id"]),
                   "records": web_bench._rows(s, CaseRecord, CaseRecord.case_id, cid)}
            for k in ("items", "events", "records"):
                raw[k] = [{c: v for c, v in r.items() if c != "id"} for r in raw[k]]
            tpl[stage] = {k: [(r, conv(k, r)) for r in rows] for k, rows in raw.items()}
        grids = list(s.execute(select(OrgUnit.code, OrgUnit.path).where(OrgUnit.level == "grid")))
        relocate = Relocator(dict(s.execute(select(Staff.username, Staff.id)).all()), grids, web_bench.STAGES)
        next_case = s.scalar(select(func.max(DisputeCase.id))) + 1
        next_inst = s.scalar(select(func.max(Instance.id))) + 1
    ph = "?" if dialect.name == "sqlite" else "%s"
    cols = {k: [c for c in tpl["archived"][k][0][1] if c in t.c] for k, t in tables.items()}
    sql = {k: f"INSERT INTO {tables[k].name} ({', '.join(cols[k])}) VALUES ({', '.join([ph] * len(cols[k]))})"
           for k in tables}
    times = {k: [c.name for c in t.columns if isinstance(c.type, UTCDateTime)] for k, t in tables.items()}
    batches: dict[str, list[tuple]] = {k: [] for k in tables}

    def flush() -> None:
        with db.write() as s:
            cur = s.connection().connection.driver_connection.cursor()
            for k in ("instance", "case", "items", "events", "records"):
                if batches[k]:
                    cur.executemany(sql[k], batches[k])
                batches[k] = []

    def emit(key: str, raw: dict, done: dict, changes: dict, shift) -> None:
        row = dict(done)
        for c in times[key]:
            if raw.get(c) is not None:
                row[c] = procs[key][c](raw[c] + shift)
        row.update(changes)
        batches[key].append(tuple(row[c] for c in cols[key]))

    t0 = time.monotonic()
    for i in range(n):
        stage, gcode, gpath, units, remap, age = relocate.draw(rng, hot)
        t = tpl[stage]
        craw, cdone = t["case"][0]
        shift = (now - age) - craw["reported_at"]
        cid, iid = next_case + i, next_inst + i
        case_no = f"MB{cid:010d}"
        emit("case", craw, cdone, {"id": cid, "case_no": case_no, "instance_id": iid, "grid_code": gcode,
                                   "unit_path": gpath, "category": rng.choice(web_bench.CATEGORIES),
                                   "reporter_id": remap(craw["reporter_id"]),
                                   "current_unit": units.get(craw["current_unit"], craw["current_unit"]),
                                   "resolved_unit": units.get(craw["resolved_unit"], craw["resolved_unit"]),
                                   "description": f"{craw['description']}（样本{cid}）"}, shift)
        iraw, idone = t["instance"][0]
        emit("instance", iraw, idone, {"id": iid, "business_key": case_no}, shift)
        for w, wd in t["items"]:
            emit("items", w, wd, {"instance_id": iid, "task_guid": str(uuid.uuid4()),
                                  "unit_id": units.get(w["unit_id"], w["unit_id"]), "user_id": remap(w["user_id"]),
                                  "closed_by": remap(w["closed_by"])}, shift)
        for e, ed in t["events"]:
            emit("events", e, ed, {"instance_id": iid, "actor": remap(e["actor"])}, shift)
        for r, rd in t["records"]:
            emit("records", r, rd, {"case_id": cid, "actor": remap(r["actor"]),
                                    "unit_code": units.get(r["unit_code"], r["unit_code"])}, shift)
        if (i + 1) % web_bench.CHUNK == 0:
            flush()
            print(f"\r  cases {i + 1:>7}/{n} ({time.monotonic() - t0:.0f}s)", end="", file=sys.stderr, flush=True)
    flush()
    if dialect.name == "postgresql":  # the ids were given: move the sequences past them
        with db.write() as s:
            for t in ("dispute_case", "instance"):
                s.connection().exec_driver_sql(
                    f"SELECT setval(pg_get_serial_sequence('{t}', 'id'), (SELECT max(id) FROM {t}))")
    print(f"\r  cases {n:>7}/{n} ({time.monotonic() - t0:.0f}s)", file=sys.stderr)


# ---- scratch database ----------------------------------------------------------------------
class Scratch:
    """Scratch databases of one dialect that nothing else uses: one per scale, each larger one a
    copy of the one before, grown (so both scales are served at once and measured interleaved)."""

    def __init__(self, dialect: str, tmp: Path):
        self.dialect, self.tmp, self.names = dialect, tmp, []
        self.base = f"gridflow_citybench_{os.getpid()}"

    def _admin(self):
        import psycopg
        return psycopg.connect(PG_ADMIN, autocommit=True)

    def url(self, i: int) -> str:
        if self.dialect == "sqlite":
            return f"sqlite:///{self.tmp / f'city_{i}.sqlite'}"
        return PG_ADMIN.rsplit("/", 1)[0] + f"/{self.base}_{i}"

    def create(self, i: int, copy_of: int | None = None) -> str:
        """Database i: empty, or a copy of database `copy_of` (whose connections must be closed)."""
        if self.dialect == "sqlite":
            if copy_of is not None:
                src = self.tmp / f"city_{copy_of}.sqlite"
                with sqlite3.connect(src) as c:
                    c.execute("PRAGMA wal_checkpoint(TRUNCATE)")
                shutil.copyfile(src, self.tmp / f"city_{i}.sqlite")
            return self.url(i)
        name = f"{self.base}_{i}"
        with self._admin() as c:
            c.execute(f'DROP DATABASE IF EXISTS "{name}"')
            tpl = f' TEMPLATE "{self.base}_{copy_of}"' if copy_of is not None else ""
            c.execute(f'CREATE DATABASE "{name}"{tpl}')
        self.names.append(name)
        return self.url(i)

    def drop(self) -> None:
        if self.dialect == "postgresql":
            with self._admin() as c:
                for name in self.names:
                    c.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


# ---- building --------------------------------------------------------------------------------
class Recorder:
    """What the service layer hands the engine (start data, each completion's data), so the thin
    loop replays exactly the same process path with the same data."""

    def __init__(self, rt):
        self.rt, self.calls = rt, []
        self._start, self._complete = rt.start, rt.complete

        def start(process_id, data=None, **kw):
            step = self._start(process_id, data, **kw)
            self.calls.append(("start", step.instance_id, None, dict(data or {})))
            return step

        def complete(iid, guid, data, **kw):
            self.calls.append(("complete", iid, guid, dict(data)))
            return self._complete(iid, guid, data, **kw)
        rt.start, rt.complete = start, complete

    def stop(self) -> None:
        del self.rt.start, self.rt.complete

    def script(self, db: Database, instance_id: int) -> tuple[dict, list[tuple[str, dict]]]:
        """(start data, [(task spec, data)...]) of one instance."""
        start = next(d for k, i, _g, d in self.calls if k == "start" and i == instance_id)
        steps = []
        with db.read() as s:
            for k, i, g, d in self.calls:
                if k == "complete" and i == instance_id:
                    steps.append((s.scalar(select(WorkItem.task_spec).where(WorkItem.task_guid == g)), d))
        return start, steps


def build(db: Database, size: str, n_open: int, n_archived: int, bundle_dirs: tuple[Path, Path]) -> dict:
    """The demo city, the template cases (recorded for the thin loop) and the first scale."""
    upgrade(db)
    settings = Settings(database_url=db.url_with_password, workflows=bundle_dirs[0], forms=bundle_dirs[1])
    svc = Services.build(settings, db=db)
    t0 = time.monotonic()
    with db.write() as s:
        deploy(s, Bundle.from_dirs(*bundle_dirs), actor="bench")
    counts = demo.generate(db, size=size)
    registry_demo.fill(svc, size=size)
    print(f"  demo city ({size}): {counts.get('grid')} grids, {counts.get('staff')} staff, registry "
          f"({time.monotonic() - t0:.0f}s)", file=sys.stderr)
    rec = Recorder(svc.runtime)
    tpl = web_bench.templates(svc)
    rec.stop()
    with db.read() as s:
        iid = s.get(DisputeCase, tpl["archived"]).instance_id
    state = {"svc": svc, "tpl": tpl, "thin_script": rec.script(db, iid), "n_open": 0, "n_arch": 0, "seed": 7}
    grow(state, n_open, n_archived)
    return state


def grow(state: dict, n_open: int, n_archived: int) -> None:
    """Clone cases until there are n_open open and n_archived archived ones, then refill the
    derived indexes for the new cases."""
    svc, db = state["svc"], state["svc"].db
    add_open, add_arch = n_open - state["n_open"], n_archived - state["n_arch"]
    share = add_open / (add_open + add_arch)
    web_bench.STAGES = {"reported": share * 0.3, "dispatched": share * 0.35, "escalated": share * 0.2,
                        "resolved": share * 0.15, "archived": (1 - share) * 0.75, "on_spot": (1 - share) * 0.25}
    with db.read() as s:
        first = s.scalar(select(func.max(DisputeCase.id))) + 1
    t0 = time.monotonic()
    n = add_open + add_arch - (len(state["tpl"]) if state["n_open"] == 0 else 0)
    fast_clone(svc, state["tpl"], n, 0.03, seed=state["seed"])
    state["seed"] += 1
    state["n_open"], state["n_arch"] = n_open, n_archived
    print(f"  cloned {n} cases in {time.monotonic() - t0:.0f}s", file=sys.stderr)
    t0 = time.monotonic()
    with db.write() as s:
        late_index.rebuild(s)
        index_archive(s, first)
        rids = list(s.scalars(select(Resident.id)))
        rng = random.Random(state["seed"])
        cids = list(s.scalars(select(DisputeCase.id).where(DisputeCase.id >= first)))
        links = {(rng.choice(rids), c) for c in cids if rng.random() < 0.5}
        rows = [{"resident_id": r, "case_id": c} for r, c in links]
        for i in range(0, len(rows), 5000):
            s.execute(insert(CaseParty.__table__), rows[i:i + 5000])
    with db.write() as s:
        s.connection().exec_driver_sql("ANALYZE")
    print(f"  derived indexes in {time.monotonic() - t0:.0f}s", file=sys.stderr)


def index_archive(s, first: int) -> None:
    """grid.cases.search.rebuild in bulk: the same rows (seq in archive order, the same tokens),
    a few thousand per statement instead of one."""
    todo = s.execute(select(DisputeCase.id, DisputeCase.case_no, DisputeCase.description, DisputeCase.location_text,
                            DisputeCase.unit_path)
                     .where(DisputeCase.status == "archived", DisputeCase.id >= first,
                            DisputeCase.id.not_in(select(CaseSearch.case_id)))
                     .order_by(DisputeCase.archived_at, DisputeCase.id)).all()
    pg = s.bind.dialect.name == "postgresql"
    seq = s.scalar(select(func.coalesce(func.max(CaseSearch.seq), 0)))
    for i in range(0, len(todo), 5000):
        chunk = todo[i:i + 5000]
        toks = [search.archive_tokens(path, no, d, loc) for _cid, no, d, loc, path in chunk]
        if pg:
            stmt = insert(CaseSearch.__table__).values(
                case_id=bindparam("cid"), tsv=func.to_tsvector(literal_column("'simple'"), bindparam("tok")))
            s.execute(stmt, [{"cid": c[0], "tok": t} for c, t in zip(chunk, toks, strict=True)])
        else:
            rows = [{"seq": seq + j + 1, "case_id": c[0]} for j, c in enumerate(chunk)]
            s.execute(insert(CaseSearch.__table__), rows)
            s.execute(insert(search._fts), [{"rowid": r["seq"], "tokens": t} for r, t in zip(rows, toks, strict=True)])
        seq += len(chunk)


# ---- HTTP ------------------------------------------------------------------------------------
def free_port() -> int:
    with socket.socket() as sk:
        sk.bind(("127.0.0.1", 0))
        return sk.getsockname()[1]


class Client:
    """A signed-in browser: cookie jar, CSRF token of the session."""

    def __init__(self, base: str, username: str | None):
        self.base, self.token, self.last_bytes = base, None, 0
        self.op = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(http.cookiejar.CookieJar()))
        if username:
            html = self.op.open(base + "/login").read().decode()
            token = re.search(r'name="csrf_token" value="([^"]+)"', html).group(1)
            data = urllib.parse.urlencode({"username": username, "password": DEMO_PASSWORD, "csrf_token": token})
            html = self.op.open(base + "/login", data.encode()).read().decode()
            self.token = re.search(r'name="csrf_token" value="([^"]+)"', html).group(1)

    def get(self, url: str) -> float:
        t0 = time.perf_counter()
        r = self.op.open(self.base + url)
        self.last_bytes = len(r.read())  # a page that grows shows more rows (a list not yet full)
        assert r.status == 200, (url, r.status)
        return (time.perf_counter() - t0) * 1000

    def post(self, url: str, data: dict) -> tuple[float, str]:
        """POST, following the redirect; (ms, final path)."""
        body = urllib.parse.urlencode({**data, "csrf_token": self.token}, doseq=True).encode()
        t0 = time.perf_counter()
        r = self.op.open(self.base + url, body)
        r.read()
        ms = (time.perf_counter() - t0) * 1000
        assert r.status == 200, (url, r.status)
        return ms, urllib.parse.urlparse(r.geturl()).path


class Server:
    """`gridflow serve --production` on a free port; its log in the temp dir."""

    def __init__(self, url: str, tmp: Path, bundle_dirs: tuple[Path, Path]):
        self.port = free_port()
        env = {k: v for k, v in os.environ.items() if not k.startswith("GRIDFLOW_")}
        env.update(GRIDFLOW_DATABASE_URL=url, GRIDFLOW_ENV="production", GRIDFLOW_SECRET_KEY="b" * 48,
                   GRIDFLOW_DATA_KEY=os.environ["GRIDFLOW_DATA_KEY"], GRIDFLOW_WORKERS="2",
                   GRIDFLOW_BIND=f"127.0.0.1:{self.port}", GRIDFLOW_UPLOADS=str(tmp / "uploads"),
                   GRIDFLOW_WORKFLOWS=str(bundle_dirs[0]), GRIDFLOW_FORMS=str(bundle_dirs[1]),
                   PYTHONPATH=str(ROOT))  # serve this tree (a snapshot when run from one)
        self.logpath = tmp / "gunicorn.log"
        self.log = open(self.logpath, "a")  # noqa: SIM115 - closed in stop()
        self.p = subprocess.Popen([*GRIDFLOW, "serve", "--production"], env=env, cwd=ROOT, stdout=self.log,
                                  stderr=self.log, start_new_session=True)
        self.base = f"http://127.0.0.1:{self.port}"
        for _ in range(300):
            try:
                if json.loads(urllib.request.urlopen(self.base + "/healthz").read())["db_ok"]:
                    return
            except (OSError, ValueError):
                if self.p.poll() is not None:
                    raise RuntimeError(f"gunicorn exited; see {self.logpath}") from None
                time.sleep(0.2)
        raise RuntimeError(f"gunicorn did not come up; see {self.logpath}")

    def stop(self) -> None:
        self.p.terminate()
        try:
            self.p.wait(30)
        except subprocess.TimeoutExpired:
            self.p.kill()
        self.log.close()


def pages(db: Database) -> list[tuple[str, str | None, list[str]]]:
    """(label, user, urls) of each measured page."""
    with db.read() as s:
        busy = list(s.scalars(select(DisputeCase.id).where(DisputeCase.unit_path.like(f"%/{STREET}/%"),
                                                           DisputeCase.escalations > 0,
                                                           DisputeCase.status == "open").limit(20)))
        rid = s.scalar(select(CaseParty.resident_id).join(Resident, Resident.id == CaseParty.resident_id)
                       .where(Resident.grid_code == demo.SEED_GRID).limit(1))
    return [("floor /healthz", None, ["/healthz"]),
            ("floor /settings", "jiangranran", ["/settings"]),
            ("inbox (grid worker)", "jiangranran", ["/", "/?page=2"]),
            ("inbox (village head)", "qiuyun", ["/", "/?state=overdue"]),
            ("case page (timeline)", f"disp1.{STREET}", [f"/cases/{c}" for c in busy]),
            ("late list county", f"sup.{COUNTY}", ["/late"]),
            ("late list city", f"sup.{CITY}", ["/late"]),
            ("archive search city", f"sup.{CITY}", [f"/archive?q={quote('雨污')}", f"/archive?q={quote('居民')}"]),
            ("archive search village", "qiuyun", [f"/archive?q={quote('雨污')}", f"/archive?q={quote('居民')}"]),
            ("resident page", "jiangranran", [f"/registry/resident/{rid}"]),
            ("registry grid page", "jiangranran", [f"/registry/grid/{demo.SEED_GRID}"]),
            ("dashboard city", f"sup.{CITY}", [f"/dashboard/{CITY}"]),
            ("dashboard county", f"sup.{CITY}", [f"/dashboard/{COUNTY}"]),
            ("open cases county, overdue", f"sup.{COUNTY}", ["/cases/open?state=overdue", "/cases/open?page=2"]),
            ("my reports (grid worker)", "jiangranran", ["/cases/mine"]),
            ("map cases county", f"sup.{COUNTY}", ["/map/cases.json"])]


def measure_pages(servers: list[Server], dbs: list[Database], runs: int) -> list[dict[str, list[float]]]:
    """Each page on every scale's server, requests interleaved (one at a time, the scale order
    alternating) so that the machine's changing load falls on all scales alike."""
    out: list[dict[str, list[float]]] = [{} for _ in servers]
    plans = [pages(db) for db in dbs]
    for p, (label, user, _urls) in enumerate(plans[0]):
        clients = [Client(srv.base, user) for srv in servers]
        urls = [plan[p][2] for plan in plans]
        for k, c in enumerate(clients):
            for u in urls[k] * 2 + urls[k][:2]:  # warm both workers
                try:
                    c.get(u)
                except urllib.error.HTTPError as e:
                    raise RuntimeError(f"{label} {u}: HTTP {e.code}; see {servers[k].logpath}") from None
        times: list[list[float]] = [[] for _ in servers]
        sizes: list[list[int]] = [[] for _ in servers]
        for i in range(runs):
            order = range(len(servers)) if i % 2 == 0 else reversed(range(len(servers)))
            for k in order:
                times[k].append(clients[k].get(urls[k][i % len(urls[k])]))
                sizes[k].append(clients[k].last_bytes)
        for k, t in enumerate(times):
            out[k][label] = [*p50_p95(t), round(statistics.mean(sizes[k]) / 1024, 1)]  # p50, p95 ms; KB
        print(f"    {label:<24} " + "  ".join(f"p50 {o[label][0]:7.1f} p95 {o[label][1]:7.1f} {o[label][2]:6.1f} KB"
                                               for o in out), file=sys.stderr)
    return out


# ---- the whole-case flow: HTTP against the thin loop -------------------------------------------
FLOW_REPORT = {"grid": demo.SEED_GRID, "category": "municipal", "description": web_bench.REPORT["description"],
               "location.text": "襄城区檀溪社区南山家属院", "location.lat": "32.0213", "location.lng": "112.1432",
               "parties.0.name": "南山家属院居民代表", "parties.0.phone": "13800000001",
               "parties.1.name": "雨污分流改造施工方", "parties.1.phone": "13800000002"}


class HttpFlow:
    """One whole case over HTTP: report and every task POST (dispatch, 2x mediate, street dispatch,
    2x mediate, verify), redirects followed, no other page views. Which task and lock version to
    post is read from the database outside the timing (a user would have it on the page they came
    from)."""

    def __init__(self, srv: Server, db: Database):
        users = ["jiangranran", "qiuyun", f"med1.{VILLAGE}", f"med2.{VILLAGE}", f"disp1.{STREET}",
                 f"med1.{STREET}", f"med2.{STREET}"]
        self.db, self.cl = db, {u: Client(srv.base, u) for u in users}
        with db.read() as s:
            self.sid = {u: s.scalar(select(Staff.id).where(Staff.username == u)) for u in users}
        sid = self.sid
        self.steps = [
            ("dispatch", "qiuyun", False, {"action": "dispatch", "dispatch_note": "请调解",
                                           "assignees": [sid[f"med1.{VILLAGE}"], sid[f"med2.{VILLAGE}"]]}),
            ("mediate", f"med1.{VILLAGE}", True, {"outcome": "cannot_resolve", "notes": "协调无果"}),
            ("mediate", f"med2.{VILLAGE}", True, {"outcome": "cannot_resolve", "notes": "协调无果"}),
            ("dispatch", f"disp1.{STREET}", False, {"action": "dispatch",
                                                    "assignees": [sid[f"med1.{STREET}"], sid[f"med2.{STREET}"]]}),
            ("mediate", f"med1.{STREET}", True, {"outcome": "resolved", "notes": "已化解"}),
            ("mediate", f"med2.{STREET}", True, {"outcome": "resolved", "notes": "已化解"}),
            ("verify", "jiangranran", False, {"satisfied": "true", "signature": "江冉冉", "notes": "满意"})]

    def _task(self, case_id: int, spec: str, user: str | None) -> tuple[str, int]:
        with self.db.read() as s:
            c = s.get(DisputeCase, case_id)
            q = select(WorkItem.task_guid).where(WorkItem.instance_id == c.instance_id, WorkItem.state == "open",
                                                 WorkItem.task_spec == spec)
            if user:
                q = q.where(WorkItem.user_id == self.sid[user])
            guid = s.scalars(q.order_by(WorkItem.id)).first()
            lock = s.scalar(select(Instance.lock_version).where(Instance.id == c.instance_id))
        assert guid, (case_id, spec, user)
        return guid, lock

    def one(self) -> float:
        """ms of the HTTP requests of one case (the database look-ups between them not counted)."""
        total, path = self.cl["jiangranran"].post("/report", FLOW_REPORT)
        m = re.fullmatch(r"/cases/(\d+)", path)
        assert m, path
        cid = int(m.group(1))
        for spec, user, own, data in self.steps:
            guid, lock = self._task(cid, spec, user if own else None)
            ms, _ = self.cl[user].post(f"/tasks/{guid}", {**data, "lock_version": str(lock)})
            total += ms
        with self.db.read() as s:
            status = s.get(DisputeCase, cid).status
        assert status == "archived", (cid, status)
        return total


class Thin:
    """Plain SpiffWorkflow + one row per instance for the dispute process (engine_bench's thin loop
    on the real BPMN/DMN): the floor a service layer is compared with. Scripts get `emit` (dropped),
    `now` and `workdays` (plain days): the helpers the process calls."""

    def __init__(self, dialect: str, url: str, workflows: Path):
        from SpiffWorkflow.bpmn.script_engine import PythonScriptEngine, TaskDataEnvironment
        from SpiffWorkflow.bpmn.serializer import BpmnWorkflowSerializer
        from SpiffWorkflow.spiff.parser.process import SpiffBpmnParser
        from SpiffWorkflow.spiff.serializer.config import SPIFF_CONFIG
        parser = SpiffBpmnParser()
        for f in sorted(workflows.glob("*.bpmn")):
            parser.add_bpmn_file(str(f))
        for f in sorted(workflows.glob("*.dmn")):
            parser.add_dmn_file(str(f))
        self.spec = parser.get_spec("dispute_case")
        self.subs = parser.get_subprocess_specs("dispute_case")
        env = {"emit": lambda *a, **k: None, "now": lambda: clock.now().isoformat(),
               "workdays": lambda n: (clock.now() + timedelta(days=int(n))).isoformat(),
               "days_after": lambda d, n: d}
        self.engine = PythonScriptEngine(environment=TaskDataEnvironment(env))
        self.ser = BpmnWorkflowSerializer(BpmnWorkflowSerializer.configure(SPIFF_CONFIG))
        self.sqlite = dialect == "sqlite"
        if self.sqlite:
            import sqlite3
            self.conn = sqlite3.connect(url.removeprefix("sqlite:///"), isolation_level=None, timeout=30)
            self.conn.execute("PRAGMA journal_mode=WAL")
            self.conn.execute("PRAGMA synchronous=NORMAL")
            self.conn.execute("CREATE TABLE IF NOT EXISTS thin_instance (id INTEGER PRIMARY KEY, state_json TEXT NOT NULL)")
            self.q = "?"
        else:
            import psycopg
            self.conn = psycopg.connect(url, autocommit=True)
            self.conn.execute("CREATE TABLE IF NOT EXISTS thin_instance (id BIGSERIAL PRIMARY KEY, state_json TEXT NOT NULL)")
            self.q = "%s"

    def _tx(self, fn):
        if self.sqlite:
            self.conn.execute("BEGIN IMMEDIATE")
            try:
                r = fn()
            except BaseException:
                self.conn.execute("ROLLBACK")
                raise
            self.conn.execute("COMMIT")
            return r
        with self.conn.transaction():
            return fn()

    def instance(self, start: dict, steps: list[tuple[str, dict]]) -> float:
        """ms for one instance: start, then each completion in its own transaction."""
        from SpiffWorkflow.bpmn.workflow import BpmnWorkflow
        from SpiffWorkflow.util.task import TaskState
        t0 = time.perf_counter()

        def do_start():
            wf = BpmnWorkflow(self.spec, self.subs, script_engine=self.engine)
            wf.get_tasks(state=TaskState.READY)[0].data.update(start)
            wf.do_engine_steps()
            return self.conn.execute(f"INSERT INTO thin_instance (state_json) VALUES ({self.q}) RETURNING id",
                                     (self.ser.serialize_json(wf),)).fetchone()[0]
        iid = self._tx(do_start)
        wf = None
        for spec, data in steps:
            def do_step(spec=spec, data=data):
                js = self.conn.execute(f"SELECT state_json FROM thin_instance WHERE id = {self.q}", (iid,)).fetchone()[0]
                wf = self.ser.deserialize_json(js)
                wf.script_engine = self.engine
                ready = [t for t in wf.get_tasks(state=TaskState.READY, manual=True) if t.task_spec.bpmn_id == spec]
                assert ready, (spec, [t.task_spec.bpmn_id for t in wf.get_tasks(state=TaskState.READY)])
                task = ready[0]
                props = (task.task_spec.extensions or {}).get("properties", {}) or {}
                if props.get("result"):  # as engine.runtime does: the form data under the result name
                    task.data[props["result"]] = data
                else:
                    task.data.update(data)
                task.run()
                wf.refresh_timers()
                wf.do_engine_steps()
                self.conn.execute(f"UPDATE thin_instance SET state_json = {self.q} WHERE id = {self.q}",
                                  (self.ser.serialize_json(wf), iid))
                return wf
            wf = self._tx(do_step)
        assert wf is not None and wf.is_completed(), "thin instance did not complete"
        return (time.perf_counter() - t0) * 1000

    def close(self) -> None:
        self.conn.close()


# ---- report ----------------------------------------------------------------------------------
def p50_p95(xs: list[float]) -> list[float]:
    xs = sorted(xs)
    return [round(statistics.median(xs), 1), round(xs[max(0, int(len(xs) * 0.95) - 1)], 1)]


def verdict(results: dict, keys: list[int]) -> tuple[list[str], bool]:
    lo, hi = results[keys[0]]["pages"], results[keys[-1]]["pages"]
    floor = hi[FLOOR][0]
    lines = [f"{'page':<24} " + " ".join(f"{'p50@' + str(k):>10} {'p95@' + str(k):>10}" for k in keys)
             + f" {'growth':>7} {'x floor':>8} {'KB':>13}  verdict"]
    ok = True
    for label in hi:
        row = " ".join(f"{results[k]['pages'][label][0]:10.1f} {results[k]['pages'][label][1]:10.1f}" for k in keys)
        g, x = hi[label][0] / lo[label][0], hi[label][0] / floor
        kb = f"{lo[label][2]:.0f}->{hi[label][2]:.0f}" if len(hi[label]) > 2 else "-"
        if label.startswith("floor "):  # the references: their own growth is noise
            lines.append(f"{label:<24} {row} {g:6.2f}x {x:7.1f}x {kb:>13}  (reference)")
            continue
        good_g, good_x = g <= TARGETS["growth_max"], x <= TARGETS["floor_ratio_max"]
        ok &= good_g and good_x
        lines.append(f"{label:<24} {row} {g:6.2f}x {x:7.1f}x {kb:>13}  growth {'PASS' if good_g else 'MISS'}, "
                     f"x floor {'PASS' if good_x else 'MISS'}")
    for k in keys:
        f, t = results[k]["flow_ms"], results[k]["thin_ms"]
        r = f[0] / t[0]
        good = r <= TARGETS["flow_thin_max"]
        if k == keys[-1]:
            ok &= good
        lines.append(f"flow@{k}: HTTP per case p50 {f[0]:.0f} ms (p95 {f[1]:.0f}); thin loop p50 {t[0]:.0f} ms "
                     f"(p95 {t[1]:.0f}); ratio {r:.2f}x (target <= {TARGETS['flow_thin_max']}x) "
                     f"{'PASS' if good else 'MISS'}")
    return lines, ok


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--scale", type=int, default=1000, help="N: open cases at the small scale (10·N archived)")
    ap.add_argument("--scale2", type=int, default=5000, help="N at the large scale")
    ap.add_argument("--size", choices=["full", "small"], default="small")
    ap.add_argument("--full", action="store_true", help="also a third scale: 100k open, 1M archived")
    ap.add_argument("--db", choices=["sqlite", "postgresql"], default="sqlite")
    ap.add_argument("--runs", type=int, default=40)
    ap.add_argument("--flows", type=int, default=15, help="whole cases through HTTP and through the thin loop")
    ap.add_argument("--workflows", type=Path, default=ROOT / "workflows")
    ap.add_argument("--forms", type=Path, default=ROOT / "forms")
    ap.add_argument("--out", type=Path, help="write the results here (JSON)")
    args = ap.parse_args()
    # production refuses to open sealed personal data without a key: one key for the build and gunicorn
    os.environ["GRIDFLOW_DATA_KEY"] = base64.b64encode(secrets.token_bytes(32)).decode()
    bundle = (args.workflows.resolve(), args.forms.resolve())
    tmp = Path(tempfile.mkdtemp(prefix=f"gridflow_citybench_{os.getpid()}_"))
    scales = [(args.scale, 10 * args.scale), (args.scale2, 10 * args.scale2)]
    if args.full:
        scales.append((100_000, 1_000_000))
    load = os.getloadavg()
    started = time.monotonic()
    scratch = Scratch(args.db, tmp)
    dbs: list[Database] = []
    results: dict[int, dict] = {}
    state = None
    failed = True
    servers: list[Server] = []
    try:
        for i, (n_open, n_arch) in enumerate(scales):
            print(f"scale N={n_open}: {n_open} open + {n_arch} archived ({args.size} city, {args.db})", file=sys.stderr)
            t0 = time.monotonic()
            if state is None:
                dbs.append(Database(scratch.create(0)))
                state = build(dbs[0], args.size, n_open, n_arch, bundle)
            else:
                dbs[-1].dispose()
                dbs.append(Database(scratch.create(i, copy_of=i - 1)))
                settings = Settings(database_url=dbs[-1].url_with_password, workflows=bundle[0], forms=bundle[1])
                state["svc"] = Services.build(settings, db=dbs[-1])
                grow(state, n_open, n_arch)
            results[n_open] = {"build_s": round(time.monotonic() - t0)}
        for db in dbs:
            db.dispose()
        servers = [Server(scratch.url(i), tmp, bundle) for i in range(len(scales))]
        keys = list(results)
        print(f"measuring pages (load {os.getloadavg()[0]:.2f})", file=sys.stderr)
        for k, res in zip(keys, measure_pages(servers, dbs, args.runs), strict=True):
            results[k]["pages"] = res
            results[k]["load_at_pages"] = os.getloadavg()
        # the whole-case flow: one HTTP case, then one thin instance, on each scale, alternating
        start, steps = state["thin_script"]
        for i, k in enumerate(keys):
            flow = HttpFlow(servers[i], dbs[i])
            thin = Thin(args.db, scratch.url(i), bundle[0])
            try:
                for _ in range(2):
                    flow.one()
                    thin.instance(start, steps)
                f_ms, t_ms = [], []
                for j in range(args.flows):
                    if j % 2 == 0:
                        f_ms.append(flow.one())
                        t_ms.append(thin.instance(start, steps))
                    else:
                        t_ms.append(thin.instance(start, steps))
                        f_ms.append(flow.one())
            finally:
                thin.close()
            results[k].update(flow_ms=p50_p95(f_ms), thin_ms=p50_p95(t_ms), load_at_flow=os.getloadavg())
            print(f"    N={k}: HTTP flow p50 {results[k]['flow_ms'][0]:.0f} ms, thin loop p50 "
                  f"{results[k]['thin_ms'][0]:.0f} ms", file=sys.stderr)
        keys = list(results)
        lines, ok = verdict(results, keys)
        head = (f"city_bench: {args.db}, {args.size} city, scales {scales}, {args.runs} requests per page, "
                f"{args.flows} flows; load average at start {load[0]:.2f} {load[1]:.2f} {load[2]:.2f} "
                f"({os.cpu_count()} cores); at each measurement "
                + ", ".join(f"N={k}: pages {results[k]['load_at_pages'][0]:.2f}, flow {results[k]['load_at_flow'][0]:.2f}"
                            for k in keys)
                + f"; total {time.monotonic() - started:.0f}s")
        print("\n" + head + "\n" + "\n".join(lines))
        if args.out:
            args.out.write_text(json.dumps({"load_at_start": load, "cpus": os.cpu_count(), "db": args.db,
                                            "size": args.size, "scales": scales, "targets": TARGETS,
                                            "results": results, "table": [head, *lines], "pass": ok},
                                           ensure_ascii=False, indent=1))
        failed = False
        sys.exit(0 if ok else 1)
    finally:
        for srv in servers:
            srv.stop()
        for db in dbs:
            db.dispose()
        scratch.drop()
        if failed:
            print(f"kept {tmp} (gunicorn.log)", file=sys.stderr)
        else:
            shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
