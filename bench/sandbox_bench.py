"""What the sandbox's worker pool costs: in process vs a worker round trip.

    .venv/bin/python -m bench.sandbox_bench [--quick] [--dialects sqlite,postgresql] [--pg URL] [--no-save]

1. Per evaluation: scripts, conditions and expressions taken from workflows/*.bpmn and the DMN tables,
   with dispute-case task data (and once with 50 KB of data), run in process (sandbox_policy.run)
   and through the pool (a worker round trip: encode, pipe, run under the limits, decode, replay
   emits). Prints median microseconds, the ratio pool / in process, and where the router sends each.
2. Per step of the 4-task instance (bench/fixtures/four_tasks.bpmn, as in engine_bench): start + 4
   completions through engine.runtime.Runtime with every evaluation forced in process, routed as in
   production (auto), and forced to the pool, interleaved; median ms per step and per instance (and the
   fastest instance, the number least disturbed on a shared machine), ratios to in process.
3. Starting a worker, and stopping + replacing one after an overrun.

Results go to bench/results/sandbox-<date>.json (unless --no-save).
"""
from __future__ import annotations

import argparse
import copy
import json
import os
import statistics
import sys
import time
from datetime import UTC, datetime

import engine.runtime  # noqa: F401 - registers workdays()
from bench.engine_bench import FORM_DATA, PG_DEFAULT, PROCESS, RESULTS, T0, Target, unit_of
from engine import clock, sandbox, sandbox_pool
from engine.calendar import WorkCalendar
from engine.runtime import Runtime, Step

perf = time.perf_counter

CONTEXT = {
    "levels": ["village", "township", "county", "city"],
    "level_units": ["420602003005", "420602003", "420602", "4206"],
    "level_idx": 1, "level": "township", "current_unit": "420602003", "category": "neighbour",
    "outcome": "cannot_resolve", "rework_count": 0, "settled_on_spot": False, "warn_days": 3, "overdue_days": 5,
    "reporter": "u-1024", "grid_unit": "420602003005001", "title": "楼上漏水影响楼下住户",
    "description": "楼上住户卫生间漏水，多次协商未果，楼下住户天花板发霉，要求赔偿并维修。" * 4,
    "assignees": ["u-2001", "u-2002"],
    "mediations": [{"outcome": "cannot_resolve", "note": "双方分歧较大"}, {"outcome": "resolved", "note": "达成协议"}],
    "verification": {"satisfied": True, "comment": "满意"},
}
BIG = dict(CONTEXT, history=[{"level": "village", "note": "x" * 400, "n": i} for i in range(100)])  # ~50 KB

CASES = [  # (what, mode, source) - all from workflows/*.bpmn and workflows/*.dmn
    ("condition: outcome == 'resolved'", "eval", "outcome == 'resolved'"),
    ("condition: level_idx < len(levels) - 1", "eval", "level_idx < len(levels) - 1"),
    ("DMN cell: (level) == (\"village\")", "eval", '(level) == ("village")'),
    ("timer: \"PT1H\"", "eval", '"PT1H"'),
    ("condition: any(... for m in mediations)", "eval", "any(m['outcome'] == 'resolved' for m in mediations)"),
    ("script: escalate (emit + subscripts)", "exec",
     "emit('escalated', from_level=level, from_unit=current_unit, to_level=levels[level_idx + 1], "
     "to_unit=level_units[level_idx + 1], reason=outcome)\nlevel_idx = level_idx + 1"),
    ("script: level setup (workdays + emit)", "exec",
     "warn_at = workdays(warn_days)\ndue_at = workdays(overdue_days)\n"
     "dispatch_role = 'grid_head' if level == 'village' else 'dispatcher'\noutcome = None\n"
     "emit('level_entered', level=level, unit=current_unit)"),
]


def median_us(xs: list[float]) -> float:
    return round(statistics.median(xs) * 1e6, 1)


def per_evaluation(n: int) -> list[dict]:
    step = Step(actor="bench", calendar=WorkCalendar())
    token = sandbox.current_step.set(step)
    rows = []
    try:
        for data_name, data in (("case data (~1.5 KB)", CONTEXT), ("case data + 50 KB history", BIG)):
            for what, mode, src in CASES:
                unit = sandbox.compile_unit(src, mode)
                timings = {}
                for where, fn in (("in_process", lambda c, u=unit: sandbox._run_here(u, c, None, sandbox._helpers)),
                                  ("pool", lambda c, u=unit: sandbox._in_pool(u, c, None))):
                    xs = []
                    for i in range(n + 20):
                        ctx = copy.deepcopy(data) if mode == "exec" else data
                        t = perf()
                        fn(ctx)
                        if i >= 20:
                            xs.append(perf() - t)
                        step.events.clear()
                        step.emitted.clear()
                    timings[where] = median_us(xs)
                rows.append({"data": data_name, "what": what, "routed_to": "in_process" if sandbox.runs_in_process(unit)
                             else "pool", "in_process_us": timings["in_process"], "pool_us": timings["pool"],
                             "ratio": round(timings["pool"] / timings["in_process"], 1)})
    finally:
        sandbox.current_step.reset(token)
    return rows


