"""The restricted script environment for scripts, gateway conditions and timer expressions.

Two layers. RestrictedPython (sandbox_policy) refuses imports, underscore names and dunder walks at
compile time and guards attribute/item access, sizes and loops. The operating system
(sandbox_pool) bounds what the guards cannot: every script or expression that calls something,
loops or may amplify runs in a worker process with a memory and a CPU-time limit; an overrun
stops the worker and raises ScriptLimitExceeded, which the runtime records as an incident like
any script error.

Trivially bounded code stays in process, because a worker round trip costs more than most
expressions (bench/sandbox_bench.py): names, literals, comparisons, `and`/`or`/`not`,
subscripts, `+ - / //`, `len()` and the bounded helpers (`emit`, `now`), and in scripts plain
assignments and `if`. Such code does at most (source size) x (data size) work, so no limit is needed.
"""
from __future__ import annotations

import contextvars
import logging
import sys
import weakref
from collections.abc import Callable
from typing import Any

from SpiffWorkflow.bpmn.script_engine import PythonScriptEngine, TaskDataEnvironment

from . import clock, sandbox_pool
from .errors import ScriptError
from .sandbox_policy import ScriptBudgetExceeded, Unit, compile_unit  # noqa: F401 - the error is re-exported
from .sandbox_policy import run as _run_here
from .sandbox_pool import ScriptLimitExceeded  # noqa: F401 - re-exported
from .sandbox_wire import Unsendable, encode

log = logging.getLogger("gridflow.sandbox")

# Helpers visible to every script and expression; the domain may register more.
_helpers: dict[str, Callable[..., Any]] = {}
_refs: dict[str, tuple[str, str]] = {}  # helper -> (module, qualname): how a worker imports it
_bounded: set[str] = {"len"}  # names whose call is cheap whatever the arguments: may run in process
_local: set[str] = set()  # helpers that must run in this process (guards only, no OS limits)
_ENGINE_HELPERS = {"emit", "now"}  # need nothing from the step but what the worker already has
# The step being run: emitted events go here.
current_step: contextvars.ContextVar[Any] = contextvars.ContextVar("gridflow_step", default=None)


def register_helper(name: str, fn: Callable[..., Any], *, bounded: bool = False, in_process: bool = False) -> None:
    """Expose `fn` to BPMN scripts and expressions under `name`.

    A helper runs where the script runs: usually in a sandbox worker, which imports it by module
    and name, gets the current time (`clock.now()` there is the parent's now) and sees a stand-in
    for `current_step` with `calendar`, `current_task`, `instance_id`, `process_id`,
    `business_key` and `emit()`. `bounded=True` says a call costs little whatever its arguments
    (trivial code calling it may then stay in process). `in_process=True` (or a helper that cannot be
    imported by name, such as a closure) keeps every script that names it in this process, with
    the RestrictedPython guards but without the OS limits: use it only for helpers that need more
    of the parent than that.
    """
    if name.startswith("_"):
        raise ValueError("helper names may not start with an underscore")
    _helpers[name] = fn
    _refs.pop(name, None)
    _bounded.discard(name)
    _local.discard(name)
    ref = _ref(fn)
    if in_process or ref is None:
        if not in_process:
            log.warning("sandbox helper %s cannot be imported by a worker; scripts naming it run in process", name)
        _local.add(name)
    else:
        _refs[name] = ref
    if bounded:
        _bounded.add(name)


def _ref(fn) -> tuple[str, str] | None:
    module, qualname = getattr(fn, "__module__", None), getattr(fn, "__qualname__", None)
    if not module or not qualname or module == "__main__" or "<" in qualname:
        return None
    obj = sys.modules.get(module)
    for part in qualname.split("."):
        obj = getattr(obj, part, None)
    return (module, qualname) if obj is fn else None


def helpers() -> dict[str, Callable[..., Any]]:
    return dict(_helpers)


def _emit(kind: str, **data: Any) -> None:
    step = current_step.get()
    if step is None:
        raise ScriptError("emit() is only available while an instance step runs")
    step.emit(kind, data)


def _now() -> str:
    return clock.now().isoformat()


register_helper("emit", _emit, bounded=True)
register_helper("now", _now, bounded=True)


def _compile(source: str, mode: str):
    """The compiled code, or ScriptError saying why the sandbox refuses it (deploy validation uses this)."""
    return compile_unit(source, mode).code


