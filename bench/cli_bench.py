"""How fast `gridflow validate` starts: the designer runs it after every save (and editors on every
keystroke via --format json), so it must answer in well under a second on a small file.

    .venv/bin/python -m bench.cli_bench            # 15 runs of each command
    .venv/bin/python -m bench.cli_bench --runs 30 --top 15

Runs each command N times as a subprocess (no hyperfine needed), reports median and p95 wall time,
the ratio to `python -c pass` measured in the same run (so a busy machine shows as a busy baseline),
and the slowest imports of one run under `python -X importtime`. Exit code 1 when the median for the
small broken file is over the 1 s target.
"""
from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PY = sys.executable
TARGET_S = 1.0
BROKEN = (ROOT / "tests" / "fixtures" / "bogus_task.bpmn").read_text(encoding="utf-8")  # an unknown element
SMALL_OK = ROOT / "tests" / "fixtures" / "four_tasks.bpmn"


def _time(cmd: list[str], runs: int, env: dict) -> list[float]:
    out = []
    for _ in range(runs):
        t0 = time.perf_counter()
        subprocess.run(cmd, cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=False)
        out.append(time.perf_counter() - t0)
    return out


def _p95(xs: list[float]) -> float:
    xs = sorted(xs)
    return xs[min(len(xs) - 1, round(0.95 * (len(xs) - 1)))]


def top_imports(cmd: list[str], env: dict, top: int) -> list[tuple[int, str]]:
    """(cumulative microseconds, module) of the slowest top-level imports of one run."""
    res = subprocess.run([PY, "-X", "importtime", *cmd[1:]], cwd=ROOT, env=env, capture_output=True, text=True,
                         check=False)
    rows = []
    for line in res.stderr.splitlines():
        if not line.startswith("import time:") or "cumulative" in line:
            continue
        _self, cum, name = line.removeprefix("import time:").split("|")
        rows.append((int(cum), name[1:]))
    outer = [(c, n.strip()) for c, n in rows if not n.startswith(" ")]  # top-level only: no double counting
    return sorted(outer, reverse=True)[:top]


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--runs", type=int, default=15)
    ap.add_argument("--top", type=int, default=10)
    args = ap.parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp:
        broken = Path(tmp) / "broken.bpmn"
        broken.write_text(BROKEN, encoding="utf-8")
        env = {**os.environ, "GRIDFLOW_DATABASE_URL": f"sqlite:///{tmp}/bench.db"}
        gridflow = [PY, "-m", "web.cli"]
        commands = {
            "python -c pass": [PY, "-c", "pass"],
            "gridflow --help": [*gridflow, "--help"],
            "validate broken.bpmn": [*gridflow, "validate", str(broken)],
            "validate --format json broken.bpmn": [*gridflow, "validate", "--format", "json", str(broken)],
            "validate four_tasks.bpmn (valid)": [*gridflow, "validate", str(SMALL_OK),
                                                 "--forms", str(ROOT / "tests" / "fixtures" / "forms")],
        }
        results = {}
        print(f"{'command':<40} {'median':>8} {'p95':>8} {'x baseline':>10}  (runs={args.runs}, "
              f"load={os.getloadavg()[0]:.2f})")
        for label, cmd in commands.items():
            xs = _time(cmd, args.runs, env)
            results[label] = (statistics.median(xs), _p95(xs))
        base = results["python -c pass"][0]
        for label, (med, p95) in results.items():
            print(f"{label:<40} {med:8.3f} {p95:8.3f} {med / base:10.1f}")
        for label in ("validate broken.bpmn", "validate four_tasks.bpmn (valid)"):
            print(f"\nslowest top-level imports, {label} (cumulative ms):")
            for cum, name in top_imports(commands[label], env, args.top):
                print(f"  {cum / 1000:8.1f}  {name}")
    med = results["validate broken.bpmn"][0]
    verdict = "PASS" if med < TARGET_S else "MISS"
    print(f"\n{verdict}: validate on a small broken file, median {med:.3f}s (target < {TARGET_S:.1f}s)")
    return 0 if verdict == "PASS" else 1


if __name__ == "__main__":
    sys.exit(main())
