"""The README's "Production deployment" section with the city's own organisation instead of the
demo: its setup line, then its `gridflow org import city.xlsx` line (the fixture city: 3 counties,
10 townships, 50 villages, 200 grids, 500 staff, units and staff sheets in one file), on
PostgreSQL; a second run of the same line changes nothing. Then gunicorn: a grid worker of the
imported city signs in over HTTP with the one-time password the import wrote, is sent to change
it first, and reaches the inbox. The differences from the README are those of
test_production_walk.py (no sudo/systemd/nginx, this checkout's virtualenv); the input file is a
copy in a temporary folder, so the one-time passwords are written beside it, not into the tree."""
from __future__ import annotations

import csv
import shlex
import shutil

from tests.conftest import FIXTURES
from tests.server_helpers import CLEAN, GRIDFLOW, Client, free_port, healthy, scratch_pg, started, until
from tests.web.test_production_walk import README, ROOT, env_file, read_env, readme_setup_line, shell


def readme_import_line() -> str:
    """The README's `... gridflow org import city.xlsx` line, as the shell command it runs."""
    section = README.read_text(encoding="utf-8").split("## Production deployment", 1)[1].split("\n## ", 1)[0]
    line = next(ln for ln in section.splitlines() if "set -a;" in ln and "org import" in ln)
    return shlex.split(line.split("sh -c", 1)[1])[0]


def test_readme_org_import_then_an_imported_worker_signs_in(tmp_path):
    city = tmp_path / "city.xlsx"
    shutil.copyfile(FIXTURES / "org" / "city.xlsx", city)
    with scratch_pg("gridflow_walkorg") as url:
        port = free_port()
        envfile = env_file(tmp_path, url, port)
        (tmp_path / "uploads").mkdir()
        base = {**CLEAN, "PATH": f"{ROOT / '.venv' / 'bin'}:{CLEAN.get('PATH', '')}"}
        shell(readme_setup_line().replace("/etc/gridflow/gridflow.env", str(envfile)), base)

        line = readme_import_line()
        assert line.split()[-1] == "city.xlsx", line
        command = line.replace("/etc/gridflow/gridflow.env", str(envfile)).removesuffix("city.xlsx") + str(city)
        first = shell(command, base)
        assert "units: 264 added" in first.stdout and "staff: 500 added" in first.stdout, first.stdout
        codes = tmp_path / "city.initial-passwords.csv"
        rows = list(csv.DictReader(open(codes, encoding="utf-8")))
        assert len(rows) == 500 and (codes.stat().st_mode & 0o777) == 0o600
        again = shell(command, base)
        assert "nothing changed" in again.stdout, again.stdout

        env = {**base, **read_env(envfile)}
        staff = list(csv.DictReader(open(FIXTURES / "org" / "staff.csv", encoding="utf-8")))
        phone = next(r["phone"] for r in staff if r["role"] == "grid_worker")
        otp = next(r["initial_password"] for r in rows if r["username"] == phone)
        with started([*GRIDFLOW, "serve", "--production"], env, tmp_path, "web") as web:
            until(lambda: healthy(port), "gunicorn answers /healthz", web)
            worker = Client(port)
            page = worker.post("/login", {"username": phone, "password": otp, "csrf_token": worker.get("/login").token()})
            assert page.status == 200 and page.path == "/account/password", (page.status, page.url)
            assert worker.get("/").path == "/account/password", "nothing else before the password is changed"
            new = "Wangge-Xinren-2026"
            done = worker.post("/account/password", {"csrf_token": page.token(), "current_password": otp,
                                                      "new_password": new, "confirm": new})
            assert done.status == 200 and done.path == "/", (done.status, done.url, done.text[:300])
            assert "我的待办" in worker.get("/").text
