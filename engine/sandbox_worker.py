"""The sandbox worker process: runs one script or expression at a time under OS limits.

Started by sandbox_pool as `python -I -c ...`. It speaks frames on copies of its stdin/stdout
(fd 1 is pointed at stderr, so a stray print cannot corrupt the protocol), limits its own
address space (`RLIMIT_AS`: its idle size plus the memory limit) and arms `ITIMER_PROF` for each
request: on overrun the kernel ends the process, even inside a single C call.

What a script sees here is what it would see in the parent: the task data (decoded from tagged
JSON), the helpers it names (imported by reference, before the limits apply), `now()` fixed at the
parent's clock, and a stand-in for the current step that keeps emitted events (sent back and
replayed in the parent, in order) and carries the work calendar for `workdays()`.
"""
from __future__ import annotations

import importlib
import os
import resource
import signal
import sys
from datetime import datetime
from typing import Any

from . import clock, sandbox, sandbox_policy, sandbox_pool
from .sandbox_wire import Closed, Unsendable, dumps, encode, loads, read_frame, write_frame

MEMORY_EXIT = 3


def _vm_bytes() -> int:
    try:
        with open("/proc/self/status", encoding="ascii") as f:
            for line in f:
                if line.startswith("VmSize:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


class _Limits:
    def __init__(self, memory_mb: int, cpu_seconds: float, max_result_mb: int):
        self.memory = memory_mb << 20
        self.cpu = cpu_seconds
        self.max_result = max_result_mb << 20
        self.hard = resource.getrlimit(resource.RLIMIT_AS)[1]

    def unlimit_memory(self) -> None:
        resource.setrlimit(resource.RLIMIT_AS, (self.hard, self.hard))

    def limit_memory(self) -> None:
        """Allow `memory` bytes on top of what the worker uses now (its code and imported helpers)."""
        soft = _vm_bytes() + self.memory
        if self.hard != resource.RLIM_INFINITY:
            soft = min(soft, self.hard)
        resource.setrlimit(resource.RLIMIT_AS, (soft, self.hard))


class _Step:
    """Stands in for the parent's current step while a script runs here."""

    def __init__(self, info: dict):
        self.current_task = info.get("task")
        self.instance_id = info.get("instance_id")
        self.process_id = info.get("process_id")
        self.business_key = info.get("business_key")
        self.calendar = None
        cal = info.get("calendar")
        if cal is not None:
            from .calendar import WorkCalendar
            self.calendar = WorkCalendar.from_wire(cal)
        self.emitted: list[list] = []

    def emit(self, kind: str, data: dict) -> None:
        self.emitted.append([kind, data])


_resolved: dict[tuple[str, str], Any] = {}


def _helpers(refs: dict, limits: _Limits) -> dict:
    """The named helpers, imported by reference; imports happen outside the memory limit."""
    out = {}
    for name, (module, qualname) in refs.items():
        fn = _resolved.get((module, qualname))
        if fn is None:
            if module not in sys.modules:
                limits.unlimit_memory()
                try:
                    importlib.import_module(module)
                finally:
                    limits.limit_memory()
            fn = sys.modules[module]
            for part in qualname.split("."):
                fn = getattr(fn, part)
            _resolved[(module, qualname)] = fn
        out[name] = fn
    return out


def _error(e: BaseException) -> dict:
    cls = type(e)
    try:
        args = encode(list(e.args))
    except (Unsendable, RecursionError):
        args = None
    return {"type": cls.__name__, "module": cls.__module__, "qualname": cls.__qualname__, "msg": str(e),
            "args": args, "name": getattr(e, "name", None) if isinstance(e, NameError) else None}


def _handle(msg: dict, limits: _Limits) -> tuple[bytes, bool]:
    """Run one request; (reply, whether this worker must exit afterwards)."""
    try:
        helpers = _helpers(msg.get("helpers") or {}, limits)
        unit = sandbox_policy.compile_unit(msg["src"], msg["mode"])
    except Exception as e:  # noqa: BLE001 - reported to the parent like a script error
        return dumps({"ok": False, "error": _error(e), "emits": []}), False
    now = datetime.fromisoformat(msg["now"])
    clock.set_source(lambda: now)
    step = _Step(msg["step"]) if msg.get("step") is not None else None
    token = sandbox.current_step.set(step)
    ctx, ext = msg.get("ctx") or {}, msg.get("ext")
    reply: bytes | None = None
    failure: BaseException | None = None
    out_of_memory = False
    signal.setitimer(signal.ITIMER_PROF, limits.cpu)
    try:
        value = sandbox_policy.run(unit, ctx, ext, helpers)
        body = {"ok": True, "emits": encode(step.emitted) if step else []}
        if unit.mode == "eval":
            body["value"] = encode(value)
        else:
            body["ctx"] = encode(ctx)
        reply = dumps(body)
        if len(reply) > limits.max_result:
            reply = None
            failure = sandbox_pool.ScriptLimitExceeded(
                f"the script's data grew past {limits.max_result >> 20} MB; it cannot be sent back")
    except MemoryError:
        out_of_memory = True
    except BaseException as e:  # noqa: BLE001 - SystemExit from a script is its error, not ours
        failure = e
    finally:
        signal.setitimer(signal.ITIMER_PROF, 0)
        sandbox.current_step.reset(token)
    del ctx, ext
    if out_of_memory:
        return dumps({"ok": False, "fatal": "memory"}), True
    if reply is None:
        try:
            emits = encode(step.emitted) if step else []
        except (Unsendable, RecursionError, MemoryError):
            emits = []
        reply = dumps({"ok": False, "error": _error(failure), "emits": emits})
    return reply, False


def main(argv: list[str]) -> None:
    """Serve requests until the parent closes the pipe."""
    limits = _Limits(int(argv[0]), float(argv[1]), int(argv[2]))
    inp, out = os.dup(0), os.dup(1)
    devnull = os.open(os.devnull, os.O_RDONLY)
    os.dup2(devnull, 0)
    os.dup2(2, 1)
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is for the parent; it closes our pipe
    sandbox_pool.IN_WORKER = True
    limits.limit_memory()
    write_frame(out, dumps({"ready": True, "pid": os.getpid(), "vm": _vm_bytes()}))
    while True:
        try:
            msg = loads(read_frame(inp))
        except Closed:
            return
        try:
            reply, fatal = _handle(msg, limits)
        except MemoryError:
            reply, fatal = None, True
        if reply is None:
            os._exit(MEMORY_EXIT)
        write_frame(out, reply)
        if fatal:
            os._exit(MEMORY_EXIT)
