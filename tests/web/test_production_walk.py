"""The README's "Production deployment" section, walked as a new user would on this machine.

From an empty PostgreSQL database: the environment file made from deploy/gridflow.env.example,
the README's own line `set -a; . gridflow.env; gridflow check-config && gridflow db upgrade &&
gridflow deploy`, the small demo city, then the two services: `gridflow serve --production`
(gunicorn) and `gridflow scheduler`. A real HTTP client signs in as the grid worker and reports a
dispute, the grid head completes the dispatch task, and the scheduler, restarted with a clock
moved past the village level's warning time, opens the 督办 supervision, seen by the supervisor.

What differs from the README, and why: no sudo, systemd or nginx here (the services are
subprocesses; the client talks plain HTTP to gunicorn, so the proxy settings of the example,
GRIDFLOW_PROXY_HOPS and GRIDFLOW_SECURE_COOKIES, are turned off), GRIDFLOW_DATA_KEY is filled
in (the example file leaves it empty, as the README says to edit it), and the code is this checkout with its virtualenv
instead of a fresh clone. No assertion measures time.
"""
from __future__ import annotations

import re
import shlex
import signal
import subprocess
from datetime import timedelta
from pathlib import Path

from sqlalchemy import select

from engine.db import Database
from engine.models import Instance, InstanceEvent
from grid.cases.models import DisputeCase
from grid.org.passwords import DEMO_PASSWORD
from tests.server_helpers import (
    CLEAN,
    DATA_KEY,  # the test process's own key too: it reads the services' database
    GRIDFLOW,
    KEY,
    Client,
    free_port,
    healthy,
    scratch_pg,
    started,
    until,
)

ROOT = Path(__file__).resolve().parents[2]
README = ROOT / "README.md"
EXAMPLE = ROOT / "deploy" / "gridflow.env.example"
REPORT = {"grid": "420602003005015", "category": "municipal",
          "description": "南山家属院雨污分流改造，施工方拟直接刷黑路面，居民担心雨水倒灌。",
          "location.text": "襄城区檀溪社区南山家属院", "location.lat": "32.0213", "location.lng": "112.1432",
          "parties.0.name": "南山家属院居民代表", "parties.0.phone": "13800000001",
          "parties.1.name": "雨污分流改造施工方", "parties.1.phone": "13800000002"}


def readme_setup_line() -> str:
    """The README's `set -a; . /etc/gridflow/gridflow.env; ...` line, as the shell command it runs."""
    section = README.read_text(encoding="utf-8").split("## Production deployment", 1)[1].split("\n## ", 1)[0]
    line = next(ln for ln in section.splitlines() if "set -a;" in ln and "db upgrade" in ln)
    return shlex.split(line.split("sh -c", 1)[1])[0]  # what `sudo -u gridflow sh -c '...'` runs


def env_file(tmp: Path, url: str, port: int) -> Path:
    """deploy/gridflow.env.example with this site's values filled in, as the README says to edit it."""
    ours = {"GRIDFLOW_DATABASE_URL": url, "GRIDFLOW_SECRET_KEY": KEY, "GRIDFLOW_UPLOADS": str(tmp / "uploads"),
            "GRIDFLOW_WORKFLOWS": str(ROOT / "workflows"), "GRIDFLOW_FORMS": str(ROOT / "forms"),
            "GRIDFLOW_BIND": f"127.0.0.1:{port}", "GRIDFLOW_PROXY_HOPS": "0", "GRIDFLOW_SECURE_COOKIES": "0",
            "GRIDFLOW_WORKERS": "2", "GRIDFLOW_SWEEP_SECONDS": "1",
            # empty in the example file; production refuses to touch the registry without it
            "GRIDFLOW_DATA_KEY": DATA_KEY}
    lines, seen = [], set()
    for line in EXAMPLE.read_text(encoding="utf-8").splitlines():
        name = line.lstrip("# ").split("=", 1)[0]
        if name in ours and "=" in line:
            line, _ = f"{name}={ours[name]}", seen.add(name)
        lines.append(line)
    lines += [f"{k}={v}" for k, v in ours.items() if k not in seen]
    path = tmp / "gridflow.env"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def read_env(path: Path) -> dict[str, str]:
    """What `set -a; . gridflow.env` exports (the file holds plain NAME=value lines)."""
    out = {}
    for line in path.read_text(encoding="utf-8").splitlines():
        if line.strip() and not line.lstrip().startswith("#"):
            name, value = line.split("=", 1)
            out[name.strip()] = value.split("#", 1)[0].strip()
    return out


