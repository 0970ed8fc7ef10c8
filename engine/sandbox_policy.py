"""How restricted code is compiled, which of it is trivially bounded, and how it runs in process.

Code is compiled with RestrictedPython's compiler (not just its globals), so underscore names,
imports and dunder walks are refused at compile time, and attribute/item/iteration access goes
through the guards (sandbox_guards). A line-event budget stops runaway Python loops. None of that
bounds a single slow C-level call or the total memory a loop builds: that is what the worker pool
(sandbox_pool) is for. `Unit.fast` says which code is trivially bounded and may stay in process.
"""
from __future__ import annotations

import ast
import builtins
import sys
import time
from dataclasses import dataclass
from typing import Any

import RestrictedPython.transformer as _rp_transformer
from RestrictedPython import RestrictingNodeTransformer, compile_restricted_eval, compile_restricted_exec

from .errors import ScriptError
from .sandbox_guards import BUILTINS, GUARDS, MAX_LINES, MAX_SECONDS, ScriptBudgetExceeded

MAX_NODES = 50_000  # syntax-tree nodes in one script or expression
FILENAME = "<gridflow-script>"

# ---- the compiler -----------------------------------------------------------------------------
_OP_GUARDS = {ast.Mult: "_mul_", ast.Pow: "_pow_", ast.LShift: "_lshift_", ast.Add: "_add_", ast.Mod: "_mod_"}
_POS = ("lineno", "col_offset", "end_lineno", "end_col_offset")


def _copy_locations(new_node, old_node) -> None:
    """RestrictedPython's copy_locations, without its `ast.fix_missing_locations` over the whole
    subtree: that made chained access (`s.replace(..).replace(..)...`) quadratic to compile, seven
    seconds for 120 such lines. Only nodes without a position are new; a positioned node's subtree
    was positioned when it was parsed or transformed."""
    pos = [getattr(old_node, a, None) for a in _POS]
    stack = [new_node]
    while stack:
        n = stack.pop()
        if "lineno" in n._attributes:
            if n is not new_node and getattr(n, "lineno", None) is not None:
                continue
            for a, v in zip(_POS, pos, strict=True):
                setattr(n, a, v)
        stack.extend(ast.iter_child_nodes(n))


_rp_transformer.copy_locations = _copy_locations


def _guard_call(name: str, args: list, node):
    call = ast.Call(func=ast.Name(name, ast.Load()), args=args, keywords=[])
    _copy_locations(call, node)
    return call


class _Policy(RestrictingNodeTransformer):
    """RestrictedPython's policy plus size guards on `*`, `**`, `<<`, `+`, `%` and f-string specs."""

    def visit_BinOp(self, node):
        node = self.node_contents_visit(node)
        guard = _OP_GUARDS.get(type(node.op))
        if guard is None:
            return node
        return _guard_call(guard, [node.left, node.right], node)

    def visit_FormattedValue(self, node):
        node = self.node_contents_visit(node)
        if node.format_spec is None:
            return node
        call = _guard_call("_format_", [node.value, ast.Constant(node.conversion), node.format_spec], node)
        new = ast.FormattedValue(value=call, conversion=-1, format_spec=None)
        _copy_locations(new, node)
        return new

    def visit_Module(self, node):  # one linear pass at the root, in case a new node was missed
        return ast.fix_missing_locations(super().visit_Module(node))

    def visit_Expression(self, node):
        return ast.fix_missing_locations(super().visit_Expression(node))


@dataclass(frozen=True)
class Unit:
    """One compiled script or expression, and what the router needs to know about it."""

    code: Any
    mode: str
    source: str
    names: frozenset[str]  # every name it reads, assigns or calls
    calls: frozenset[str]  # names it calls (`f(...)`)
    fast: bool  # bounded by construction if every called name is bounded (see `classify`)


_cache: dict[tuple[str, str], Unit] = {}


def compile_unit(source: str, mode: str) -> Unit:
    """Compile (cached) or raise ScriptError saying why the sandbox refuses the code."""
    unit = _cache.get((source, mode))
    if unit is None:
        try:
            tree = ast.parse(source, mode=mode)
        except SyntaxError as e:
            raise ScriptError(f"refused by the sandbox: syntax error: {e.msg} (line {e.lineno})") from None
        except (RecursionError, MemoryError):
            raise ScriptError("refused by the sandbox: the code is nested too deeply") from None
        nodes = list(ast.walk(tree))
        if len(nodes) > MAX_NODES:
            raise ScriptError(f"refused by the sandbox: the code is too long ({len(nodes)} syntax nodes, "
                              f"at most {MAX_NODES})")
        if any(isinstance(n, (ast.Import, ast.ImportFrom)) for n in nodes):
            raise ScriptError("refused by the sandbox: import is not allowed")
        fn = compile_restricted_eval if mode == "eval" else compile_restricted_exec
        try:
            res = fn(source, filename=FILENAME, policy=_Policy)
        except RecursionError:
            raise ScriptError("refused by the sandbox: the code is nested too deeply") from None
        if res.errors:
            raise ScriptError("refused by the sandbox: " + "; ".join(res.errors))
        names = frozenset(n.id for n in nodes if isinstance(n, ast.Name))
        calls = frozenset(n.func.id for n in nodes if isinstance(n, ast.Call) and isinstance(n.func, ast.Name))
        stored = {n.id for n in nodes if isinstance(n, ast.Name) and not isinstance(n.ctx, ast.Load)}
        # `now = workdays` then `now(10**9)`: a called name the code itself rebinds is not the helper
        unit = Unit(res.code, mode, source, names, calls, classify(tree, mode) and not (stored & calls))
        if len(_cache) < 5000:
            _cache[(source, mode)] = unit
    return unit


