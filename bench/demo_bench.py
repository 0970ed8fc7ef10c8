"""How long the full demo city takes to build: the organisation, then the grid registry.

Tests assert only the city's counts and shape (tests/test_demo.py); the time lives here, because a
test that times things fails on a loaded machine for no fault of the code.

    .venv/bin/python -m bench.demo_bench                      # SQLite, full city
    .venv/bin/python -m bench.demo_bench --pg postgresql://postgres@127.0.0.1:5432/test
    .venv/bin/python -m bench.demo_bench --size small         # a quick check of the harness

PostgreSQL runs in a scratch database `gridflow_demo_bench_<pid>`, dropped at the end. The target
(issue 16) is the whole build in under 60 s on a quiet machine; the load average at start is recorded.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

from tests.pg_admin import create_database, drop_database

ROOT = Path(__file__).resolve().parent.parent
TARGET_S = 60.0
_drop = drop_database  # bench/request_profile.py drops its scratch database with it


def _scratch(pg: str | None) -> tuple[str, str | None, str]:
    """(url, PostgreSQL database name or None, temporary folder) of a scratch database."""
    tmp = tempfile.mkdtemp(prefix="gridflow_demo_bench_")
    if not pg:
        return f"sqlite:///{tmp}/demo.sqlite", None, tmp
    name = f"gridflow_demo_bench_{os.getpid()}"
    return create_database(pg, name, replace=True), name, tmp


def run(url: str, size: str) -> dict:
    """Migrate, deploy ./workflows, build the city and its registry; seconds per phase and the counts."""
    from engine.deploy import Bundle
    from engine.migrate import upgrade
    from engine.versions import deploy_bundle
    from grid.config import Settings
    from grid.org import demo
    from grid.registry import demo as registry_demo
    from grid.services import Services

    settings = Settings(database_url=url)
    svc = Services.build(settings)
    out: dict = {}
    t0 = time.perf_counter()
    upgrade(svc.db)
    deploy_bundle(svc.db, Bundle.from_dirs(ROOT / "workflows", ROOT / "forms"), actor="bench", tag="bench",
                  activate=True, source="workflows")
    out["setup_s"] = round(time.perf_counter() - t0, 2)
    t0 = time.perf_counter()
    counts = demo.generate(svc.db, size=size)
    out["org_s"] = round(time.perf_counter() - t0, 2)
    t0 = time.perf_counter()
    filled = registry_demo.fill(svc, size=size) or {}
    out["registry_s"] = round(time.perf_counter() - t0, 2)
    out["total_s"] = round(out["org_s"] + out["registry_s"], 2)
    out["counts"] = {**{k: v for k, v in counts.items() if k != "created"}, **filled}
    svc.db.dispose()
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m bench.demo_bench", description=__doc__.split("\n\n")[0])
    ap.add_argument("--size", choices=["full", "small"], default="full")
    ap.add_argument("--pg", help="PostgreSQL server URL (a scratch database is created on it)")
    ap.add_argument("--no-save", action="store_true", help="do not write bench/results/demo-*.json")
    args = ap.parse_args(argv)
    url, pg_name, tmp = _scratch(args.pg)
    dialect = "postgresql" if args.pg else "sqlite"
    report = {"when": datetime.now(UTC).isoformat(timespec="seconds"), "database": dialect, "size": args.size,
              "python": platform.python_version(), "cpus": os.cpu_count(), "load_at_start": os.getloadavg()}
    try:
        report.update(run(url, args.size))
    finally:
        if pg_name:
            drop_database(args.pg, pg_name)
        shutil.rmtree(tmp, ignore_errors=True)
    verdict = "PASS" if report["total_s"] < TARGET_S else "MISS"
    report["target"] = f"whole build < {TARGET_S:.0f} s: {verdict}"
    print(f"{dialect} {args.size}: org {report['org_s']} s + registry {report['registry_s']} s = "
          f"{report['total_s']} s ({report['target']}); {report['counts']}")
    if not args.no_save:
        out = ROOT / "bench" / "results" / f"demo-{dialect}-{args.size}-{datetime.now(UTC):%Y-%m-%d}.json"
        out.write_text(json.dumps(report, ensure_ascii=False, indent=2) + "\n")
    return 0 if verdict == "PASS" or args.size == "small" else 1


if __name__ == "__main__":
    raise SystemExit(main())
