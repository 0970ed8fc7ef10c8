"""Production serving, the scheduler process and the configuration check, on real processes.

gunicorn, the development server and `gridflow scheduler` run as subprocesses on 127.0.0.1 and
are checked with a real HTTP client; every process a test starts is stopped when it ends,
failed or not. No assertion here measures time: deadlines only bound the waiting.
"""
from __future__ import annotations

import gzip
import json
import multiprocessing as mp
import re
import signal
import subprocess
import sys
from collections import Counter
from datetime import timedelta

import pytest
from sqlalchemy import func, select

from engine import clock
from engine.db import Database
from engine.models import Instance, InstanceEvent
from engine.runtime import Runtime
from grid.config import ConfigError, Settings
from tests.engine_helpers import deploy_fixture
from tests.server_helpers import (  # noqa: E402 - the helpers every server test shares
    GRIDFLOW,
    KEY,
    ROOT,
    children,
    env_for,
    free_port,
    get,
    healthy,
    http_sign_in,
    started,
    until,
)


@pytest.fixture(scope="module")
def world(tmp_path_factory) -> str:
    """A SQLite file with ./workflows deployed and the small demo city: what a deployment has."""
    from grid.cases.scenario import prepare

    path = tmp_path_factory.mktemp("world") / "gridflow.sqlite"
    db = Database(f"sqlite:///{path}")
    prepare(db, ROOT / "workflows", ROOT / "forms")
    db.dispose()
    return f"sqlite:///{path}"


def test_gunicorn_compresses_hides_version_caches_static_logs_user_and_reloads(world, tmp_path):
    from grid.org import service as org

    port = free_port()
    env = env_for(world, tmp_path, GRIDFLOW_ENV="production", GRIDFLOW_SECRET_KEY=KEY, GRIDFLOW_WORKERS="2",
                  GRIDFLOW_BIND=f"127.0.0.1:{port}")
    with started([*GRIDFLOW, "serve", "--production"], env, tmp_path, "gunicorn") as web:
        until(lambda: healthy(port), "gunicorn answers /healthz", web)
        health = json.loads(get(port, "/healthz").body)
        assert health["status"] == "ok" and health["db_ok"] is True
        assert "database" not in health and "sqlite" not in json.dumps(health), "/healthz names no database"

        page = get(port, "/login", {"Accept-Encoding": "gzip"})
        assert page.status == 200 and page.getheader("Content-Encoding") == "gzip"
        html = gzip.decompress(page.body).decode()
        assert "登录" in html
        server = page.getheader("Server")
        assert server == "gunicorn" and not re.search(r"\d", server), server
        assert page.getheader("Cache-Control") == "no-store"  # pages carry personal data

        css = re.search(r'/static/css/app\.css\?v=([0-9a-f]{12})', html)
        assert css, "static URLs carry a content hash"
        static = get(port, css.group(0), {"Accept-Encoding": "gzip"})
        assert static.status == 200
        cache = static.getheader("Cache-Control")
        assert "max-age=31536000" in cache and "immutable" in cache and "public" in cache
        stale = get(port, "/static/css/app.css?v=000000000000")
        assert "immutable" not in (stale.getheader("Cache-Control") or ""), "a stale hash is not cached for a year"

        # sign in over HTTP; the access log names the staff member
        _, jar = http_sign_in(port)
        assert {c.name for c in jar} == {"gridflow_session"}
        db = Database(world)
        try:
            with db.read() as s:
                sid = org.staff_by_username(s, "jiangranran").id
        finally:
            db.dispose()
        until(lambda: re.search(rf'{re.escape(str(sid))} "GET /[^"]* HTTP/1.1" 200', web.log()),
              "the access log has the user id", web)
        assert re.search(r'- "GET /healthz HTTP/1.1" 200', web.log()), "anonymous requests log '-'"

        # graceful reload: HUP replaces every worker, the server keeps answering
        old = until(lambda: children(web.pid) if len(children(web.pid)) == 2 else None, "two workers", web)
        web.signal(signal.SIGHUP)
        until(lambda: (lambda now: len(now) == 2 and not now & old)(children(web.pid)), "new workers after HUP", web)
        until(lambda: healthy(port), "answers after the reload", web)
        assert "Handling signal: hup" in web.log()

        web.signal(signal.SIGTERM)
        assert web.wait(60) == 0
        assert "scheduler" not in web.log().lower(), "no scheduler runs in the web workers"


