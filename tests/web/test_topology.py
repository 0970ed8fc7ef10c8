"""More than one node on one machine: two gunicorn instances and two `gridflow scheduler`
processes on one PostgreSQL database and one shared uploads directory (GRIDFLOW_UPLOADS).

A real HTTP client (urllib with a cookie jar, CSRF tokens read from the pages) signs in on node A
and goes on on node B with the same cookie; a photo reported on A is served by B byte for byte;
signing out on A ends the session on both; with the schedulers' clock moved past several cases'
warning time, each due timer fires exactly once although both schedulers sweep. No assertion
measures time: deadlines only bound the waiting.
"""
from __future__ import annotations

import re
import time
from collections import Counter
from datetime import timedelta
from pathlib import Path

from sqlalchemy import select

from engine.db import Database
from engine.models import Instance, InstanceEvent
from grid.org.passwords import DEMO_PASSWORD
from tests.server_helpers import (
    GRIDFLOW,
    Client,
    env_for,
    free_port,
    get,
    gunicorn_env,
    healthy,
    started,
    until,
)
from tests.web_helpers import png

ROOT = Path(__file__).resolve().parents[2]
WORKFLOWS, FORMS = ROOT / "workflows", ROOT / "forms"
REPORT = {"grid": "420602003005015", "category": "municipal",
          "description": "南山家属院雨污分流改造，居民担心雨水倒灌进楼道。", "location.text": "襄城区檀溪社区南山家属院",
          "location.lat": "32.0213", "location.lng": "112.1432",
          "parties.0.name": "南山家属院居民代表", "parties.0.phone": "13800000001",
          "parties.1.name": "雨污分流改造施工方", "parties.1.phone": "13800000002"}


def report(client: Client, description: str, photo: bytes | None = None) -> int:
    """Report a dispute through the form (a photo as multipart); the case id from the redirect."""
    form = client.get("/report")
    assert form.status == 200, form.text[:500]
    files = [("photos", "现场.png", photo, "image/png")] if photo else None
    page = client.post("/report", {**REPORT, "description": description, "csrf_token": form.token()}, files)
    m = re.fullmatch(r"/cases/(\d+)", page.path)
    assert page.status == 200 and m, (page.status, page.url, page.text[:1000])
    return int(m.group(1))


def timer_events(db: Database) -> Counter:
    with db.read() as s:
        return Counter(s.scalars(select(InstanceEvent.instance_id).where(InstanceEvent.kind == "timer_fired")))


def armed(db: Database) -> dict[str, object]:
    """instance id -> when its next timer is due, for every instance with a timer."""
    with db.read() as s:
        rows = s.execute(select(Instance.id, Instance.next_timer_at).where(Instance.next_timer_at.is_not(None)))
        return {iid: at for iid, at in rows}


def status_with(port: int, cookie: str) -> int:
    """The inbox's status for a bare copy of the session cookie (302 to /login when it has ended)."""
    r = get(port, "/", {"Cookie": f"gridflow_session={cookie}"})
    if r.status == 302:
        assert r.getheader("Location").startswith("/login")
    return r.status


def test_two_web_nodes_and_two_schedulers_share_one_database_and_uploads(pg_db, pg_url, tmp_path):
    from grid.cases.scenario import prepare

    prepare(pg_db, WORKFLOWS, FORMS)
    ports = free_port(), free_port()
    uploads = tmp_path / "uploads"  # one directory for both nodes (GRIDFLOW_UPLOADS)
    with started([*GRIDFLOW, "serve", "--production"], gunicorn_env(pg_url, tmp_path, ports[0]), tmp_path,
                 "node-a") as a, \
            started([*GRIDFLOW, "serve", "--production"], gunicorn_env(pg_url, tmp_path, ports[1]), tmp_path,
                    "node-b") as b:
        for port, proc in zip(ports, (a, b), strict=True):
            until(lambda port=port: healthy(port), f"gunicorn on {port} answers /healthz", proc)

        # signed in on A, going on on B with the same cookie
        on_a = Client(ports[0])
        on_a.sign_in("jiangranran", DEMO_PASSWORD)
        on_b = on_a.on(ports[1])
        inbox = on_b.get("/")
        assert inbox.status == 200 and inbox.path == "/" and "我的待办" in inbox.text
        assert on_b.get("/report").status == 200

        # a photo reported on A is served by B
        photo = png(7, 5)
        case_id = report(on_a, "雨污分流改造，附现场照片", photo)
        page = on_b.get(f"/cases/{case_id}")
        assert page.status == 200 and "南山家属院" in page.text, page.text[:500]
        links = sorted(set(re.findall(r'href="(/attachments/[^"?#]+/original)"', page.text)))
        assert len(links) == 1, links
        served = on_b.get(links[0])  # the original, as a download (pages show its renditions)
        assert served.status == 200 and served.raw == photo
        assert served.headers["Content-Type"].startswith("image/png")
        stored = [p for p in uploads.rglob("*") if p.is_file()]
        originals = [p.read_bytes() for p in stored if "." not in p.name]
        assert originals == [photo] and len(stored) == 3, "one copy and its two renditions, in the shared directory"

        # more cases, alternately on each node: several warning timers, all armed
        ids = [case_id] + [report(c, f"第{i}起纠纷") for i, c in enumerate((on_b, on_a, on_b), start=2)]
        assert len(set(ids)) == 4
        timers = armed(pg_db)
        assert len(timers) >= 4, timers
        # the schedulers' clock: a minute past the latest first timer (each case's warning);
        # the next timers (overdue) are days later, so each instance has exactly one timer due
        moved_to = max(timers.values()) + timedelta(minutes=1)
        due = {iid for iid, at in timers.items() if at <= moved_to}
        assert due == set(timers)
        assert timer_events(pg_db) == Counter()

        clock = moved_to.isoformat() if moved_to.tzinfo else moved_to.isoformat() + "+00:00"
        sched_env = env_for(pg_url, tmp_path, GRIDFLOW_ENV="test", GRIDFLOW_TEST_CLOCK=clock)
        with started([*GRIDFLOW, "scheduler"], sched_env, tmp_path, "sched-1") as s1, \
                started([*GRIDFLOW, "scheduler"], sched_env, tmp_path, "sched-2") as s2:
            for s in (s1, s2):
                until(lambda s=s: "timer sweep (start-up) fired" in s.log(), "a scheduler sweeps at start-up", s)
            until(lambda: set(timer_events(pg_db)) >= due, "the schedulers fire every due timer", s1)
            time.sleep(3)  # a few more sweeps of both (every second): nothing may fire twice
            assert s1.p.poll() is None and s2.p.poll() is None, s1.log() + s2.log()
        events = timer_events(pg_db)
        assert set(events) == due and set(events.values()) == {1}, events

        # the warning shows on both nodes' case page: the 督办 supervision was opened
        assert all("预警" in c.get(f"/cases/{case_id}").text for c in (on_a, on_b))

        # sign-out on A ends the session on both nodes, also for a copy of the cookie
        cookie = on_a.cookie()
        assert cookie and [status_with(p, cookie) for p in ports] == [200, 200]
        out = on_a.sign_out()
        assert out.status == 200 and out.path == "/login"
        assert [status_with(p, cookie) for p in ports] == [302, 302]
        assert on_b.get("/").path == "/login"
