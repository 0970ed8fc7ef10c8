"""Migration benchmark: move 10,000 open dispute cases from v1 to v2 and report cases per second.

    .venv/bin/python -m bench.migration_bench [--cases 10000] [--dialects sqlite,postgresql] [--pg URL]
                                              [--batch 50] [--no-save] [--profile]

Per database (a scratch SQLite file; a scratch PostgreSQL database created and dropped):
  1. the schema, ./workflows and ./forms deployed (v1), the small demo city, a fake clock;
  2. three real cases driven through grid.cases: at village dispatch (timers armed), at verification,
     and at mediation at the township (which cannot move: its mediation is in progress and v2 changes it);
  3. N open cases bulk-created by copying those cases' rows (instance, open work items, dispute case),
     in the mix 45% dispatch / 45% verification / 10% mediation, each with fresh task ids;
  4. tests/fixtures/v2 deployed (not active), then a dry run over all N and an execution in batches
     (one transaction per batch, one savepoint per case), timed;
  5. checks: every movable case migrated, none of the others touched, no next_timer_at or work-item
     warn/due time moved, one version_changed event per migrated case.
Results go to bench/results/migration-<dialect>-<date>.json.
"""
from __future__ import annotations

import argparse
import cProfile
import io
import json
import os
import platform
import pstats
import re
import sys
import time
import uuid
from datetime import datetime
from pathlib import Path

from sqlalchemy import func, insert, select, text

from bench._common import PG_DEFAULT, Scratch, admin_engine
from engine import clock
from engine.db import Database
from engine.deploy import Bundle
from engine.migration import Migrator, Selection
from engine.models import Instance, InstanceEvent, WorkItem
from engine.versions import deploy_bundle

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
RESULTS = HERE / "results"
START = datetime(2026, 3, 2, 10, 0, tzinfo=clock.SHANGHAI)
MIX = (("dispatch", 0.45), ("verify", 0.45), ("mediation", 0.10))
UUID_RE = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")

perf = time.perf_counter


def _templates(svc, fake) -> dict[str, str]:
    """Drive three real cases to the benchmark's starting points; name -> case_no."""
    from grid.cases.scenario import Runner

    r = Runner(svc, {})
    r.fake = fake
    data = {"category": "neighbour", "description": "楼上漏水，邻里纠纷", "location": {"text": "檀溪社区"},
            "settled_on_spot": False}
    for name in ("dispatch", "verify", "mediation"):
        r.do_report({"as": "jiangranran", "case": name, "data": data})
    r.do_complete({"case": "verify", "task": "dispatch", "as": "qiuyun",
                   "data": {"action": "dispatch", "assignees": ["@med1.420602003005"]}})
    r.do_complete({"case": "verify", "task": "mediate", "as": "med1.420602003005",
                   "data": {"outcome": "resolved", "notes": "已化解"}})
    r.do_complete({"case": "mediation", "task": "dispatch", "as": "qiuyun",
                   "data": {"action": "dispatch", "assignees": ["@med1.420602003005"]}})
    r.do_complete({"case": "mediation", "task": "mediate", "as": "med1.420602003005",
                   "data": {"outcome": "cannot_resolve", "notes": "需上报"}})
    r.do_complete({"case": "mediation", "task": "dispatch", "as": "disp2.420602003000",
                   "data": {"action": "dispatch", "assignees": ["@med1.420602003000", "@med2.420602003000"]}})
    return {name: r.case(name).case_no for name in ("dispatch", "verify", "mediation")}