def test_dev_server_gives_no_version(world, tmp_path):
    port = free_port()
    env = env_for(world, tmp_path)
    with started([*GRIDFLOW, "serve", "--no-scheduler", "--port", str(port)], env, tmp_path, "dev") as dev:
        until(lambda: healthy(port), "the development server answers", dev)
        r = get(port, "/login", {"Accept-Encoding": "gzip"})
        server = r.getheader("Server")
        assert server == "gridflow" and "werkzeug" not in server.lower() and not re.search(r"\d", server)
        assert r.getheader("Content-Encoding") == "gzip"


def test_production_refuses_to_start_without_a_secret_key(world, tmp_path):
    env = env_for(world, tmp_path, GRIDFLOW_ENV="production")
    r = subprocess.run([*GRIDFLOW, "serve", "--production"], env=env, cwd=ROOT, capture_output=True, text=True,
                       timeout=120)
    assert r.returncode == 1 and "GRIDFLOW_SECRET_KEY" in r.stderr, r.stderr
    # gunicorn started directly: the workers refuse to boot, so the master gives up
    port = free_port()
    with started([sys.executable, "-m", "gunicorn", "-c", "web/gunicorn_conf.py", "-b", f"127.0.0.1:{port}",
                  "-w", "1", "web.wsgi:app"], env, tmp_path, "nokey") as g:
        code = until(lambda: g.p.poll(), "gunicorn exits", seconds=120)
        assert code != 0
        assert "GRIDFLOW_SECRET_KEY" in g.log()
    with pytest.raises(ConfigError, match="GRIDFLOW_SECRET_KEY"):
        from web import create_app

        create_app(Settings(database_url=world, env="production", secret_key=None))


