"""Serving benchmark: the inbox (GET /) and a task completion (POST of the dispatch form) through
gunicorn with 1, 2 and 4 workers and through the development server, in one run, on PostgreSQL.

    .venv/bin/python -m bench.serve_bench [--clients 4] [--inbox 160] [--tasks 40] [--workers 1,2,4]

A scratch database gridflow_servebench_<pid> gets the workflows and the small demo city (dropped
at the end). For each server, --tasks fresh cases are reported through the service layer, so the
grid head 邱云 has that many dispatch tasks; then a small pool of --clients threads, each signed
in as 邱云 over HTTP on 127.0.0.1 with its own keep-alive connection, sends a bounded number of
requests: --inbox inbox requests, then one dispatch POST per task (its CSRF token and lock
version read from the task page beforehand, outside the timing). Requests per second is the
number of requests over the phase's wall time; p50/p95 are per-request latencies. Results are
printed and saved to bench/results/serve-<date>.json with the load average (this machine is
shared: compare the ratios within one run, not numbers across runs).
"""
from __future__ import annotations

import argparse
import base64
import http.client
import json
import os
import re
import secrets
import statistics
import sys
import tempfile
import time
import urllib.parse
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import date
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from sqlalchemy import select  # noqa: E402

from bench._common import Scratch  # noqa: E402
from engine.db import Database  # noqa: E402
from engine.models import WorkItem  # noqa: E402
from grid.cases import service as cases  # noqa: E402
from grid.cases.models import DisputeCase  # noqa: E402
from grid.org import service as org  # noqa: E402
from grid.org.passwords import DEMO_PASSWORD  # noqa: E402
from tests.server_helpers import (  # noqa: E402
    GRIDFLOW,
    KEY,
    TOKEN,
    env_for,
    free_port,
    healthy,
    pg_base_url,
    started,
    until,
)

REPORT = {"category": "municipal", "description": "南山家属院雨污分流改造，居民担心雨水倒灌进楼道。",
          "location": {"text": "襄城区檀溪社区南山家属院", "lat": 32.0213, "lng": 112.1432},
          "parties": [{"name": "南山家属院居民代表", "phone": "13800000001"}], "settled_on_spot": False}
HEAD, WORKER = "qiuyun", "jiangranran"
LOCK = re.compile(r'name="lock_version" value="(\d+)"')
ASSIGNEE = re.compile(r'name="assignees" value="([^"]+)"')


class Session:
    """One client: a keep-alive connection and the session cookie of a sign-in as the grid head."""

    def __init__(self, port: int):
        self.port, self.cookie = port, ""
        self.conn = http.client.HTTPConnection("127.0.0.1", port, timeout=120)

    def request(self, method: str, path: str, form: dict | list | None = None) -> tuple[int, bytes, dict]:
        body = urllib.parse.urlencode(form, doseq=True).encode() if form is not None else None
        headers = {"Cookie": self.cookie} if self.cookie else {}
        if body is not None:
            headers["Content-Type"] = "application/x-www-form-urlencoded"
        for attempt in (1, 2):  # a connection the server closed (keep-alive timeout) is opened again
            try:
                self.conn.request(method, path, body=body, headers=headers)
                r = self.conn.getresponse()
                data = r.read()
                break
            except (http.client.RemoteDisconnected, ConnectionResetError, BrokenPipeError):
                self.conn.close()
                if attempt == 2:
                    raise
        for value in r.headers.get_all("Set-Cookie") or []:
            if value.startswith("gridflow_session="):
                self.cookie = value.split(";", 1)[0]
        if r.getheader("Connection", "").lower() == "close":
            self.conn.close()
        return r.status, data, dict(r.headers)

    def sign_in(self, username: str) -> None:
        _, page, _ = self.request("GET", "/login")
        token = TOKEN.search(page.decode()).group(1)
        status, _, headers = self.request("POST", "/login", {"username": username, "password": DEMO_PASSWORD,
                                                             "csrf_token": token})
        assert status == 302 and headers.get("Location", "").endswith("/"), (status, headers)