def _copy_cases(db: Database, templates: dict[str, str], n: int) -> dict[str, int]:
    """Bulk-create n open cases by copying the template cases' rows with fresh task ids."""
    from grid.cases.models import DisputeCase

    with db.read() as s:
        src = {}
        for name, case_no in templates.items():
            c = s.scalar(select(DisputeCase).where(DisputeCase.case_no == case_no))
            inst = s.get(Instance, c.instance_id)
            items = list(s.scalars(select(WorkItem).where(WorkItem.instance_id == inst.id, WorkItem.state == "open")))
            src[name] = (c, inst, items)
        next_id = s.scalar(select(func.max(Instance.id))) + 1
        next_case = s.scalar(select(func.max(DisputeCase.id))) + 1
    plan = []
    for name, share in MIX:
        plan += [name] * int(round(n * share))
    plan = (plan + ["dispatch"] * n)[:n]
    counts = {name: plan.count(name) for name, _s in MIX}
    case_cols = [c.key for c in DisputeCase.__table__.columns]
    inst_cols = [c.key for c in Instance.__table__.columns]
    wi_cols = [c.key for c in WorkItem.__table__.columns if c.key != "id"]
    chunk = 1000
    for i0 in range(0, n, chunk):
        insts, items, cases = [], [], []
        for k in range(i0, min(n, i0 + chunk)):
            c, inst, wis = src[plan[k]]
            iid, cid = next_id + k, next_case + k
            mapping: dict[str, str] = {}

            def fresh(m, mapping=mapping):
                old = m.group(0)
                if old not in mapping:
                    mapping[old] = str(uuid.uuid4())
                return mapping[old]

            state = UUID_RE.sub(fresh, inst.state_json)
            case_no = f"BM{k:08d}"
            row = {col: getattr(inst, col) for col in inst_cols}
            row.update(id=iid, state_json=state, business_key=case_no)
            insts.append(row)
            for w in wis:
                wr = {col: getattr(w, col) for col in wi_cols}
                wr.update(instance_id=iid, task_guid=mapping.get(w.task_guid, str(uuid.uuid4())))
                items.append(wr)
            cr = {col: getattr(c, col) for col in case_cols}
            cr.update(id=cid, case_no=case_no, instance_id=iid)
            cases.append(cr)
        with db.write() as s:
            s.execute(insert(Instance), insts)
            s.execute(insert(WorkItem), items)
            s.execute(insert(DisputeCase), cases)
    if db.dialect == "postgresql":
        with db.write() as s:
            for table in ("instance", "dispute_case"):
                s.execute(text(f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), (SELECT max(id) FROM {table}))"))
    return counts


def _clocks(db: Database) -> tuple[dict, dict]:
    with db.read() as s:
        nxt = dict(s.execute(select(Instance.id, Instance.next_timer_at).where(Instance.business_key.like("BM%"))).all())
        due = {w: (a, b, c) for w, a, b, c in s.execute(
            select(WorkItem.id, WorkItem.task_guid, WorkItem.warn_at, WorkItem.due_at).where(WorkItem.state == "open"))}
    return nxt, due