# ---- where code runs ----------------------------------------------------------------------------
def runs_in_process(unit: Unit) -> bool:
    """Whether `unit` runs here: trivially bounded code, or code naming a helper that must."""
    if sandbox_pool.IN_WORKER:
        return True
    if unit.fast and unit.calls <= _bounded:
        return True
    return bool(unit.names & _local)


_calendars: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def _step_info(step, needs_calendar: bool) -> dict | None:
    if step is None:
        return None
    info = {"task": getattr(step, "current_task", None), "instance_id": getattr(step, "instance_id", None),
            "process_id": getattr(step, "process_id", None), "business_key": getattr(step, "business_key", None),
            "calendar": None}
    cal = getattr(step, "calendar", None) if needs_calendar else None
    if cal is not None:
        enc = _calendars.get(cal)
        if enc is None:
            enc = cal.to_wire()
            _calendars[cal] = enc
        info["calendar"] = enc
    return info


def _in_pool(unit: Unit, context: dict, external_context: dict | None) -> Any:
    """Run in a worker; replay its emitted events on the current step, then return its value or
    write its changes into `context` (or raise its error, rebuilt)."""
    step = current_step.get()
    refs = {n: _refs[n] for n in unit.names if n in _refs}
    # Restricted code reaches globals only by name (no globals(), vars() or dunders), so the worker
    # needs just the names the code mentions, and sends back just those and what it assigned.
    ctx = {k: context[k] for k in unit.names if k in context}
    ext = {k: external_context[k] for k in unit.names if k in external_context} if external_context else None
    try:
        msg = {"mode": unit.mode, "src": unit.source, "ctx": encode(ctx), "ext": encode(ext) if ext else None,
               "helpers": refs,
               "step": _step_info(step, any(n not in _ENGINE_HELPERS for n in refs)), "now": clock.now().isoformat()}
    except (Unsendable, RecursionError) as e:
        raise ScriptError(f"the task data cannot be passed to the script sandbox: {e}") from None
    reply = sandbox_pool.get_pool().run(msg)
    if step is not None:
        for kind, data in reply.get("emits") or []:
            step.emit(kind, data)
    if not reply["ok"]:
        raise _rebuild(reply["error"])
    if unit.mode == "eval":
        return reply["value"]
    context.update(reply["ctx"])
    return True


_foreign: dict[str, type] = {}


def _rebuild(err: dict) -> Exception:
    """The worker's exception as the same class when this process has it loaded (never imported
    on the worker's say-so), else as a ScriptError subclass of the same name."""
    cls = sys.modules.get(err.get("module") or "")
    for part in (err.get("qualname") or "").split("."):
        cls = getattr(cls, part, None)
    if isinstance(cls, type) and issubclass(cls, Exception):
        try:
            e = cls(*err["args"]) if err.get("args") is not None else cls(err["msg"])
            if isinstance(e, NameError):
                e.name = err.get("name")
            return e
        except Exception:  # noqa: BLE001 - an exception class with an unusual constructor
            pass
    name = str(err.get("type") or "Error")
    sub = _foreign.get(name)
    if sub is None:
        sub = _foreign.setdefault(name, type(name if name.isidentifier() else "Error", (ScriptError,), {}))
    return sub(err.get("msg") or name)


def _dispatch(unit: Unit, context: dict, external_context: dict | None) -> Any:
    if runs_in_process(unit):
        return _run_here(unit, context, external_context, _helpers)
    return _in_pool(unit, context, external_context)


class RestrictedEnvironment(TaskDataEnvironment):
    """A SpiffWorkflow script environment that only runs RestrictedPython-compiled code, in process
    when trivially bounded, else in a limited worker."""

    def evaluate(self, expression, context, external_context=None):
        return _dispatch(compile_unit(expression, "eval"), context, external_context)

    def execute(self, script, context, external_context=None):
        _dispatch(compile_unit(script, "exec"), context, external_context)
        return True


class SandboxedScriptEngine(PythonScriptEngine):
    """PythonScriptEngine over the restricted environment; remembers which task runs."""

    def __init__(self) -> None:
        super().__init__(environment=RestrictedEnvironment())

    def execute(self, task, script, external_context=None):
        step = current_step.get()
        if step is not None:
            step.current_task = task.task_spec.bpmn_id or task.task_spec.name
        return super().execute(task, script, external_context)

    def call_service(self, context, **kwargs):  # 3.2.0's version raises NameError on failure
        raise ScriptError("service tasks are not supported")


def evaluate(expression: str, context: dict | None = None) -> Any:
    """Evaluate an expression in the sandbox outside any workflow (validation, assignment)."""
    return RestrictedEnvironment().evaluate(expression, dict(context or {}))