# ---- which code is trivially bounded ------------------------------------------------------------
_CMP = (ast.Eq, ast.NotEq, ast.Lt, ast.LtE, ast.Gt, ast.GtE, ast.Is, ast.IsNot, ast.In, ast.NotIn)
_LEAF = (ast.Load, ast.Store, ast.And, ast.Or, ast.Not, ast.USub, ast.UAdd, ast.Invert, *_CMP)
_DISPLAYS = (ast.Tuple, ast.List, ast.Set, ast.Dict)
_SHRINKING = (ast.Sub, ast.Div, ast.FloorDiv)


def _number(n) -> bool:
    return isinstance(n, ast.Constant) and type(n.value) in (int, float)


def _constant_display(n) -> bool:
    if isinstance(n, ast.Constant):
        return True
    if isinstance(n, ast.Dict):
        return all(k is not None and _constant_display(k) for k in n.keys) and all(map(_constant_display, n.values))
    return isinstance(n, (ast.Tuple, ast.List, ast.Set)) and all(map(_constant_display, n.elts))


def _bounded_expr(n, exec_mode: bool) -> bool:
    """No loops, no method calls and nothing that can amplify: the work is at most
    (size of the source) x (size of the data). In a script, values can feed later lines, so `+`
    needs a number on one side and containers may hold only constants (no doubling, no DAGs)."""
    if isinstance(n, (ast.Constant, ast.Name) + _LEAF):
        return True
    if isinstance(n, _DISPLAYS):
        return _constant_display(n) if exec_mode else all(_bounded_expr(c, exec_mode) for c in ast.iter_child_nodes(n))
    if isinstance(n, ast.BinOp):
        if isinstance(n.op, ast.Add):
            if exec_mode and not (_number(n.left) or _number(n.right)):
                return False
        elif not isinstance(n.op, _SHRINKING):
            return False
        return _bounded_expr(n.left, exec_mode) and _bounded_expr(n.right, exec_mode)
    if isinstance(n, ast.Call):
        return (isinstance(n.func, ast.Name)
                and not any(isinstance(a, ast.Starred) for a in n.args)
                and all(k.arg is not None and _bounded_expr(k.value, exec_mode) for k in n.keywords)
                and all(_bounded_expr(a, exec_mode) for a in n.args))
    if isinstance(n, (ast.Compare, ast.BoolOp, ast.UnaryOp, ast.IfExp, ast.Attribute, ast.Subscript, ast.Slice)):
        return all(_bounded_expr(c, exec_mode) for c in ast.iter_child_nodes(n))
    return False


def _bounded_stmt(s) -> bool:
    if isinstance(s, ast.Pass):
        return True
    if isinstance(s, ast.Expr):
        return _bounded_expr(s.value, True)
    if isinstance(s, ast.Assign):
        return all(isinstance(t, ast.Name) for t in s.targets) and _bounded_expr(s.value, True)
    if isinstance(s, ast.AugAssign):
        ok_op = isinstance(s.op, _SHRINKING) or (isinstance(s.op, ast.Add) and _number(s.value))
        return isinstance(s.target, ast.Name) and ok_op and _bounded_expr(s.value, True)
    if isinstance(s, ast.If):
        return _bounded_expr(s.test, True) and all(map(_bounded_stmt, s.body)) and all(map(_bounded_stmt, s.orelse))
    return False


def classify(tree, mode: str) -> bool:
    """True if the code has no loops, comprehensions, lambdas, method calls or amplifying operators;
    whether the names it calls are bounded is decided per call (helpers can be registered later)."""
    if mode == "eval":
        return _bounded_expr(tree.body, False)
    return all(map(_bounded_stmt, tree.body))


# ---- running in this process ------------------------------------------------------------------
class _Budget:
    """A per-thread line counter; active only while restricted code runs."""

    def __init__(self) -> None:
        self.lines = 0
        self.deadline = time.monotonic() + MAX_SECONDS

    def tracer(self, frame, event, arg):
        if frame.f_code.co_filename != FILENAME:
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
        if e.name and hasattr(builtins, e.name) and e.name not in BUILTINS:
            raise ScriptError(f"{e.name}() is not available in the sandbox") from None
        raise
    finally:
        sys.settrace(old)


def make_globals(context: dict, external_context: dict | None, helpers: dict) -> dict:
    g = dict(GUARDS)
    g.update(helpers)
    g.update(external_context or {})
    g.update(context)
    return g


def run(unit: Unit, context: dict, external_context: dict | None, helpers: dict) -> Any:
    """Run in this process: an expression's value, or a script's changes written into `context`
    (helpers, callables and underscore names are not copied into task data)."""
    g = make_globals(context, external_context, helpers)
    if unit.mode == "eval":
        return _run_budgeted(unit.code, g)
    base = dict(helpers, **(external_context or {}))
    _run_budgeted(unit.code, g)
    for k, v in g.items():
        if k.startswith("_") or callable(v) or (k in base and v is base[k] and k not in context):
            continue
        context[k] = v
    return True
