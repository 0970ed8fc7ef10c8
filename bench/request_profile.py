"""Where one request's time goes, page by page: SQL statements per request, ms per request against
the floor page, and cProfile's top functions. In process, through Flask's test client (session,
sign-in check, CSRF, form build, validation, step, redirect, page render), on the small demo city
in a scratch SQLite file (or --pg, a scratch database on that server).

    .venv/bin/python -m bench.request_profile                 # times + statement counts
    .venv/bin/python -m bench.request_profile --profile       # + cProfile top functions per page
    .venv/bin/python -m bench.request_profile --sql           # + each page's statements, with the line that issued them
    .venv/bin/python -m bench.request_profile --pg postgresql://postgres@127.0.0.1:5432/test

Pages, for a village head (qiuyun, grid head of 420602003005) and a grid worker (jiangranran):
the inbox (/), a task page (GET /tasks/<guid>), a task POST (the head dispatches, the worker
verifies) and the case page (/cases/<id>). The floor pages are /healthz and /settings (reads no
case data); ratios are to /settings. The wall time is a median; the CPU time (this process: the
test client, the app and SQLite) is the steadier figure on a shared machine.
"""
from __future__ import annotations

import argparse
import cProfile
import io
import pstats
import re
import shutil
import statistics
import tempfile
import time
import traceback
from pathlib import Path

from sqlalchemy import event, select

ROOT = Path(__file__).resolve().parent.parent
TOKEN = re.compile(r'name="csrf_token" value="([^"]+)"')
LOCK = re.compile(r'name="lock_version" value="(\d+)"')
ASSIGNEE = re.compile(r'name="assignees"[^>]*value="([^"]+)"|value="([^"]+)"[^>]*name="assignees"')
HEAD, WORKER = "qiuyun", "jiangranran"
VILLAGE = "420602003005"
OWN_CODE = ("/web/", "/grid/", "/engine/")


def setup(url: str):
    from engine.deploy import Bundle
    from engine.migrate import upgrade
    from engine.versions import deploy_bundle
    from grid.config import Settings
    from grid.org import demo
    from grid.services import Services
    from web import create_app

    settings = Settings(database_url=url)
    svc = Services.build(settings)
    upgrade(svc.db)
    deploy_bundle(svc.db, Bundle.from_dirs(ROOT / "workflows", ROOT / "forms"), actor="bench", tag="bench",
                  activate=True, source="workflows")
    demo.generate(svc.db, size="small")
    settings.secret_key = "profile-secret"
    app = create_app(settings, services=svc, TESTING=False)
    return svc, app


def login(app, username: str):
    from grid.org.passwords import DEMO_PASSWORD

    c = app.test_client()
    token = TOKEN.search(c.get("/login").get_data(as_text=True)).group(1)
    r = c.post("/login", data={"username": username, "password": DEMO_PASSWORD, "csrf_token": token})
    assert r.status_code == 302, r.status_code
    return c


def dispatch_tasks(svc, n: int) -> list[str]:
    from bench.serve_bench import new_dispatch_tasks

    return new_dispatch_tasks(svc, n)


def _staff_id(svc, username: str) -> str:
    from grid.org.models import Staff

    with svc.db.read() as s:
        return s.scalar(select(Staff.id).where(Staff.username == username))


def _open_task(svc, instance_id: int, spec: str, user: str | None = None) -> str:
    from engine.models import WorkItem

    with svc.db.read() as s:
        q = select(WorkItem.task_guid).where(WorkItem.instance_id == instance_id, WorkItem.state == "open",
                                             WorkItem.task_spec == spec)
        if user:
            q = q.where(WorkItem.user_id == user)
        return s.scalars(q.order_by(WorkItem.id)).first()


