"""The restricted script environment for scripts, gateway conditions and timer expressions.

Code is compiled with RestrictedPython's compiler (not just its globals), so underscore
names, imports and dunder walks are refused at compile time, and attribute/item/iteration
access goes through guards. A line-event budget stops runaway loops; `range` is capped.
"""
from __future__ import annotations

import ast
import builtins
import contextvars
import sys
import time
from collections.abc import Callable
from typing import Any

from RestrictedPython import (
    RestrictingNodeTransformer,
    compile_restricted_eval,
    compile_restricted_exec,
    safe_builtins,
)
from RestrictedPython.Eval import default_guarded_getitem, default_guarded_getiter
from RestrictedPython.Guards import full_write_guard, guarded_iter_unpack_sequence, safer_getattr
from SpiffWorkflow.bpmn.script_engine import PythonScriptEngine, TaskDataEnvironment

from . import clock
from .errors import ScriptError

MAX_LINES = 200_000
MAX_SECONDS = 2.0
MAX_RANGE = 100_000
MAX_ITEMS = 1_000_000  # longest string/list a script may build by repetition
MAX_BITS = 100_000  # largest integer a script may build by ** or <<

# Helpers visible to every script and expression; the domain may register more.
_helpers: dict[str, Callable[..., Any]] = {}
# The step being run: emitted events go here.
current_step: contextvars.ContextVar[Any] = contextvars.ContextVar("gridflow_step", default=None)


class ScriptBudgetExceeded(ScriptError):
    pass


def register_helper(name: str, fn: Callable[..., Any]) -> None:
    """Expose `fn` to BPMN scripts and expressions under `name`."""
    if name.startswith("_"):
        raise ValueError("helper names may not start with an underscore")
    _helpers[name] = fn


def helpers() -> dict[str, Callable[..., Any]]:
    return dict(_helpers)


def _capped_range(*args):
    r = range(*args)
    if len(r) > MAX_RANGE:
        raise ScriptBudgetExceeded(f"range() of {len(r)} items exceeds the limit of {MAX_RANGE}")
    return r


def _emit(kind: str, **data: Any) -> None:
    step = current_step.get()
    if step is None:
        raise ScriptError("emit() is only available while an instance step runs")
    step.emit(kind, data)


def _now() -> str:
    return clock.now().isoformat()


register_helper("emit", _emit)
register_helper("now", _now)

_BUILTINS = dict(
    safe_builtins,
    range=_capped_range,
    sum=sum, len=len, any=any, all=all, min=min, max=max, sorted=sorted, enumerate=enumerate,
    zip=zip, list=list, dict=dict, set=set, tuple=tuple, reversed=reversed, map=map, filter=filter,
)


def _sized(x) -> bool:
    return isinstance(x, (str, bytes, list, tuple))


def _mul(a, b):
    if (_sized(a) and isinstance(b, int) and len(a) * b > MAX_ITEMS) or \
            (_sized(b) and isinstance(a, int) and len(b) * a > MAX_ITEMS):
        raise ScriptBudgetExceeded(f"a repetition longer than {MAX_ITEMS} items is not allowed")
    return a * b


def _pow(a, b):
    if isinstance(a, int) and isinstance(b, int) and b > 0 and abs(a) > 1 and a.bit_length() * b > MAX_BITS:
        raise ScriptBudgetExceeded(f"an integer larger than {MAX_BITS} bits is not allowed")
    return a ** b


def _lshift(a, b):
    if isinstance(a, int) and isinstance(b, int) and a.bit_length() + b > MAX_BITS:
        raise ScriptBudgetExceeded(f"an integer larger than {MAX_BITS} bits is not allowed")
    return a << b


_OP_GUARDS = {ast.Mult: "_mul_", ast.Pow: "_pow_", ast.LShift: "_lshift_"}


class _Policy(RestrictingNodeTransformer):
    """RestrictedPython's policy plus size guards on `*`, `**` and `<<` (memory bombs)."""

    def visit_BinOp(self, node):
        node = self.node_contents_visit(node)
        guard = _OP_GUARDS.get(type(node.op))
        if guard is None:
            return node
        func = ast.copy_location(ast.Name(guard, ast.Load()), node)
        call = ast.Call(func=func, args=[node.left, node.right], keywords=[])
        return ast.fix_missing_locations(ast.copy_location(call, node))


