"""A real gunicorn serving the exchange app (tests/api/wsgi_app.py) on a test database, and a
tiny HTTP client for it. Every process started here is stopped when the test ends, failed or not;
deadlines only bound the waiting, nothing measures time."""
from __future__ import annotations

import http.client
import json
import os
import secrets
import signal
import subprocess
import sys
import time
import urllib.parse
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.server_helpers import ROOT, env_for, free_port


@dataclass
class Reply:
    status: int
    headers: dict[str, str]
    body: bytes

    @property
    def json(self):
        return json.loads(self.body) if self.body else None

    def header(self, name: str) -> str | None:
        return self.headers.get(name.lower())


@dataclass
class Server:
    """A running gunicorn: its port and its log files."""

    port: int
    proc: subprocess.Popen
    out: Path
    err: Path

    def log(self) -> str:
        return self.out.read_text(errors="replace") + self.err.read_text(errors="replace")

    def call(self, method: str, path: str, *, token: str | None = None, params: dict | None = None,
             json_body=None, form: dict | None = None, headers: dict | None = None) -> Reply:
        """One request on a fresh connection (so successive calls spread over the workers)."""
        h = dict(headers or {})
        if token:
            h["Authorization"] = f"Bearer {token}"
        if params:
            path += ("&" if "?" in path else "?") + urllib.parse.urlencode(params)
        body = None
        if json_body is not None:
            body, h["Content-Type"] = json.dumps(json_body, ensure_ascii=False).encode(), "application/json"
        elif form is not None:
            body = urllib.parse.urlencode(form).encode()
            h["Content-Type"] = "application/x-www-form-urlencoded"
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=60)
        try:
            conn.request(method, path, body=body, headers=h)
            r = conn.getresponse()
            return Reply(r.status, {k.lower(): v for k, v in r.getheaders()}, r.read())
        finally:
            conn.close()


def until(check, what: str, server: Server | None = None, seconds: float = 120, pause: float = 0.2):
    """Poll `check` until it returns something truthy; fail with the server's log otherwise."""
    deadline = time.monotonic() + seconds
    while True:
        try:
            result = check()
        except (OSError, http.client.HTTPException):
            result = None
        if result:
            return result
        if server is not None and server.proc.poll() is not None:
            pytest.fail(f"{what}: gunicorn exited with {server.proc.returncode}\n{server.log()}")
        if time.monotonic() > deadline:
            pytest.fail(f"{what}: not within {seconds}s\n{server.log() if server else ''}")
        time.sleep(pause)


@contextmanager
def gunicorn(url: str, tmp: Path, workers: int = 2, threads: int = 2) -> Iterator[Server]:
    """gunicorn with the production settings, `workers` processes, on database `url`."""
    port = free_port()
    env = env_for(url, tmp, GRIDFLOW_ENV="production", GRIDFLOW_SECRET_KEY=secrets.token_hex(32),
                  GRIDFLOW_BIND=f"127.0.0.1:{port}", GRIDFLOW_WORKERS=str(workers), GRIDFLOW_THREADS=str(threads))
    out, err = tmp / "gunicorn.out", tmp / "gunicorn.err"
    with open(out, "wb") as o, open(err, "wb") as e:
        proc = subprocess.Popen([sys.executable, "-m", "gunicorn", "-c", "web/gunicorn_conf.py",
                                 "tests.api.wsgi_app:app"], env=env, cwd=ROOT, stdout=o, stderr=e,
                                start_new_session=True)
    server = Server(port, proc, out, err)
    try:
        until(lambda: server.call("GET", "/healthz").status == 200, "gunicorn answers /healthz", server)
        yield server
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(30)
            except subprocess.TimeoutExpired:
                pass
        try:  # the group it led: workers, should any be left
            os.killpg(proc.pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass
        if proc.poll() is None:
            proc.wait(10)