def verify_tasks(svc, n: int) -> list[tuple[str, int]]:
    """n cases driven through the service to the grid worker's on-site verification (dispatch, two
    village mediators resolve): (verify task guid, case id) of each."""
    from grid.cases import service as cases
    from grid.cases.models import DisputeCase

    dispatch = dispatch_tasks(svc, n)
    head = _staff_id(svc, HEAD)
    meds = [_staff_id(svc, f"med{i}.{VILLAGE}") for i in (1, 2)]
    out = []
    for guid in dispatch:
        wi = cases.work_item(svc, head, guid)
        cases.complete_task(svc, head, guid, {"action": "dispatch", "dispatch_note": "请调解", "assignees": meds})
        for m in meds:
            cases.complete_task(svc, m, _open_task(svc, wi.instance_id, "mediate", m),
                                {"outcome": "resolved", "notes": "已化解"})
        v = _open_task(svc, wi.instance_id, "verify")
        assert v, "no verify task after two resolved mediations"
        with svc.db.read() as s:
            out.append((v, s.scalar(select(DisputeCase.id).where(DisputeCase.instance_id == wi.instance_id))))
    return out


class Counter:
    """SQL statements issued while `on`; with `where`, also the line of our code that issued each."""

    def __init__(self, engine, where: bool = False):
        self.n, self.on, self.seen, self.where = 0, False, {}, where
        event.listen(engine, "before_cursor_execute", self._count)

    def _count(self, conn, cursor, statement, *a):
        if not self.on:
            return
        self.n += 1
        key = " ".join(statement.split())[:110]
        if self.where:
            frames = [f for f in traceback.extract_stack()[:-1] if "site-packages" not in f.filename and any(p in f.filename for p in OWN_CODE)]
            if frames:
                f = frames[-1]
                key = f"{f.filename.split('/work/main/')[-1]}:{f.lineno} {f.name}  | {key}"
        self.seen[key] = self.seen.get(key, 0) + 1

    def count(self, fn) -> tuple[int, dict]:
        self.on, self.n, self.seen = True, 0, {}
        try:
            fn()
        finally:
            self.on = False
        return self.n, dict(self.seen)


def timed(fn, runs: int) -> tuple[float, float]:
    """(p50 wall ms, mean CPU ms of this process)."""
    xs = []
    c0 = time.process_time()
    for _ in range(runs):
        t0 = time.perf_counter()
        fn()
        xs.append((time.perf_counter() - t0) * 1000)
    return statistics.median(xs), (time.process_time() - c0) * 1000 / runs


def profile(fn, runs: int, top: int, label: str) -> None:
    pr = cProfile.Profile()
    pr.enable()
    for _ in range(runs):
        fn()
    pr.disable()
    for key in ("tottime", "cumulative"):
        out = io.StringIO()
        pstats.Stats(pr, stream=out).sort_stats(key).print_stats(top)
        print(f"---- {label}: by {key}, {runs} requests ----")
        print("\n".join(line for line in out.getvalue().splitlines() if line.strip())[:12000])


