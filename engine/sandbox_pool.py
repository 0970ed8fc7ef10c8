"""A small pool of worker processes that run scripts under operating-system limits.

RestrictedPython's guards cannot stop one slow C-level call (`pow(7, 1 << 20000, m)`) or a loop
that builds a gigabyte; the kernel can. Each worker is a fresh interpreter (`python -I`, only the
sandbox imported) with `RLIMIT_AS` set to its idle size plus the memory limit, and a CPU-time
timer (`ITIMER_PROF`, whose default action ends the process) armed for each request. A worker that
overruns is gone, the caller gets ScriptLimitExceeded (the step becomes an incident) and the next
request starts a fresh worker.

Why not multiprocessing's forkserver: its children re-import the parent's `__main__` and talk
pickle, and a worker that ran untrusted code must not be able to send objects back. Here only
tagged JSON crosses (sandbox_wire), in both directions.

Limits come from the environment: GRIDFLOW_SANDBOX_MEMORY_MB (default 256),
GRIDFLOW_SANDBOX_CPU_SECONDS (default 2), GRIDFLOW_SANDBOX_WORKERS (default 2),
GRIDFLOW_SANDBOX_CHECKOUT_SECONDS (default 10): how long a request waits for a free worker. The
caller usually holds the step's write transaction (on SQLite, the database's write lock) while it
waits, so a pool kept busy by overrunning scripts must not stall it: past the wait the script does
not run and the step becomes an incident (SandboxBusy), which a retry can clear.
"""
from __future__ import annotations

import atexit
import json
import os
import signal
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, replace
from typing import Any

from .errors import ScriptError
from .sandbox_policy import ScriptBudgetExceeded
from .sandbox_wire import Closed, TimedOut, dumps, loads, read_frame, write_frame

IN_WORKER = False  # set by the worker itself: code running there never asks the pool again
_BOOT = ("import json, os, sys; sys.path[:] = json.loads(os.environ.pop('GRIDFLOW_SANDBOX_SYSPATH')); "
         "from engine.sandbox_worker import main; main(sys.argv[1:])")
_START_SECONDS = 60.0
_ENV_KEEP = {"PATH", "HOME", "LANG", "LANGUAGE", "TZ", "TMPDIR", "SYSTEMROOT"}


class ScriptLimitExceeded(ScriptBudgetExceeded):
    """The script hit the worker's memory or CPU limit and its worker was stopped."""


class SandboxBusy(ScriptLimitExceeded):
    """No sandbox worker became free within `Limits.checkout_seconds`; the script did not run."""


@dataclass(frozen=True)
class Limits:
    memory_mb: int = 256
    cpu_seconds: float = 2.0
    workers: int = 2
    max_result_mb: int = 16  # largest reply (the script's data) a worker may send back
    checkout_seconds: float = 10.0  # longest wait for a free worker (the caller may hold a write lock)

    @property
    def wall_seconds(self) -> float:
        """A last resort for a worker that neither answers nor uses CPU (the CPU timer is the real limit)."""
        return self.cpu_seconds * 5 + 10

    @classmethod
    def from_env(cls, env: dict | None = None) -> Limits:
        """Read GRIDFLOW_SANDBOX_* (ValueError with the variable's name if one is malformed)."""
        env = os.environ if env is None else env
        base = cls()

        def num(name: str, default, kind):
            raw = env.get(name)
            if raw in (None, ""):
                return default
            try:
                value = kind(raw)
            except ValueError:
                value = 0
            if value <= 0:
                raise ValueError(f"{name} must be a positive number, not {raw!r}")
            return value

        return cls(memory_mb=num("GRIDFLOW_SANDBOX_MEMORY_MB", base.memory_mb, int),
                   cpu_seconds=num("GRIDFLOW_SANDBOX_CPU_SECONDS", base.cpu_seconds, float),
                   workers=num("GRIDFLOW_SANDBOX_WORKERS", base.workers, int),
                   checkout_seconds=num("GRIDFLOW_SANDBOX_CHECKOUT_SECONDS", base.checkout_seconds, float))


class _Worker:
    """One worker process and its two pipes; serves one request at a time."""

    def __init__(self, limits: Limits):
        self.limits = limits
        # a minimal environment: the worker runs untrusted code and needs no credentials
        env = {k: v for k, v in os.environ.items() if k in _ENV_KEEP or k.startswith("LC_")}
        env["GRIDFLOW_SANDBOX_SYSPATH"] = json.dumps([p for p in sys.path if isinstance(p, str)])
        args = [str(limits.memory_mb), repr(limits.cpu_seconds), str(limits.max_result_mb)]
        self.proc = subprocess.Popen([sys.executable, "-I", "-c", _BOOT, *args], stdin=subprocess.PIPE,
                                     stdout=subprocess.PIPE, env=env, close_fds=True, start_new_session=True)
        self.pid = self.proc.pid
        self.inp = self.proc.stdin.fileno()
        self.out = self.proc.stdout.fileno()
        try:
            hello = loads(read_frame(self.out, time.monotonic() + _START_SECONDS))
        except (Closed, TimedOut, ValueError) as e:
            self.kill()
            raise ScriptError(f"the script sandbox could not start a worker ({self.death() or type(e).__name__})") from None
        self.idle_bytes = hello.get("vm")

    def alive(self) -> bool:
        return self.proc.poll() is None

    def death(self) -> str | None:
        """How the process ended, once it has (waits briefly for the exit status)."""
        try:
            rc = self.proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            return None
        if rc < 0:
            try:
                return signal.Signals(-rc).name
            except ValueError:
                return f"signal {-rc}"
        return f"exit status {rc}"

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
        self.close()

    def close(self) -> None:
        for f in (self.proc.stdin, self.proc.stdout):
            try:
                f.close()
            except OSError:
                pass
        try:
            self.proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


