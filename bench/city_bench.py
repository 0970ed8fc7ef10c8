"""City-scale page bench (issue 16): each page's p50/p95 over HTTP against gunicorn, its ratio
to a floor page, at two history sizes, and the growth ratio between them.

    .venv/bin/python -m bench.city_bench [--scale 10000 --scale2 100000] [--size full|small] [--full] [--runs 40]

For each scale N: the demo city (grid.org.demo + grid.registry.demo), N open and 10·N archived
cases cloned in bulk from real cases (bench.web_bench: case row, instance state, work items,
audit events, records, remapped to their own grid), resident links for half of them, then the
derived indexes (case_late, case_party, case_search/FTS) filled as the migration fills them.
`gridflow serve --production` (gunicorn, 2 workers) serves it; pages are fetched with real
sessions. Quick mode (the default) uses N=1000 and N=5000 on the small city; --full adds 1M
archived. Scratch files live in a temp dir named gridflow_citybench_<pid>; never CI's `test`.
"""
from __future__ import annotations

import argparse
import http.cookiejar
import json
import os
import random
import re
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.parse
import urllib.request
from pathlib import Path
from urllib.parse import quote

from sqlalchemy import insert, select

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench import web_bench  # noqa: E402
from engine.db import Database  # noqa: E402
from grid.cases import late_index, search  # noqa: E402
from grid.cases.models import CaseParty, DisputeCase  # noqa: E402
from grid.org import demo  # noqa: E402
from grid.org.passwords import DEMO_PASSWORD  # noqa: E402
from grid.registry import demo as registry_demo  # noqa: E402
from grid.registry.models import Resident  # noqa: E402

GRIDFLOW = [str(Path(sys.executable).with_name("gridflow"))]
STREET, COUNTY, CITY = "420602003000", "420602000000", "420600000000"


def build(path: Path, size: str, n_open: int, n_archived: int) -> None:
    """The demo city plus the cloned history, and the derived indexes."""
    total = n_open + n_archived
    share = n_open / total
    web_bench.STAGES = {"reported": share * 0.3, "dispatched": share * 0.35, "escalated": share * 0.2,
                        "resolved": share * 0.15, "archived": (1 - share) * 0.75, "on_spot": (1 - share) * 0.25}
    db = Database(f"sqlite:///{path}")
    t0 = time.monotonic()
    svc = web_bench.build(db, size, total, 0.03)
    registry_demo.fill(svc, size=size)
    print(f"  built {total} cases in {time.monotonic() - t0:.0f}s", file=sys.stderr)
    t0 = time.monotonic()
    with db.write() as s:
        late_index.rebuild(s)
        search.rebuild(s)
        rids = list(s.scalars(select(Resident.id)))
        rng = random.Random(5)
        cids = list(s.scalars(select(DisputeCase.id)))
        links = {(rng.choice(rids), c) for c in cids if rng.random() < 0.5}
        rows = [{"resident_id": r, "case_id": c} for r, c in links]
        for i in range(0, len(rows), 5000):
            s.execute(insert(CaseParty), rows[i:i + 5000])
        s.connection().exec_driver_sql("ANALYZE")
    print(f"  derived indexes in {time.monotonic() - t0:.0f}s", file=sys.stderr)
    db.dispose()


def free_port() -> int:
    with socket.socket() as sk:
        sk.bind(("127.0.0.1", 0))
        return sk.getsockname()[1]


class Client:
    """A signed-in browser: cookie jar, CSRF token from the login form."""

    def __init__(self, base: str, username: str | None):
        self.base = base
        self.op = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(http.cookiejar.CookieJar()))
        if username:
            html = self.op.open(base + "/login").read().decode()
            token = re.search(r'name="csrf_token" value="([^"]+)"', html).group(1)
            data = urllib.parse.urlencode({"username": username, "password": DEMO_PASSWORD, "csrf_token": token})
            self.op.open(base + "/login", data.encode())

    def get(self, url: str) -> float:
        t0 = time.perf_counter()
        r = self.op.open(self.base + url)
        r.read()
        assert r.status == 200, (url, r.status)
        return (time.perf_counter() - t0) * 1000