def shell(command: str, env: dict[str, str]) -> subprocess.CompletedProcess:
    r = subprocess.run(["sh", "-c", command], env=env, cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, f"`{command}` failed ({r.returncode}):\n{r.stdout[-3000:]}\n{r.stderr[-3000:]}"
    return r


def test_readme_production_section_walked_on_postgresql(tmp_path):
    with scratch_pg("gridflow_walk") as url:
        port = free_port()
        envfile = env_file(tmp_path, url, port)
        (tmp_path / "uploads").mkdir()
        base = {**CLEAN, "PATH": f"{ROOT / '.venv' / 'bin'}:{CLEAN.get('PATH', '')}"}

        # the README's line, with our file for /etc/gridflow/gridflow.env
        setup = shell(readme_setup_line().replace("/etc/gridflow/gridflow.env", str(envfile)), base)
        assert "database is at the latest schema (postgresql)" in setup.stdout, setup.stdout
        env = {**base, **read_env(envfile)}
        assert env["GRIDFLOW_ENV"] == "production"
        demo = shell(f"{GRIDFLOW[0]} demo --size small --no-serve", env)
        assert "jiangranran" in demo.stdout and "qiuyun" in demo.stdout, demo.stdout

        with started([*GRIDFLOW, "serve", "--production"], env, tmp_path, "web") as web, \
                started([*GRIDFLOW, "scheduler"], env, tmp_path, "scheduler") as sched:
            until(lambda: healthy(port), "gunicorn answers /healthz", web)
            until(lambda: "timer sweep (start-up) fired 0 instance(s)" in sched.log(), "the scheduler starts", sched)

            # the grid worker reports a dispute
            worker = Client(port)
            worker.sign_in("jiangranran", DEMO_PASSWORD)
            form = worker.get("/report")
            assert form.status == 200 and "矛盾纠纷上报" in form.text
            page = worker.post("/report", {**REPORT, "csrf_token": form.token()})
            m = re.fullmatch(r"/cases/(\d+)", page.path)
            assert page.status == 200 and m and "已上报，案件编号" in page.text, (page.status, page.url)
            case_id = int(m.group(1))

            # the grid head opens the dispatch task from the case page and dispatches to the mediators
            head = Client(port)
            head.sign_in("qiuyun", DEMO_PASSWORD)
            case_page = head.get(f"/cases/{case_id}")
            tasks = re.findall(r'href="(/tasks/[^"]+)"', case_page.text)
            assert len(tasks) == 1, tasks
            task = head.get(tasks[0])
            assert task.status == 200 and 'name="action" value="dispatch"' in task.text
            people = re.findall(r'name="assignees" value="([^"]+)"', task.text)
            lock = re.search(r'name="lock_version" value="(\d+)"', task.text).group(1)
            assert people
            done = head.post(tasks[0], {"csrf_token": task.token(), "lock_version": lock, "action": "dispatch",
                                        "assignees": people})
            assert done.status == 200 and done.path != tasks[0], (done.status, done.url, done.text[:800])
            assert head.get(tasks[0]).text.count('name="lock_version"') == 0, "the dispatch task is done"

            # the real clock: nothing is due yet, and the supervisor has no 督办 task
            db = Database(url)
            try:
                with db.read() as s:
                    c = s.get(DisputeCase, case_id)
                    warning_at = s.get(Instance, c.instance_id).next_timer_at
                assert warning_at is not None, "the village level's warning timer is armed"
                supervisor = Client(port)
                supervisor.sign_in("sup.420602003005", DEMO_PASSWORD)
                assert "督办催办" not in supervisor.get("/").text

                # restart the scheduler with its clock a minute past the warning time
                sched.signal(signal.SIGTERM)
                assert sched.wait(60) == 0, sched.log()
                moved = {**env, "GRIDFLOW_ENV": "test",
                         "GRIDFLOW_TEST_CLOCK": (warning_at + timedelta(minutes=1)).isoformat()}
                with started([*GRIDFLOW, "scheduler"], moved, tmp_path, "scheduler-moved") as later:
                    # the demo city's household visits have timers too: those fire as well
                    until(lambda: "timer sweep (start-up) fired" in later.log(), "the scheduler sweeps", later)
                    until(lambda: "督办催办" in supervisor.get("/").text, "the supervisor's inbox has 督办", later)
                with db.read() as s:
                    fired = list(s.scalars(select(InstanceEvent.id).where(
                        InstanceEvent.kind == "timer_fired", InstanceEvent.instance_id == c.instance_id)))
                    c = s.get(DisputeCase, case_id)
                    assert len(fired) == 1 and c.warnings == 1 and c.overdue == 0
                assert "预警" in head.get(f"/cases/{case_id}").text
            finally:
                db.dispose()