def run(dialect: str, n: int, batch: int, pg_base: str | None, profile: bool) -> dict:
    from engine.migrate import upgrade
    from grid.cases.scenario import prepare

    sc = Scratch(dialect, pg_base, "gridflow_mbench")
    db = Database(sc.url)
    try:
        fake = clock.install_fake(START)
        t = perf()
        upgrade(db)
        svc = prepare(db, ROOT / "workflows", ROOT / "forms")
        templates = _templates(svc, fake)
        counts = _copy_cases(db, templates, n)
        setup_s = perf() - t
        print(f"[{dialect}] {n} open cases created ({counts}) in {setup_s:.1f}s", flush=True)
        v2 = ROOT / "tests" / "fixtures" / "v2"
        deploy_bundle(db, Bundle.from_dirs(v2 / "workflows", v2 / "forms"), actor="bench", tag="v2")
        fake.advance(clock.duration("PT1H"))
        sel = Selection("dispute_case", business_keys=None, where=Instance.business_key.like("BM%"),
                        label="benchmark copies")
        before = _clocks(db)

        m = Migrator(svc.runtime)
        t = perf()
        _run_id, plans = m.dry_run(sel, 2, actor="bench")
        dry_s = perf() - t
        ok = sum(p.ok for p in plans)
        print(f"[{dialect}] dry run: {len(plans)} cases in {dry_s:.2f}s = {len(plans) / dry_s:.0f} cases/s "
              f"({ok} can move)", flush=True)

        prof = cProfile.Profile() if profile else None
        if prof:
            prof.enable()
        t = perf()
        result = m.execute(sel, 2, actor="bench", batch=batch)
        exec_s = perf() - t
        if prof:
            prof.disable()
        print(f"[{dialect}] execute: {result.total} cases in {exec_s:.2f}s = {result.total / exec_s:.0f} cases/s; "
              f"migrated {result.migrated} ({result.migrated / exec_s:.0f}/s), blocked {result.blocked}, "
              f"skipped {result.skipped}, failed {result.failed}", flush=True)

        after = _clocks(db)
        moved_timers = sum(1 for k, v in before[0].items() if after[0].get(k) != v)
        moved_items = sum(1 for k, v in before[1].items() if after[1].get(k) != v)
        with db.read() as s:
            events = s.scalar(select(func.count()).select_from(InstanceEvent)
                              .where(InstanceEvent.kind == "version_changed"))
        expected_ok = counts["dispatch"] + counts["verify"]
        checks = {
            "migrated_all_movable": result.migrated == expected_ok,
            "blocked_the_rest": result.blocked == counts["mediation"],
            "no_next_timer_moved": moved_timers == 0,
            "no_work_item_due_moved": moved_items == 0,
            "one_event_per_migrated_case": events == result.migrated,
        }
        print(f"[{dialect}] checks: {checks}", flush=True)
        out = {
            "dialect": dialect, "cases": n, "mix": counts, "batch": batch,
            "setup_s": round(setup_s, 2),
            "dry_run": {"seconds": round(dry_s, 3), "cases_per_s": round(len(plans) / dry_s, 1)},
            "execute": {"seconds": round(exec_s, 3), "cases_per_s": round(result.total / exec_s, 1),
                        "migrated": result.migrated, "migrated_per_s": round(result.migrated / exec_s, 1),
                        "blocked": result.blocked, "skipped": result.skipped, "failed": result.failed},
            "checks": checks,
            "env": {"python": platform.python_version(), "cpus": os.cpu_count(),
                    "load": os.getloadavg()[0] if hasattr(os, "getloadavg") else None},
        }
        if prof:
            buf = io.StringIO()
            pstats.Stats(prof, stream=buf).sort_stats("cumulative").print_stats(30)
            out["profile"] = buf.getvalue()
            print(buf.getvalue())
        return out
    finally:
        clock.set_source(None)
        db.dispose()
        sc.close()


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m bench.migration_bench", description=__doc__.split("\n\n")[0])
    ap.add_argument("--cases", type=int, default=10_000)
    ap.add_argument("--dialects", default="sqlite,postgresql")
    ap.add_argument("--pg", default=os.environ.get("GRIDFLOW_BENCH_PG_URL", PG_DEFAULT))
    ap.add_argument("--batch", type=int, default=50, help="cases per transaction")
    ap.add_argument("--profile", action="store_true")
    ap.add_argument("--no-save", action="store_true")
    args = ap.parse_args(argv)
    ok = True
    for dialect in [d.strip() for d in args.dialects.split(",") if d.strip()]:
        if dialect == "postgresql":
            try:
                with admin_engine(args.pg).connect() as c:
                    c.execute(text("select 1"))
            except Exception as e:  # noqa: BLE001
                print(f"[postgresql] skipped: {e}", file=sys.stderr)
                continue
        res = run(dialect, args.cases, args.batch, args.pg, args.profile)
        ok = ok and all(res["checks"].values())
        if not args.no_save:
            RESULTS.mkdir(exist_ok=True)
            path = RESULTS / f"migration-{dialect}-{datetime.now():%Y-%m-%d}.json"
            res.pop("profile", None)
            path.write_text(json.dumps(res, indent=2, ensure_ascii=False) + "\n")
            print(f"[{dialect}] saved {path.relative_to(ROOT)}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