def stats(latencies: list[float], wall: float) -> dict:
    ms = sorted(x * 1000 for x in latencies)
    return {"n": len(ms), "rps": round(len(ms) / wall, 2), "p50_ms": round(statistics.median(ms), 1),
            "p95_ms": round(ms[max(0, int(len(ms) * 0.95 + 0.5) - 1)], 1), "wall_s": round(wall, 2)}


def run_phase(sessions: list[Session], jobs: list[Callable[[Session], float]]) -> dict:
    """Run the jobs on the client pool, job i on session i mod n (a form's CSRF token belongs to
    the session that read the page); per-request latencies over the phase's wall time."""
    n = len(sessions)

    def worker(i: int) -> list[float]:
        return [job(sessions[i]) for job in jobs[i::n]]

    t0 = time.perf_counter()
    with ThreadPoolExecutor(n) as pool:
        results = list(pool.map(worker, range(n)))
    return stats([x for r in results for x in r], time.perf_counter() - t0)


INBOX_BYTES: list[int] = []


def inbox_job(session: Session) -> float:
    t0 = time.perf_counter()
    status, body, _ = session.request("GET", "/")
    took = time.perf_counter() - t0
    assert status == 200 and "我的待办".encode() in body, status
    INBOX_BYTES.append(len(body))  # the same page for every server, or the comparison is unfair
    return took


def prepared_dispatch(session: Session, guid: str) -> Callable[[Session], float]:
    """The dispatch form of one task as the page gives it (token, lock, assignees), POSTed later."""
    status, page, _ = session.request("GET", f"/tasks/{guid}")
    assert status == 200, status
    html = page.decode()
    form = {"csrf_token": TOKEN.search(html).group(1), "lock_version": LOCK.search(html).group(1),
            "action": "dispatch", "assignees": ASSIGNEE.findall(html)}

    def job(s: Session) -> float:
        t0 = time.perf_counter()
        status, body, headers = s.request("POST", f"/tasks/{guid}", form)
        took = time.perf_counter() - t0
        assert status == 302, (status, body[:300])
        return took

    return job


def new_dispatch_tasks(svc, n: int) -> list[str]:
    """Report n cases as the grid worker; the guids of their open dispatch tasks."""
    with svc.db.read() as s:
        worker = org.staff_by_username(s, WORKER).id
    ids = [cases.report(svc, worker, REPORT).id for _ in range(n)]
    with svc.db.read() as s:
        instances = list(s.scalars(select(DisputeCase.instance_id).where(DisputeCase.id.in_(ids))))
        return list(s.scalars(select(WorkItem.task_guid).where(
            WorkItem.instance_id.in_(instances), WorkItem.state == "open", WorkItem.task_spec == "dispatch")))