def pages(path: Path) -> list[tuple[str, str | None, list[str]]]:
    db = Database(f"sqlite:///{path}")
    with db.read() as s:
        busy = list(s.scalars(select(DisputeCase.id).where(DisputeCase.unit_path.like(f"%/{STREET}/%"),
                                                           DisputeCase.status == "open").limit(20)))
        rid = s.scalar(select(CaseParty.resident_id).join(Resident, Resident.id == CaseParty.resident_id)
                       .where(Resident.grid_code == demo.SEED_GRID).limit(1))
    db.dispose()
    return [("floor /healthz", None, ["/healthz"]),
            ("inbox (village head)", "qiuyun", ["/", "/?state=overdue"]),
            ("case page", f"disp1.{STREET}", [f"/cases/{c}" for c in busy]),
            ("late list county", f"sup.{COUNTY}", ["/late"]),
            ("late list city", f"sup.{CITY}", ["/late"]),
            ("archive search city", f"sup.{CITY}", [f"/archive?q={quote('雨污')}", f"/archive?q={quote('居民')}"]),
            ("archive search village", "qiuyun", [f"/archive?q={quote('雨污')}", f"/archive?q={quote('居民')}"]),
            ("resident page", "jiangranran", [f"/registry/resident/{rid}"]),
            ("registry grid page", "jiangranran", [f"/registry/grid/{demo.SEED_GRID}"])]


def measure(path: Path, runs: int, tmp: Path) -> dict[str, tuple[float, float]]:
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("GRIDFLOW_")}
    env.update(GRIDFLOW_DATABASE_URL=f"sqlite:///{path}", GRIDFLOW_ENV="production", GRIDFLOW_SECRET_KEY="b" * 48,
               GRIDFLOW_WORKERS="2", GRIDFLOW_BIND=f"127.0.0.1:{port}", GRIDFLOW_UPLOADS=str(tmp / "uploads"))
    log = open(tmp / "gunicorn.log", "w")  # noqa: SIM115
    p = subprocess.Popen([*GRIDFLOW, "serve", "--production"], env=env, cwd=ROOT, stdout=log, stderr=log)
    base = f"http://127.0.0.1:{port}"
    try:
        for _ in range(300):
            try:
                if json.loads(urllib.request.urlopen(base + "/healthz").read())["db_ok"]:
                    break
            except OSError:
                time.sleep(0.2)
        out = {}
        for label, user, urls in pages(path):
            c = Client(base, user)
            for u in urls:
                c.get(u)  # warm
            t = sorted(c.get(urls[i % len(urls)]) for i in range(runs))
            out[label] = (statistics.median(t), t[max(0, int(len(t) * 0.95) - 1)])
            print(f"    {label:<24} p50 {out[label][0]:7.1f} ms  p95 {out[label][1]:7.1f} ms", file=sys.stderr)
        return out
    finally:
        p.terminate()
        p.wait(30)
        log.close()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--scale", type=int, default=1000, help="N: open cases at the small scale (10·N archived)")
    ap.add_argument("--scale2", type=int, default=5000, help="N at the large scale")
    ap.add_argument("--size", choices=["full", "small"], default="small")
    ap.add_argument("--full", action="store_true", help="also a third scale with 1M archived cases")
    ap.add_argument("--runs", type=int, default=40)
    ap.add_argument("--out", type=Path, help="write the results here (JSON)")
    args = ap.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix=f"gridflow_citybench_{os.getpid()}_"))
    scales = [(args.scale, 10 * args.scale), (args.scale2, 10 * args.scale2)]
    if args.full:
        scales.append((100_000, 1_000_000))
    results = {}
    load = os.getloadavg()
    for n_open, n_arch in scales:
        print(f"scale N={n_open}: {n_open} open + {n_arch} archived ({args.size} city)", file=sys.stderr)
        path = tmp / f"city_{n_open}.sqlite"
        build(path, args.size, n_open, n_arch)
        results[n_open] = measure(path, args.runs, tmp)
    keys = list(results)
    lo, hi = results[keys[0]], results[keys[-1]]
    floor = hi["floor /healthz"][0]
    print(f"\nload average at start {load[0]:.2f} {load[1]:.2f} {load[2]:.2f} (2 cores); SQLite; {args.size} city")
    print(f"{'page':<24} " + " ".join(f"p50@{k:<7} p95@{k:<7}" for k in keys) + "  growth  x floor")
    for label in hi:
        row = " ".join(f"{results[k][label][0]:9.1f} {results[k][label][1]:9.1f}" for k in keys)
        print(f"{label:<24} {row}  {hi[label][0] / lo[label][0]:5.2f}x  {hi[label][0] / floor:5.1f}x")
    if args.out:
        args.out.write_text(json.dumps({"load": load, "size": args.size, "scales": scales, "results": results},
                                       ensure_ascii=False, indent=1))


if __name__ == "__main__":
    main()
