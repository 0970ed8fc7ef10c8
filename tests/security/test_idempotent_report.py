"""Idempotent report submission (issue 17, defect 15): a phone that retries after a lost response
sends the same form again. Three identical concurrent POSTs over HTTP against gunicorn (two
workers) create one case, and each gets that case back. SQLite and PostgreSQL."""
from __future__ import annotations

import re
import threading
from pathlib import Path

import pytest
from sqlalchemy import func, select

from engine.db import Database
from grid.cases.models import DisputeCase
from grid.org.passwords import DEMO_PASSWORD
from tests.server_helpers import GRIDFLOW, Client, free_port, gunicorn_env, healthy, started, until

ROOT = Path(__file__).resolve().parents[2]
REPORT = {"grid": "420602003005015", "category": "neighbour", "description": "楼上漏水，楼下住户多次协商未果。",
          "location.text": "襄城区檀溪社区南山家属院", "parties.0.name": "楼下住户"}


def _cases(db: Database) -> int:
    with db.read() as s:
        return s.scalar(select(func.count()).select_from(DisputeCase))


@pytest.mark.slow
def test_three_identical_concurrent_posts_make_one_case(db, db_url, tmp_path):
    from grid.cases.scenario import prepare

    prepare(db, ROOT / "workflows", ROOT / "forms")
    port = free_port()
    with started([*GRIDFLOW, "serve", "--production"], gunicorn_env(db_url, tmp_path, port, workers=2), tmp_path,
                 "web") as web:
        until(lambda: healthy(port), "gunicorn answers /healthz", web)
        client = Client(port)
        client.sign_in("jiangranran", DEMO_PASSWORD)
        form = client.get("/report")
        token = re.search(r'name="submit_token" value="([0-9a-f]{32})"', form.text).group(1)
        fields = {**REPORT, "csrf_token": form.token(), "submit_token": token}
        before = _cases(db)
        pages: list = []
        go = threading.Barrier(3)

        def post() -> None:
            go.wait()
            pages.append(client.on(port).post("/report", fields))

        threads = [threading.Thread(target=post) for _ in range(3)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(60)
        assert len(pages) == 3
        assert {p.status for p in pages} == {200}, [(p.status, p.text[:300]) for p in pages]
        assert len({p.path for p in pages}) == 1 and re.fullmatch(r"/cases/\d+", pages[0].path)
        assert _cases(db) == before + 1, "one case for one form, however often it was sent"
        # a fresh form is a new report
        again = client.get("/report")
        assert client.post("/report", {**REPORT, "csrf_token": again.token(),
                                       "submit_token": re.search(r'name="submit_token" value="(\w+)"', again.text).group(1)}
                           ).path != pages[0].path
        assert _cases(db) == before + 2