@pytest.mark.parametrize("extra", [
    {},  # no secret key
    {"GRIDFLOW_SECRET_KEY": KEY, "GRIDFLOW_PROXY_HOPS": "1"},  # TLS at the proxy, cookies not Secure
    {"GRIDFLOW_SECRET_KEY": KEY, "GRIDFLOW_SECURE_COOKIES": "1", "GRIDFLOW_DEBUG": "1"},
    {"GRIDFLOW_SECRET_KEY": KEY, "GRIDFLOW_DATA_KEY": ""},  # personal data could not be encrypted
    {"GRIDFLOW_SECRET_KEY": KEY, "GRIDFLOW_DATA_KEY": "c2hvcnQ="},  # base64, but not 32 bytes
], ids=["no-secret-key", "insecure-cookies-behind-tls", "debug-on", "no-data-key", "short-data-key"])
def test_check_config_refuses_unsafe_production(tmp_path, extra):
    env = env_for(f"sqlite:///{tmp_path}/g.sqlite", tmp_path, GRIDFLOW_ENV="production", **extra)
    r = subprocess.run([*GRIDFLOW, "check-config"], env=env, cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert r.returncode == 1, r.stdout
    assert "unsafe:" in r.stdout and "must not run in production" in r.stdout


def test_check_config_accepts_a_safe_production_config(tmp_path):
    env = env_for("postgresql://gridflow:s3cret@db.internal/gridflow", tmp_path, GRIDFLOW_ENV="production",
                  GRIDFLOW_SECRET_KEY=KEY, GRIDFLOW_PROXY_HOPS="1", GRIDFLOW_SECURE_COOKIES="1",
                  GRIDFLOW_LOG_FORMAT="json")
    r = subprocess.run([*GRIDFLOW, "check-config"], env=env, cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stdout
    assert "unsafe" not in r.stdout and r.stdout.rstrip().endswith("ok")
    assert "s3cret" not in r.stdout and KEY not in r.stdout, "secrets are masked"
    assert re.search(r"GRIDFLOW_SESSION_HOURS\s+8\s+\(default\)", r.stdout)
    bad = subprocess.run([*GRIDFLOW, "check-config"], env={**env, "GRIDFLOW_ENV": "prod"}, cwd=ROOT,
                         capture_output=True, text=True, timeout=60)
    assert bad.returncode == 1 and "GRIDFLOW_ENV" in bad.stdout, "a misspelt environment is not silently dev"


def test_secure_cookies_and_proxy_hops_apply(world, tmp_path):
    from web import create_app

    settings = Settings(database_url=world, uploads=tmp_path / "uploads", secret_key=KEY, secure_cookies=True,
                        proxy_hops=1, session_hours=2)
    app = create_app(settings)
    try:
        assert app.config["PERMANENT_SESSION_LIFETIME"] == timedelta(hours=2)
        r = app.test_client().get("/login", headers={"X-Forwarded-Proto": "https", "X-Forwarded-For": "203.0.113.9"})
        cookie = r.headers["Set-Cookie"]
        assert cookie.startswith("gridflow_session=") and "Secure" in cookie and "HttpOnly" in cookie
        assert r.headers["Strict-Transport-Security"].startswith("max-age="), "the proxy's https is believed"
    finally:
        app.extensions["gridflow"].db.dispose()


def _key_worker(instance: str, barrier, out) -> None:
    from flask import Flask

    from web import _secret_key

    barrier.wait(timeout=60)
    out.put(_secret_key(Flask("gridflow_key_test", instance_path=instance)))


def test_generated_secret_key_is_the_same_for_workers_starting_together(tmp_path):
    ctx = mp.get_context("spawn")
    barrier, out = ctx.Barrier(4), ctx.Queue()
    procs = [ctx.Process(target=_key_worker, args=(str(tmp_path / "instance"), barrier, out)) for _ in range(4)]
    for p in procs:
        p.start()
    try:
        keys = [out.get(timeout=120) for _ in procs]
    finally:
        for p in procs:
            p.join(30)
            if p.is_alive():
                p.kill()
    assert len(set(keys)) == 1 and len(keys[0]) == 64
    assert (tmp_path / "instance" / "secret_key").read_text() == keys[0]
    assert (tmp_path / "instance" / "secret_key").stat().st_mode & 0o777 == 0o600


def _timer_events(db: Database) -> Counter:
    with db.read() as s:
        return Counter(s.scalars(select(InstanceEvent.instance_id).where(InstanceEvent.kind == "timer_fired")))


def test_scheduler_process_fires_a_due_timer_and_stops_on_sigterm(sqlite_db, tmp_path):
    db = sqlite_db
    deploy_fixture(db, "engine_features.bpmn")
    iid = Runtime(db).start("child_timer").instance_id  # real clock: its reminder is due in a day
    url = db.url_with_password
    # the test clock is read only with GRIDFLOW_ENV=test
    ignored = subprocess.run([*GRIDFLOW, "sweep"], env=env_for(url, tmp_path, GRIDFLOW_TEST_CLOCK="+PT25H"),
                             cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert ignored.returncode == 0 and "fired timers on 0 instance(s)" in ignored.stdout, ignored.stderr
    assert _timer_events(db) == Counter()

    env = env_for(url, tmp_path, GRIDFLOW_ENV="test", GRIDFLOW_TEST_CLOCK="+PT25H", GRIDFLOW_LOG_FORMAT="json")
    with started([*GRIDFLOW, "scheduler"], env, tmp_path, "scheduler") as sched:
        until(lambda: _timer_events(db)[iid] == 1, "the scheduler fires the due timer", sched)

        def records() -> list[dict]:
            return [json.loads(line) for line in sched.err.read_text().splitlines() if line.startswith("{")]

        until(lambda: any(r["logger"] == "gridflow.timers" and "fired 1 instance(s)" in r["message"]
                          for r in records()), "the scheduler logs what it fired, as JSON lines", sched)
        sched.signal(signal.SIGTERM)
        assert sched.wait(60) == 0, sched.log()
        assert any(r["message"] == "scheduler stopped" for r in records()), sched.log()
    assert _timer_events(db) == Counter({iid: 1})


def test_two_scheduler_processes_on_postgresql_fire_each_timer_once(pg_db, tmp_path):
    db = pg_db
    deploy_fixture(db, "engine_features.bpmn")
    rt = Runtime(db)
    ids = [rt.start("child_timer").instance_id for _ in range(60)]
    env = env_for(db.url_with_password, tmp_path, GRIDFLOW_ENV="test", GRIDFLOW_TEST_CLOCK="+PT25H")
    due_by = clock.now() + timedelta(hours=25)
    with started([*GRIDFLOW, "scheduler"], env, tmp_path, "s1") as s1, \
            started([*GRIDFLOW, "scheduler"], env, tmp_path, "s2") as s2:
        until(lambda: len(_timer_events(db)) == len(ids), "both schedulers together fire every timer", s1)
        for s in (s1, s2):  # SIGTERM only once each has its handler (one may still be starting up)
            until(lambda s=s: "timer sweep every" in s.log(), "the scheduler is running", s)
        for s in (s1, s2):
            assert s.p.poll() is None, s.log()
            s.signal(signal.SIGTERM)
        assert s1.wait(60) == 0 and s2.wait(60) == 0
    events = _timer_events(db)
    assert set(events) == set(ids) and set(events.values()) == {1}, "each timer fired exactly once"
    with db.read() as s:
        assert s.scalar(select(func.count()).select_from(Instance).where(Instance.next_timer_at <= due_by)) == 0