def _write_guard(ob):
    # Allow in-place changes of plain data containers; refuse everything else.
    if isinstance(ob, (dict, list, set)):
        return ob
    return full_write_guard(ob)


class _Budget:
    """A per-thread line counter; active only while restricted code runs."""

    def __init__(self) -> None:
        self.lines = 0
        self.deadline = time.monotonic() + MAX_SECONDS

    def tracer(self, frame, event, arg):
        if frame.f_code.co_filename != "<gridflow-script>":
            return None
        return self._local

    def _local(self, frame, event, arg):
        if event == "line":
            self.lines += 1
            if self.lines > MAX_LINES or (self.lines % 1000 == 0 and time.monotonic() > self.deadline):
                raise ScriptBudgetExceeded(
                    f"script exceeded its budget ({MAX_LINES} steps or {MAX_SECONDS}s); is there an endless loop?"
                )
        return self._local


def _run_budgeted(code, glb: dict) -> Any:
    budget = _Budget()
    old = sys.gettrace()
    sys.settrace(budget.tracer)
    try:
        return eval(code, glb)  # noqa: S307 - restricted, compiled code only
    except NameError as e:
        if e.name and hasattr(builtins, e.name) and e.name not in _BUILTINS:
            raise ScriptError(f"{e.name}() is not available in the sandbox") from None
        raise
    finally:
        sys.settrace(old)


_cache_eval: dict[str, Any] = {}
_cache_exec: dict[str, Any] = {}


def _compile(source: str, mode: str):
    cache = _cache_eval if mode == "eval" else _cache_exec
    code = cache.get(source)
    if code is None:
        try:
            tree = ast.parse(source, mode=mode)
        except SyntaxError as e:
            raise ScriptError(f"refused by the sandbox: syntax error: {e.msg} (line {e.lineno})") from None
        if any(isinstance(n, (ast.Import, ast.ImportFrom)) for n in ast.walk(tree)):
            raise ScriptError("refused by the sandbox: import is not allowed")
        fn = compile_restricted_eval if mode == "eval" else compile_restricted_exec
        res = fn(source, filename="<gridflow-script>", policy=_Policy)
        if res.errors:
            raise ScriptError("refused by the sandbox: " + "; ".join(res.errors))
        code = res.code
        if len(cache) < 5000:
            cache[source] = code
    return code


class RestrictedEnvironment(TaskDataEnvironment):
    """A SpiffWorkflow script environment that only runs RestrictedPython-compiled code."""

    def _globals(self, context: dict, external_context: dict | None) -> dict:
        g = {
            "__builtins__": _BUILTINS,
            "_getattr_": safer_getattr,
            "_getitem_": default_guarded_getitem,
            "_getiter_": default_guarded_getiter,
            "_iter_unpack_sequence_": guarded_iter_unpack_sequence,
            "_write_": _write_guard,
            "_inplacevar_": _inplacevar,
            "_mul_": _mul, "_pow_": _pow, "_lshift_": _lshift,
        }
        g.update(_helpers)
        g.update(external_context or {})
        g.update(context)
        return g

    def evaluate(self, expression, context, external_context=None):
        code = _compile(expression, "eval")
        return _run_budgeted(code, self._globals(context, external_context))

    def execute(self, script, context, external_context=None):
        code = _compile(script, "exec")
        g = self._globals(context, external_context)
        base = dict(_helpers, **(external_context or {}))
        _run_budgeted(code, g)
        for k, v in g.items():
            if k.startswith("_") or callable(v) or (k in base and v is base[k] and k not in context):
                continue
            context[k] = v
        return True


_INPLACE = {
    "+=": lambda a, b: a + b, "-=": lambda a, b: a - b, "*=": _mul,
    "/=": lambda a, b: a / b, "//=": lambda a, b: a // b, "%=": lambda a, b: a % b,
}


def _inplacevar(op: str, x, y):
    fn = _INPLACE.get(op)
    if fn is None:
        raise ScriptError(f"operator {op} is not allowed")
    return fn(x, y)


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
