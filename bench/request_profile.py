"""Where one request's time goes: cProfile of an inbox GET and a task POST (dispatch), end to end
through Flask's test client (session, sign-in check, CSRF, form build, validation, step, redirect,
page render), on the small demo city in a scratch SQLite file (or --pg, a scratch database).

    .venv/bin/python -m bench.request_profile                 # time per request + top functions
    .venv/bin/python -m bench.request_profile --runs 200 --top 40
    .venv/bin/python -m bench.request_profile --pg postgresql://postgres@127.0.0.1:5432/test

Also counts the SQL statements each request issues (what is repeated per request shows up there
first). Prints the median ms of `/healthz`, `/settings`, the inbox and the POST, and their ratio to
`/settings` (the floor page that reads no case data).
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
from pathlib import Path

from sqlalchemy import event

ROOT = Path(__file__).resolve().parent.parent
TOKEN = re.compile(r'name="csrf_token" value="([^"]+)"')
LOCK = re.compile(r'name="lock_version" value="(\d+)"')
ASSIGNEE = re.compile(r'name="assignees"[^>]*value="([^"]+)"|value="([^"]+)"[^>]*name="assignees"')


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


class Counter:
    """SQL statements issued while `on`."""

    def __init__(self, engine):
        self.n, self.on, self.seen = 0, False, {}
        event.listen(engine, "before_cursor_execute", self._count)

    def _count(self, conn, cursor, statement, *a):
        if self.on:
            self.n += 1
            key = " ".join(statement.split())[:140]
            self.seen[key] = self.seen.get(key, 0) + 1


def timed(fn, runs: int) -> tuple[float, float]:
    """(p50 wall ms, mean CPU ms of this process): on a shared machine the CPU time is the
    steadier figure (the test client, the app and SQLite all run in this process)."""
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
    out = io.StringIO()
    pstats.Stats(pr, stream=out).sort_stats("tottime").print_stats(top)
    print(f"---- {label}: own time, {runs} requests ----")
    print("\n".join(line for line in out.getvalue().splitlines() if line.strip())[:12000])


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m bench.request_profile")
    ap.add_argument("--runs", type=int, default=100)
    ap.add_argument("--top", type=int, default=30)
    ap.add_argument("--pg", help="PostgreSQL server URL (a scratch database is created there)")
    ap.add_argument("--no-profile", action="store_true", help="only the times and statement counts")
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

        guids = dispatch_tasks(svc, args.runs * 2 + 20)
        head = login(app, "qiuyun")
        worker = login(app, "jiangranran")
        for _ in range(5):  # warm: templates compiled, specs parsed, catalogs loaded
            head.get("/"), head.get("/settings"), head.get("/healthz")
        assert "我的待办" in head.get("/").get_data(as_text=True)
        todo = iter(guids)

        def post():
            guid = next(todo)
            html = head.get(f"/tasks/{guid}").get_data(as_text=True)
            form = {"csrf_token": TOKEN.search(html).group(1), "lock_version": LOCK.search(html).group(1),
                    "action": "dispatch",
                    "assignees": [a or b for a, b in ASSIGNEE.findall(html)][:2]}
            return guid, form

        prepared = [post() for _ in range(args.runs * 2 + 10)]
        jobs = iter(prepared)

        def do_post():
            guid, form = next(jobs)
            r = head.post(f"/tasks/{guid}", data=form)
            assert r.status_code == 302, (r.status_code, r.get_data(as_text=True)[:400])

        counter = Counter(svc.db.engine)
        counts = {}
        for name, fn in (("healthz", lambda: head.get("/healthz")), ("settings", lambda: head.get("/settings")),
                         ("inbox (village head)", lambda: head.get("/")),
                         ("inbox (grid worker)", lambda: worker.get("/")), ("task POST", do_post)):
            counter.on, counter.n, counter.seen = True, 0, {}
            fn()
            counter.on = False
            counts[name] = (counter.n, dict(counter.seen))
        times = {"healthz": timed(lambda: head.get("/healthz"), args.runs),
                 "settings": timed(lambda: head.get("/settings"), args.runs),
                 "inbox (village head)": timed(lambda: head.get("/"), args.runs),
                 "inbox (grid worker)": timed(lambda: worker.get("/"), args.runs),
                 "task POST": timed(do_post, min(args.runs, 50))}
        floor, cpu_floor = times["settings"]
        print(f"{'request':24} {'p50 ms':>8} {'x /settings':>12} {'CPU ms':>8} {'x /settings':>12} {'SQL':>5}")
        for name, (ms, cpu) in times.items():
            print(f"{name:24} {ms:8.2f} {ms / floor:11.2f}x {cpu:8.2f} {cpu / cpu_floor:11.2f}x {counts[name][0]:5d}")
        for name, (n, seen) in counts.items():
            print(f"-- {name}: {n} statements")
            for stmt, k in sorted(seen.items(), key=lambda kv: -kv[1]):
                print(f"   {k:3d} x {stmt}")
        if not args.no_profile:
            profile(lambda: head.get("/settings"), args.runs, args.top, "settings GET (the floor page)")
            profile(lambda: head.get("/"), args.runs, args.top, "inbox GET (village head)")
            profile(do_post, min(args.runs, 50), args.top, "task POST (dispatch)")
        svc.db.dispose()
    finally:
        if pg_name:
            from bench.demo_bench import _drop

            _drop(args.pg, pg_name)
        shutil.rmtree(tmp, ignore_errors=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
