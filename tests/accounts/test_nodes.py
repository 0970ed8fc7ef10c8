"""Two real gunicorn processes on one PostgreSQL database: a session opened on one works on the
other, and ending it on either (or from a third process, as the admin pages will) refuses it on
both at once. No assertion measures time; deadlines only bound the waiting."""
from __future__ import annotations

import urllib.parse
import urllib.request
from pathlib import Path

from grid.org import sessions
from tests.server_helpers import (
    GRIDFLOW,
    KEY,
    TOKEN,
    env_for,
    free_port,
    get,
    healthy,
    http_sign_in,
    started,
    until,
)
from tests.web_helpers import staff_id

ROOT = Path(__file__).resolve().parent.parent.parent


def sign_in(port: int) -> tuple[urllib.request.OpenerDirector, str]:
    """(an opener holding the session, the session cookie's value) after a sign-in on `port`."""
    opener, jar = http_sign_in(port)
    return opener, next(c.value for c in jar if c.name == "gridflow_session")


def status(port: int, value: str) -> int:
    r = get(port, "/", {"Cookie": f"gridflow_session={value}"})
    assert r.status in (200, 302)
    if r.status == 302:
        assert r.getheader("Location").startswith("/login")
    return r.status


def test_ending_sessions_takes_effect_on_every_node(pg_db, pg_url, tmp_path):
    from grid.cases.scenario import prepare

    svc = prepare(pg_db, ROOT / "workflows", ROOT / "forms")
    ports = free_port(), free_port()
    with started([*GRIDFLOW, "serve", "--production"],
                 env_for(pg_url, tmp_path, GRIDFLOW_ENV="production", GRIDFLOW_SECRET_KEY=KEY, GRIDFLOW_WORKERS="1",
                         GRIDFLOW_BIND=f"127.0.0.1:{ports[0]}"), tmp_path, "node-a") as a, \
            started([*GRIDFLOW, "serve", "--production"],
                    env_for(pg_url, tmp_path, GRIDFLOW_ENV="production", GRIDFLOW_SECRET_KEY=KEY,
                            GRIDFLOW_WORKERS="1", GRIDFLOW_BIND=f"127.0.0.1:{ports[1]}"), tmp_path, "node-b") as b:
        for port, proc in zip(ports, (a, b), strict=True):
            until(lambda port=port: healthy(port), f"gunicorn on {port} answers /healthz", proc)

        on_a, first = sign_in(ports[0])
        _, second = sign_in(ports[1])
        assert [status(p, v) for v in (first, second) for p in ports] == [200] * 4  # each works on both

        # "end all other sessions" on node A ends the session opened on node B, on both nodes
        base = f"http://127.0.0.1:{ports[0]}"
        token = TOKEN.search(on_a.open(f"{base}/settings", timeout=30).read().decode()).group(1)
        on_a.open(f"{base}/settings/sessions/end-others", data=urllib.parse.urlencode({"csrf_token": token}).encode(),
                  timeout=30)
        assert [status(p, second) for p in ports] == [302, 302]
        assert [status(p, first) for p in ports] == [200, 200]

        # an administrator's "sign out everywhere", from a third process
        assert sessions.end_all(svc, staff_id(svc, "jiangranran"), "admin_sign_out") == 1
        assert [status(p, first) for p in ports] == [302, 302]