def ok(r, status: int = 200):
    assert r.status_code == status, (r.status_code, r.get_data(as_text=True)[:400])
    return r


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m bench.request_profile")
    ap.add_argument("--runs", type=int, default=60, help="requests per page timed (POSTs: at most 30)")
    ap.add_argument("--top", type=int, default=25)
    ap.add_argument("--pg", help="PostgreSQL server URL (a scratch database is created there)")
    ap.add_argument("--profile", action="store_true", help="cProfile top functions of each page")
    ap.add_argument("--sql", action="store_true", help="list each page's statements and where they come from")
    ap.add_argument("--only", help="profile/list only pages whose name contains this")
    args = ap.parse_args(argv)
    tmp = tempfile.mkdtemp(prefix="gridflow_profile_")
    pg_name = None
    if args.pg:
        from bench.demo_bench import _scratch

        url, pg_name, _ = _scratch(args.pg)
    else:
        url = f"sqlite:///{tmp}/profile.sqlite"
    try:
        svc, app = setup(url)
        posts = min(args.runs, 30)
        need = 1 + (posts - 2) + (10 if args.profile else 0) + 2  # POSTs counted, timed, profiled
        t0 = time.perf_counter()
        guids = dispatch_tasks(svc, 30 + need)  # the head's inbox: 30+ dispatch tasks
        verify = verify_tasks(svc, need)  # the worker's inbox: verify tasks
        print(f"(workload built in {time.perf_counter() - t0:.1f} s)")
        head, worker = login(app, HEAD), login(app, WORKER)
        for _ in range(5):  # warm: templates compiled, specs parsed, catalogs loaded
            for c in (head, worker):
                c.get("/"), c.get("/settings"), c.get("/healthz")
        assert "我的待办" in head.get("/").get_data(as_text=True)
        case_of_head = verify[-1][1]
        for c, g in ((head, guids[0]), (worker, verify[0][0])):
            ok(c.get(f"/tasks/{g}")), ok(c.get(f"/cases/{case_of_head}"))

        def prepared(client, guid: str, extra: dict):
            html = ok(client.get(f"/tasks/{guid}")).get_data(as_text=True)
            form = {"csrf_token": TOKEN.search(html).group(1), "lock_version": LOCK.search(html).group(1), **extra}
            if extra.get("action") == "dispatch":
                form["assignees"] = [a or b for a, b in ASSIGNEE.findall(html)][:2]
            return guid, form

        head_jobs = iter([prepared(head, g, {"action": "dispatch", "dispatch_note": "请调解"}) for g in guids[1:]])
        worker_jobs = iter([prepared(worker, g, {"satisfied": "true", "signature": "江冉冉", "notes": "满意"})
                            for g, _ in verify[1:]])

        def poster(client, jobs):
            def post():
                guid, form = next(jobs)
                ok(client.post(f"/tasks/{guid}", data=form), 302)
            return post

        pages = {
            "healthz": lambda: ok(head.get("/healthz")),
            "settings (floor)": lambda: ok(head.get("/settings")),
            "inbox, village head": lambda: ok(head.get("/")),
            "inbox, grid worker": lambda: ok(worker.get("/")),
            "task GET, village head": lambda: ok(head.get(f"/tasks/{guids[-1]}")),
            "task GET, grid worker": lambda: ok(worker.get(f"/tasks/{verify[-1][0]}")),
            "case page, village head": lambda: ok(head.get(f"/cases/{case_of_head}")),
            "case page, grid worker": lambda: ok(worker.get(f"/cases/{case_of_head}")),
            "task POST, village head": poster(head, head_jobs),
            "task POST, grid worker": poster(worker, worker_jobs),
        }
        counter = Counter(svc.db.engine, where=args.sql)
        counts = {name: counter.count(fn) for name, fn in pages.items()}
        times = {name: timed(fn, posts - 2 if "POST" in name else args.runs) for name, fn in pages.items()}
        floor, cpu_floor = times["settings (floor)"]
        print(f"{svc.db.engine.dialect.name}; {args.runs} GETs / {posts - 2} POSTs per page")
        print(f"{'request':26} {'p50 ms':>8} {'x floor':>8} {'CPU ms':>8} {'x floor':>8} {'SQL':>5}")
        for name, (ms, cpu) in times.items():
            print(f"{name:26} {ms:8.2f} {ms / floor:7.2f}x {cpu:8.2f} {cpu / cpu_floor:7.2f}x {counts[name][0]:5d}")
        chosen = [n for n in pages if not args.only or args.only in n]
        if args.sql:
            for name in chosen:
                n, seen = counts[name]
                print(f"-- {name}: {n} statements")
                for stmt, k in sorted(seen.items(), key=lambda kv: -kv[1]):
                    print(f"   {k:3d} x {stmt}")
        if args.profile:
            for name in chosen:
                if name != "healthz":
                    profile(pages[name], 10 if "POST" in name else args.runs, args.top, name)
        svc.db.dispose()
    finally:
        if pg_name:
            from bench.demo_bench import _drop

            _drop(args.pg, pg_name)
        shutil.rmtree(tmp, ignore_errors=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
