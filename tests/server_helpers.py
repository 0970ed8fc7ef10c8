"""Real server processes for tests and benchmarks: gunicorn, the development server and
`gridflow scheduler` as subprocesses on 127.0.0.1, a scratch PostgreSQL database, and a small
HTTP client with a cookie jar that reads CSRF tokens from the pages, as a browser would.

Every process a test starts is stopped when it ends, failed or not (`started`). Deadlines only
bound the waiting (`until`); nothing here measures how long something took.
"""
from __future__ import annotations

import base64
import http.client
import http.cookiejar
import json
import os
import re
import secrets
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

from grid.org.passwords import DEMO_PASSWORD
from tests.pg_admin import create_database, drop_database, pg_base_url

ROOT = Path(__file__).resolve().parent.parent
GRIDFLOW = [str(Path(sys.executable).with_name("gridflow"))]  # the installed console script
KEY = secrets.token_hex(32)
# production refuses to run without a data key; the test (or bench) process and every server it
# starts share one, so personal data sealed by one opens in the other, as within one deployment
DATA_KEY = os.environ.setdefault("GRIDFLOW_DATA_KEY", base64.b64encode(secrets.token_bytes(32)).decode())
TOKEN = re.compile(r'name="csrf_token" value="([^"]+)"')
CLEAN = {k: v for k, v in os.environ.items() if not k.startswith("GRIDFLOW_")}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Proc:
    """A started subprocess with its output in files; `stop()` ends it and its children."""

    def __init__(self, args: list[str], env: dict[str, str], logdir: Path, name: str, cwd: Path = ROOT):
        self.out, self.err = logdir / f"{name}.out", logdir / f"{name}.err"
        with open(self.out, "wb") as out, open(self.err, "wb") as err:
            self.p = subprocess.Popen(args, env=env, cwd=cwd, stdout=out, stderr=err, start_new_session=True)

    @property
    def pid(self) -> int:
        return self.p.pid

    def log(self) -> str:
        return self.out.read_text(errors="replace") + self.err.read_text(errors="replace")

    def signal(self, sig: int) -> None:
        os.kill(self.p.pid, sig)

    def wait(self, timeout: float) -> int:
        return self.p.wait(timeout)

    def stop(self) -> None:
        if self.p.poll() is None:
            os.kill(self.p.pid, signal.SIGTERM)
            try:
                self.p.wait(30)
            except subprocess.TimeoutExpired:
                pass
        try:  # the process group it led: gunicorn workers, should any be left
            os.killpg(self.p.pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass
        if self.p.poll() is None:
            self.p.wait(10)


@contextmanager
def started(args: list[str], env: dict[str, str], logdir: Path, name: str, cwd: Path = ROOT) -> Iterator[Proc]:
    """A process for the length of the block, stopped (with its process group) however it ends."""
    proc = Proc(args, env, logdir, name, cwd)
    try:
        yield proc
    finally:
        proc.stop()


def until(check: Callable[[], Any], what: str, proc: Proc | None = None, seconds: float = 90,
          pause: float = 0.2) -> Any:
    """Poll `check` until it returns something truthy; fail with the process log otherwise."""
    deadline = time.monotonic() + seconds
    while True:
        try:
            result = check()
        except (OSError, http.client.HTTPException):
            result = None
        if result:
            return result
        if proc is not None and proc.p.poll() is not None:
            pytest.fail(f"{what}: the process exited with {proc.p.returncode}\n{proc.log()}")
        if time.monotonic() > deadline:
            pytest.fail(f"{what}: not within {seconds}s\n{proc.log() if proc else ''}")
        time.sleep(pause)


def get(port: int, path: str, headers: dict[str, str] | None = None) -> http.client.HTTPResponse:
    """One GET without redirects or cookies; the body is read into `.body`."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    conn.request("GET", path, headers=headers or {})
    resp = conn.getresponse()
    resp.body = resp.read()
    conn.close()
    return resp


def http_sign_in(port: int, username: str = "jiangranran",
                 password: str = DEMO_PASSWORD) -> tuple[urllib.request.OpenerDirector, http.cookiejar.CookieJar]:
    """(an opener holding the session, its cookie jar) after a sign-in over HTTP on `port` that lands
    on the inbox."""
    jar = http.cookiejar.CookieJar()
    opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(jar))
    base = f"http://127.0.0.1:{port}"
    token = TOKEN.search(opener.open(f"{base}/login", timeout=30).read().decode()).group(1)
    form = urllib.parse.urlencode({"username": username, "password": password, "csrf_token": token})
    page = opener.open(f"{base}/login", data=form.encode(), timeout=30)
    assert page.status == 200 and "我的待办" in page.read().decode(), page.url
    return opener, jar


def healthy(port: int) -> bool:
    r = get(port, "/healthz")
    return r.status == 200 and json.loads(r.body)["db_ok"]


def children(pid: int) -> set[int]:
    """The direct children of `pid` (gunicorn's workers), from /proc."""
    out = set()
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            if int(fields[1]) == pid:
                out.add(int(entry.name))
    return out


def env_for(url: str, tmp: Path, **extra: str) -> dict[str, str]:
    """The environment of a server process: no GRIDFLOW_* from the caller, uploads under `tmp`."""
    return {**CLEAN, "GRIDFLOW_DATABASE_URL": url, "GRIDFLOW_UPLOADS": str(tmp / "uploads"),
            "GRIDFLOW_SWEEP_SECONDS": "1", "GRIDFLOW_DATA_KEY": DATA_KEY, **extra}


def gunicorn_env(url: str, tmp: Path, port: int, workers: int = 1, **extra: str) -> dict[str, str]:
    """A production web node on 127.0.0.1:`port` (plain HTTP, so no Secure cookies)."""
    return env_for(url, tmp, GRIDFLOW_ENV="production", GRIDFLOW_SECRET_KEY=KEY, GRIDFLOW_WORKERS=str(workers),
                   GRIDFLOW_BIND=f"127.0.0.1:{port}", **extra)


# -- a scratch PostgreSQL database ------------------------------------------------------------

@contextmanager
def scratch_pg(prefix: str, base: str | None = None) -> Iterator[str]:
    """An empty PostgreSQL database (no schema) for the block, dropped afterwards."""
    base = base or pg_base_url()
    if base is None:
        pytest.skip("PostgreSQL is not reachable (set GRIDFLOW_TEST_PG_URL)")
    name = f"{prefix}_{os.getpid()}_{uuid.uuid4().hex[:6]}"
    url = create_database(base, name)
    try:
        yield url
    finally:
        drop_database(base, name)


# -- a browser-like HTTP client ----------------------------------------------------------------

class Page:
    """A response as the client saw it: status, final URL (after redirects), decoded body, raw bytes."""

    def __init__(self, status: int, url: str, raw: bytes, headers: Any):
        self.status, self.url, self.raw, self.headers = status, url, raw, headers

    @property
    def text(self) -> str:
        return self.raw.decode("utf-8", errors="replace")

    @property
    def path(self) -> str:
        return urllib.parse.urlsplit(self.url).path

    def token(self) -> str:
        m = TOKEN.search(self.text)
        assert m, f"no CSRF token on {self.url} ({self.status})"
        return m.group(1)


class Client:
    """urllib with a cookie jar, following redirects; 4xx/5xx come back as a Page, not an error.
    `on(port)` makes a client for another node that shares this one's cookies."""

    def __init__(self, port: int, jar: http.cookiejar.CookieJar | None = None):
        self.port, self.jar = port, jar if jar is not None else http.cookiejar.CookieJar()
        self.opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(self.jar))

    def on(self, port: int) -> Client:
        return Client(port, self.jar)

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def cookie(self, name: str = "gridflow_session") -> str | None:
        return next((c.value for c in self.jar if c.name == name), None)

    def _open(self, req: urllib.request.Request) -> Page:
        try:
            with self.opener.open(req, timeout=60) as r:
                return Page(r.status, r.url, r.read(), r.headers)
        except urllib.error.HTTPError as e:
            return Page(e.code, e.url, e.read(), e.headers)

    def get(self, path: str) -> Page:
        return self._open(urllib.request.Request(self.base + path))

    def post(self, path: str, fields: dict[str, Any] | list[tuple[str, str]],
             files: list[tuple[str, str, bytes, str]] | None = None) -> Page:
        """A form POST; list values repeat the field. `files`: (field, file name, bytes, type) as multipart."""
        pairs = list(fields.items()) if isinstance(fields, dict) else list(fields)
        flat = [(k, str(x)) for k, v in pairs for x in (v if isinstance(v, list | tuple) else [v])]
        if not files:
            data, ctype = urllib.parse.urlencode(flat).encode(), "application/x-www-form-urlencoded"
        else:
            data, ctype = multipart(flat, files)
        return self._open(urllib.request.Request(self.base + path, data=data, headers={"Content-Type": ctype}))

    def sign_in(self, username: str, password: str) -> Page:
        page = self.post("/login", {"username": username, "password": password,
                                    "csrf_token": self.get("/login").token()})
        assert page.status == 200 and page.path == "/", (page.status, page.url, page.text[:500])
        return page

    def sign_out(self) -> Page:
        return self.post("/logout", {"csrf_token": self.get("/settings").token()})


def multipart(fields: list[tuple[str, str]], files: list[tuple[str, str, bytes, str]]) -> tuple[bytes, str]:
    """A multipart/form-data body, as a browser sends a form with <input type=file>."""
    boundary = f"----gridflow{uuid.uuid4().hex}"
    out = bytearray()
    for name, value in fields:
        out += (f'--{boundary}\r\nContent-Disposition: form-data; name="{name}"\r\n\r\n{value}\r\n').encode()
    for name, filename, content, ctype in files:
        out += (f'--{boundary}\r\nContent-Disposition: form-data; name="{name}"; filename="{filename}"\r\n'
                f"Content-Type: {ctype}\r\n\r\n").encode() + content + b"\r\n"
    out += f"--{boundary}--\r\n".encode()
    return bytes(out), f"multipart/form-data; boundary={boundary}"


@contextmanager
def serve_in_thread(app) -> Iterator[int]:
    """A WSGI app on a real HTTP server (werkzeug, threaded, quiet) on 127.0.0.1; yields its port."""
    import threading

    from werkzeug.serving import WSGIRequestHandler, make_server

    class Quiet(WSGIRequestHandler):
        def log_request(self, *args, **kwargs):  # keep test output readable
            pass

    server = make_server("127.0.0.1", 0, app, threaded=True, request_handler=Quiet)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server.server_port
    finally:
        server.shutdown()
        thread.join(timeout=10)
