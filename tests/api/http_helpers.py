"""A real gunicorn serving the exchange app (tests/api/wsgi_app.py) on a test database, and a
tiny HTTP client for it. Every process started here is stopped when the test ends, failed or not;
deadlines only bound the waiting, nothing measures time."""
from __future__ import annotations

import functools
import http.client
import json
import secrets
import sys
import urllib.parse
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from tests import server_helpers
from tests.server_helpers import Proc, env_for, free_port


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


class Server(Proc):
    """A running gunicorn (a `Proc` with its log files) and its port."""

    def __init__(self, port: int, args: list[str], env: dict[str, str], logdir: Path):
        super().__init__(args, env, logdir, "gunicorn")
        self.port = port

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


# polls like tests/server_helpers.until, with a longer default deadline (several workers start up)
until = functools.partial(server_helpers.until, seconds=120)


@contextmanager
def gunicorn(url: str, tmp: Path, workers: int = 2, threads: int = 2) -> Iterator[Server]:
    """gunicorn with the production settings, `workers` processes, on database `url`."""
    port = free_port()
    env = env_for(url, tmp, GRIDFLOW_ENV="production", GRIDFLOW_SECRET_KEY=secrets.token_hex(32),
                  GRIDFLOW_BIND=f"127.0.0.1:{port}", GRIDFLOW_WORKERS=str(workers), GRIDFLOW_THREADS=str(threads))
    server = Server(port, [sys.executable, "-m", "gunicorn", "-c", "web/gunicorn_conf.py", "tests.api.wsgi_app:app"],
                    env, tmp)
    try:
        until(lambda: server.call("GET", "/healthz").status == 200, "gunicorn answers /healthz", server)
        yield server
    finally:
        server.stop()