class Pool:
    """Up to `limits.workers` workers, started when first needed; thread-safe."""

    def __init__(self, limits: Limits | None = None):
        self.limits = limits or Limits.from_env()
        self.pid = os.getpid()
        self._idle: list[_Worker] = []
        self._count = 0
        self._cond = threading.Condition()
        self._closed = False
        self.spawned = 0
        self.stopped = 0  # workers killed because a script overran (or died)

    # ---- workers ----------------------------------------------------------------------------
    def _checkout(self) -> _Worker:
        deadline = time.monotonic() + self.limits.checkout_seconds
        with self._cond:
            while True:
                while self._idle:
                    w = self._idle.pop()
                    if w.alive():
                        return w
                    self._count -= 1
                    w.close()
                if self._count < self.limits.workers:
                    self._count += 1
                    break
                left = deadline - time.monotonic()
                if left <= 0:
                    raise SandboxBusy(
                        f"all {self.limits.workers} script sandbox workers stayed busy for "
                        f"{self.limits.checkout_seconds:g} s; the script did not run (retry the incident later, "
                        "or raise GRIDFLOW_SANDBOX_WORKERS)")
                self._cond.wait(left)
        try:
            w = _Worker(self.limits)
        except BaseException:
            with self._cond:
                self._count -= 1
                self._cond.notify()
            raise
        self.spawned += 1
        return w

    def _checkin(self, w: _Worker) -> None:
        with self._cond:
            if not self._closed:
                self._idle.append(w)
                self._cond.notify()
                return
            self._count -= 1
        w.close()  # the pool was closed while this worker was busy

    def _discard(self, w: _Worker) -> None:
        w.kill()
        with self._cond:
            self._count -= 1
            self.stopped += 1
            self._cond.notify()

    def pids(self) -> list[int]:
        """The idle workers' process ids (for tests and the bench)."""
        with self._cond:
            return [w.pid for w in self._idle]

    def close(self) -> None:
        with self._cond:
            self._closed = True
            idle, self._idle = self._idle, []
            self._count -= len(idle)
        for w in idle:
            w.close()

    # ---- requests ---------------------------------------------------------------------------
    def run(self, msg: dict[str, Any]) -> dict:
        """Send one request; its reply, or ScriptLimitExceeded if the worker had to be stopped."""
        payload = dumps(msg)
        for attempt in (1, 2):
            w = self._checkout()
            keep = False
            try:
                try:
                    write_frame(w.inp, payload)
                except BrokenPipeError:  # it died while idle: the script never ran, so try once more
                    if attempt == 1:
                        continue
                    raise ScriptError("the script sandbox worker is not accepting work") from None
                reply = self._reply(w)
                keep = not reply.get("fatal")
                if reply.get("fatal") == "memory":
                    raise ScriptLimitExceeded(self._memory_message())
                return reply
            finally:
                if keep:
                    self._checkin(w)
                else:
                    self._discard(w)
        raise AssertionError("unreachable")

    def _reply(self, w: _Worker) -> dict:
        lim = self.limits
        try:
            raw = read_frame(w.out, time.monotonic() + lim.wall_seconds, lim.max_result_mb << 20)
        except TimedOut:
            w.kill()
            raise ScriptLimitExceeded(
                f"the script did not finish within {lim.wall_seconds:g} s and was stopped") from None
        except ValueError:
            raise ScriptLimitExceeded(
                f"the script's data grew past {lim.max_result_mb} MB; its worker was stopped") from None
        except Closed:
            how = w.death()
            if how in ("SIGPROF", "SIGXCPU"):
                raise ScriptLimitExceeded(
                    f"the script exceeded the sandbox CPU limit ({lim.cpu_seconds:g} s) and was stopped") from None
            raise ScriptLimitExceeded(
                f"the script's sandbox worker died ({how or 'no exit status'}); it probably exceeded the "
                f"memory limit ({lim.memory_mb} MB)") from None
        try:
            return loads(raw)
        except ValueError:
            raise ScriptError("the script sandbox worker sent an unreadable reply; it was stopped") from None

    def _memory_message(self) -> str:
        return f"the script exceeded the sandbox memory limit ({self.limits.memory_mb} MB) and was stopped"


_pool: Pool | None = None
_pool_lock = threading.Lock()


def get_pool() -> Pool:
    """The process's pool (a forked child gets its own: it must not use its parent's pipes)."""
    global _pool
    pool = _pool
    if pool is not None and pool.pid == os.getpid():
        return pool
    with _pool_lock:
        if _pool is None or _pool.pid != os.getpid():
            _pool = Pool()
        return _pool


def configure(**limits: Any) -> Pool:
    """Replace the pool with one using these limits (fields of Limits); for tests and the bench."""
    global _pool
    with _pool_lock:
        old, _pool = _pool, Pool(replace(Limits.from_env(), **limits))
    if old is not None and old.pid == os.getpid():
        old.close()
    return _pool


def shutdown() -> None:
    """Stop the idle workers (they also exit on their own when this process ends)."""
    global _pool
    with _pool_lock:
        old, _pool = _pool, None
    if old is not None and old.pid == os.getpid():
        old.close()


def _after_fork() -> None:
    global _pool, _pool_lock
    _pool_lock = threading.Lock()
    old, _pool = _pool, None
    if old is not None:  # close our copies of the parent's pipes; the workers are not ours
        for w in old._idle:
            for f in (w.proc.stdin, w.proc.stdout):
                try:
                    f.close()
                except OSError:
                    pass
            w.proc.returncode = 0  # never wait for another process's child


os.register_at_fork(after_in_child=_after_fork)
atexit.register(shutdown)
