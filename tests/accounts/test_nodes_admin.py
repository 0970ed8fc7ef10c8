"""An administrator's password reset and deactivation end the person's sessions at once on every
node: two real gunicorn processes on one PostgreSQL database, the person signed in on both (one
session opened on each, each tried on both nodes), the administrator acting through the admin
pages on one node or the other. No assertion measures time; deadlines only bound the waiting."""
from __future__ import annotations

from pathlib import Path

from grid.org import accounts
from grid.org.passwords import DEMO_PASSWORD
from tests.server_helpers import GRIDFLOW, Client, free_port, gunicorn_env, healthy, started, until
from tests.web_helpers import staff_id

ROOT = Path(__file__).resolve().parent.parent.parent


def test_reset_and_deactivation_end_sessions_on_both_nodes(pg_db, pg_url, tmp_path):
    from grid.cases.scenario import prepare

    svc = prepare(pg_db, ROOT / "workflows", ROOT / "forms")
    a, b = free_port(), free_port()
    with started([*GRIDFLOW, "serve", "--production"], gunicorn_env(pg_url, tmp_path, a), tmp_path, "node-a") as pa, \
            started([*GRIDFLOW, "serve", "--production"], gunicorn_env(pg_url, tmp_path, b), tmp_path, "node-b") as pb:
        for port, proc in ((a, pa), (b, pb)):
            until(lambda port=port: healthy(port), f"gunicorn on {port} answers /healthz", proc)
        boss = Client(a)
        landed = boss.post("/login", {"username": "admin", "password": DEMO_PASSWORD,
                                      "csrf_token": boss.get("/login").token()})
        assert landed.status == 200 and landed.path == "/admin/", (landed.status, landed.url)  # admins land there

        # the reset is done on node A, the deactivation on node B
        for victim, action, node in (("med1.420602003005", "reset-password", a),
                                     ("med2.420602003005", "deactivate", b)):
            on_a, on_b = Client(a), Client(b)
            on_a.sign_in(victim, DEMO_PASSWORD)
            on_b.sign_in(victim, DEMO_PASSWORD)
            everywhere = (on_a, on_a.on(b), on_b, on_b.on(a))  # each session on each node
            assert [c.get("/").path for c in everywhere] == ["/"] * 4

            sid = staff_id(svc, victim)
            admin = boss.on(node)
            page = admin.get(f"/admin/org/staff/{sid}")
            assert page.status == 200, (page.status, page.url)
            done = admin.post(f"/admin/org/staff/{sid}/{action}", {"csrf_token": page.token()})
            assert done.status == 200 and done.path.startswith(f"/admin/org/staff/{sid}"), (done.status, done.url)
            assert ('class="otp"' in done.text) == (action == "reset-password")  # the one-time password shown
            assert [c.get("/").path for c in everywhere] == ["/login"] * 4, f"{action} left a session open"

        assert accounts.account(svc, staff_id(svc, "med2.420602003005")) is None  # deactivated
        late = Client(b)
        again = late.post("/login", {"username": "med1.420602003005", "password": DEMO_PASSWORD,
                                     "csrf_token": late.get("/login").token()})
        assert again.status == 401 and again.path == "/login" and late.get("/").path == "/login", \
            "the reset replaced the old password"