def per_step(target: Target, n: int, warm: int) -> dict:
    rt = Runtime(target.db)
    counted = {"n": 0}
    real_dispatch = sandbox._dispatch

    def counting(unit, context, ext):
        counted["n"] += 1
        return real_dispatch(unit, context, ext)

    modes = {"in_process": lambda unit: True, "auto": sandbox.runs_in_process, "pool": lambda unit: False}
    real_router = sandbox.runs_in_process
    raw = {m: {"start": [], "complete": [], "instance": []} for m in modes}
    sandbox._dispatch = counting
    try:
        for i in range(warm + n):
            order = list(modes) if i % 2 == 0 else list(reversed(modes))
            for mode in order:
                sandbox.runs_in_process = modes[mode] if mode != "auto" else real_router
                counted["n"] = 0
                t0 = perf()
                step = rt.start(PROCESS, {"unit": unit_of(i)}, actor="bench")
                a = perf() - t0
                bs = []
                for _ in range(4):
                    t = perf()
                    step = rt.complete(step.instance_id, step.opened[0]["task_guid"], FORM_DATA, actor="bench")
                    bs.append(perf() - t)
                c = perf() - t0
                assert step.status == "completed", step.status
                if i >= warm:
                    raw[mode]["start"].append(a)
                    raw[mode]["complete"].extend(bs)
                    raw[mode]["instance"].append(c)
                    raw[mode]["evaluations"] = counted["n"]
    finally:
        sandbox.runs_in_process = real_router
        sandbox._dispatch = real_dispatch
    out = {}
    for mode, r in raw.items():
        out[mode] = {k: round(statistics.median(r[k]) * 1000, 3) for k in ("start", "complete", "instance")}
        out[mode]["instance_min"] = round(min(r["instance"]) * 1000, 3)  # least disturbed by other load
        out[mode]["evaluations_per_instance"] = r["evaluations"]
    keys = ("start", "complete", "instance", "instance_min")
    out["ratio_to_in_process"] = {m: {k: round(out[m][k] / out["in_process"][k], 2) for k in keys}
                                  for m in ("auto", "pool")}
    return out


def worker_costs(n: int) -> dict:
    starts, replaces = [], []
    for _ in range(n):
        sandbox_pool.shutdown()
        t = perf()
        sandbox.evaluate("sorted(x)", {"x": [1]})
        starts.append(perf() - t)
        t = perf()
        try:
            sandbox.RestrictedEnvironment().execute("s = 'a' * 999990\nparts = [s + str(i) for i in range(1100)]", {})
        except sandbox.ScriptLimitExceeded:
            pass
        sandbox.evaluate("sorted(x)", {"x": [1]})
        replaces.append(perf() - t)
    return {"first_request_with_worker_start_ms": round(statistics.median(starts) * 1000, 1),
            "memory_overrun_then_next_request_ms": round(statistics.median(replaces) * 1000, 1)}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="fewer iterations")
    ap.add_argument("--pg", default=os.environ.get("GRIDFLOW_BENCH_PG_URL", PG_DEFAULT))
    ap.add_argument("--dialects", default="sqlite,postgresql")
    ap.add_argument("--no-save", action="store_true")
    args = ap.parse_args(argv)
    n_eval, n_inst, warm = (200, 20, 3) if args.quick else (1000, 150, 10)
    clock.install_fake(T0)
    sandbox_pool.configure()
    res: dict = {"when": datetime.now(UTC).isoformat(), "cpus": os.cpu_count(), "loadavg": os.getloadavg(),
                 "python": sys.version.split()[0], "limits": vars(sandbox_pool.get_pool().limits)}

    print("== per evaluation (median us; ratio = pool / in process)")
    res["per_evaluation"] = per_evaluation(n_eval)
    for r in res["per_evaluation"]:
        print(f"  {r['data']:<26} {r['what']:<44} in process {r['in_process_us']:>8} us   pool {r['pool_us']:>8} us"
              f"   x{r['ratio']:<6} routed: {r['routed_to']}")

    res["per_step"] = {}
    for dialect in [d for d in args.dialects.split(",") if d]:
        target = Target(dialect, args.pg)
        try:
            r = per_step(target, n_inst, warm)
        finally:
            target.close()
        res["per_step"][dialect] = r
        print(f"== 4-task instance on {dialect} (median ms; {r['auto']['evaluations_per_instance']} evaluations per instance)")
        for mode in ("in_process", "auto", "pool"):
            m = r[mode]
            ratio = "" if mode == "in_process" else "   ratio " + "  ".join(
                f"{k} x{v}" for k, v in r["ratio_to_in_process"][mode].items())
            print(f"  {mode:<10} start {m['start']:>7}  complete {m['complete']:>7}  instance {m['instance']:>8}"
                  f"  (min {m['instance_min']:>7}){ratio}")

    res["workers"] = worker_costs(3 if args.quick else 5)
    print("== workers (median ms):", res["workers"])
    sandbox_pool.shutdown()
    if not args.no_save:
        RESULTS.mkdir(exist_ok=True)
        path = RESULTS / f"sandbox-{datetime.now(UTC).date().isoformat()}.json"
        path.write_text(json.dumps(res, indent=2, ensure_ascii=False) + "\n")
        print("saved", path)
    return 0


if __name__ == "__main__":
    sys.exit(main())