def measure(name: str, args: list[str], env: dict, port: int, svc, opts, logdir: Path) -> dict:
    print(f"  {name}: reporting {opts.tasks} cases ...", flush=True)
    guids = new_dispatch_tasks(svc, opts.tasks)
    with started(args, env, logdir, name) as proc:
        until(lambda: healthy(port), f"{name} answers /healthz", proc, seconds=180)
        sessions = [Session(port) for _ in range(opts.clients)]
        for s in sessions:
            s.sign_in(HEAD)
            for _ in range(2):  # warm-up: every worker has imported, connected and rendered once
                inbox_job(s)
        load_before = os.getloadavg()
        INBOX_BYTES.clear()
        inbox = run_phase(sessions, [inbox_job] * opts.inbox)
        inbox["bytes"] = round(statistics.mean(INBOX_BYTES))
        n = len(sessions)
        with ThreadPoolExecutor(n) as pool:  # the forms, read outside the timing, one thread per session
            forms = list(pool.map(lambda i: [prepared_dispatch(sessions[i], g) for g in guids[i::n]], range(n)))
        jobs = [forms[i % n][i // n] for i in range(len(guids))]  # job i runs on session i mod n
        complete = run_phase(sessions, jobs)
        load_after = os.getloadavg()
    result = {"inbox": inbox, "complete": complete, "loadavg_before": [round(x, 2) for x in load_before],
              "loadavg_after": [round(x, 2) for x in load_after]}
    print(f"  {name:<12} inbox {inbox['rps']:7.1f} req/s p50 {inbox['p50_ms']:7.1f} ms p95 {inbox['p95_ms']:7.1f} ms"
          f" | complete {complete['rps']:6.1f} req/s p50 {complete['p50_ms']:7.1f} ms p95 {complete['p95_ms']:7.1f} ms"
          f" | load {load_after[0]:.2f}", flush=True)
    return result


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--clients", type=int, default=4, help="client threads (each its own connection)")
    ap.add_argument("--inbox", type=int, default=160, help="inbox requests per server")
    ap.add_argument("--tasks", type=int, default=40, help="dispatch completions per server")
    ap.add_argument("--workers", default="1,2,4", help="gunicorn worker counts")
    opts = ap.parse_args()
    # one data key for this process (which reports the cases) and every server: production
    # refuses personal data without one, and the development key file would differ from it
    os.environ.setdefault("GRIDFLOW_DATA_KEY", base64.b64encode(secrets.token_bytes(32)).decode())

    base = pg_base_url()
    if base is None:
        sys.exit("PostgreSQL is not reachable (set GRIDFLOW_TEST_PG_URL)")
    scratch = Scratch("postgresql", base, "gridflow_servebench")
    db, url = Database(scratch.url), scratch.url
    started_at = time.time()
    try:
        from grid.cases.scenario import prepare

        print(f"database {scratch.pg_name}: workflows and the small demo city ...", flush=True)
        svc = prepare(db, ROOT / "workflows", ROOT / "forms")
        servers = {"dev": None, **{f"gunicorn-w{w}": int(w) for w in opts.workers.split(",")}}
        results = {}
        with tempfile.TemporaryDirectory() as tmp:
            logdir = Path(tmp)
            for label, workers in servers.items():
                port = free_port()
                env = env_for(url, logdir, GRIDFLOW_SECRET_KEY=KEY, GRIDFLOW_LOG_LEVEL="warning",
                              GRIDFLOW_DATA_KEY=os.environ["GRIDFLOW_DATA_KEY"])
                if workers is None:
                    args = [*GRIDFLOW, "serve", "--no-scheduler", "--port", str(port)]
                else:
                    env.update(GRIDFLOW_ENV="production", GRIDFLOW_WORKERS=str(workers),
                               GRIDFLOW_BIND=f"127.0.0.1:{port}")
                    args = [*GRIDFLOW, "serve", "--production"]
                results[label] = measure(label, args, env, port, svc, opts, logdir)
        dev = results["dev"]
        ratios = {label: {"inbox_rps": round(r["inbox"]["rps"] / dev["inbox"]["rps"], 2),
                          "complete_rps": round(r["complete"]["rps"] / dev["complete"]["rps"], 2)}
                  for label, r in results.items() if label != "dev"}
        out = {"date": date.today().isoformat(), "dialect": "postgresql", "cpus": os.cpu_count(),
               "clients": opts.clients, "inbox_requests": opts.inbox, "completions": opts.tasks,
               "servers": results, "ratio_to_dev": ratios, "total_s": round(time.time() - started_at, 1)}
        print("ratio to the development server (requests/s):")
        for label, r in ratios.items():
            print(f"  {label:<12} inbox x{r['inbox_rps']:.2f}  complete x{r['complete_rps']:.2f}")
        path = ROOT / "bench" / "results" / f"serve-{out['date']}.json"
        for suffix in "abcdefghijklmnopqrstuvwxyz":  # a second run the same day keeps the first's file
            if not path.exists():
                break
            path = path.with_name(f"serve-{out['date']}-{suffix}.json")
        path.write_text(json.dumps(out, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
        print(f"saved {path.relative_to(ROOT)}")
    finally:
        db.dispose()
        scratch.close()


if __name__ == "__main__":
    main()
