"""The guards restricted code runs under: operators, builtins and str/list methods that could build
something huge in one C call are checked first, with a message that says what was refused.

They bound single operations, not their sum: a loop of allowed allocations or a long chain of
allowed C calls is stopped by the worker's OS limits (sandbox_pool), not here.
"""
from __future__ import annotations

import builtins
import itertools
import re

from RestrictedPython import safe_builtins
from RestrictedPython.Eval import default_guarded_getitem, default_guarded_getiter
from RestrictedPython.Guards import full_write_guard, guarded_iter_unpack_sequence, safer_getattr

from .errors import ScriptError

MAX_LINES = 200_000
MAX_SECONDS = 2.0
MAX_RANGE = 100_000
MAX_ITEMS = 1_000_000  # longest string/list a script may build (by repetition, padding, joining ...)
MAX_BITS = 100_000  # largest integer a script may build by ** or <<
MAX_POW_WORK = 10_000_000  # exponent bits x modulus bits of a three-argument pow()
MAX_ROUND_DIGITS = 5_000


class ScriptBudgetExceeded(ScriptError):
    """The script ran too long or tried to build something too large."""


def _refuse(what: str) -> ScriptBudgetExceeded:
    return ScriptBudgetExceeded(f"{what} is not allowed in the sandbox (limit {MAX_ITEMS} items)")


# ---- operator guards --------------------------------------------------------------------------
def _sized(x) -> bool:
    return isinstance(x, (str, bytes, list, tuple))


def _mul(a, b):
    if (_sized(a) and isinstance(b, int) and len(a) * b > MAX_ITEMS) or \
            (_sized(b) and isinstance(a, int) and len(b) * a > MAX_ITEMS):
        raise ScriptBudgetExceeded(f"a repetition longer than {MAX_ITEMS} items is not allowed")
    return a * b


def _add(a, b):
    if _sized(a) and _sized(b) and len(a) + len(b) > MAX_ITEMS:
        raise _refuse("a concatenation this long")
    return a + b


def _pow(a, b, mod=None):
    if mod is not None:
        if isinstance(b, int) and isinstance(mod, int) and b.bit_length() * mod.bit_length() > MAX_POW_WORK:
            raise ScriptBudgetExceeded("a modular power this large is not allowed in the sandbox")
        return builtins.pow(a, b, mod)
    if isinstance(a, int) and isinstance(b, int) and b > 0 and abs(a) > 1 and a.bit_length() * b > MAX_BITS:
        raise ScriptBudgetExceeded(f"an integer larger than {MAX_BITS} bits is not allowed")
    return a ** b


def _lshift(a, b):
    if isinstance(a, int) and isinstance(b, int) and a.bit_length() + b > MAX_BITS:
        raise ScriptBudgetExceeded(f"an integer larger than {MAX_BITS} bits is not allowed")
    return a << b


# printf-style conversions: flags, width (digits or *), precision (digits or *), conversion type
_PERCENT = re.compile(r"%(\([^)]*\))?[-#0 +]*(\*|\d+)?(?:\.(\*|\d+))?[hlL]?(.)", re.S)


def _mod(a, b):
    if isinstance(a, (str, bytes)):
        text = a.decode("latin-1") if isinstance(a, bytes) else a
        args = b if isinstance(b, tuple) else (b,)
        i = 0
        for m in _PERCENT.finditer(text):
            if m.group(4) == "%":
                continue
            for part in (m.group(2), m.group(3)):
                if part == "*":
                    n = args[i] if i < len(args) else 0
                    i += 1
                else:
                    n = int(part) if part else 0
                if isinstance(n, int) and abs(n) > MAX_ITEMS:
                    raise _refuse("a %-format width this large")
            i += 1
    return a % b


_SPEC = re.compile(r"^(?:.?[<>=^])?[-+ ]?z?#?0?(\d*)[,_]?(?:\.(\d+))?")


def _format(value, conversion: int, spec: str) -> str:
    """An f-string field with a format spec (`f'{x:>{n}}'`): the width may not be huge."""
    if conversion == ord("r"):
        value = repr(value)
    elif conversion == ord("s"):
        value = str(value)
    elif conversion == ord("a"):
        value = ascii(value)
    m = _SPEC.match(spec)
    if m and any(g and len(g) > 7 or g and int(g) > MAX_ITEMS for g in m.groups()):
        raise _refuse("a format width this large")
    return format(value, spec)


_INPLACE = {
    "+=": _add, "-=": lambda a, b: a - b, "*=": _mul,
    "/=": lambda a, b: a / b, "//=": lambda a, b: a // b, "%=": _mod,
}


def _inplacevar(op: str, x, y):
    fn = _INPLACE.get(op)
    if fn is None:
        raise ScriptError(f"operator {op} is not allowed")
    return fn(x, y)


# ---- builtin and method guards ----------------------------------------------------------------
def _capped_range(*args):
    r = range(*args)
    if len(r) > MAX_RANGE:
        raise ScriptBudgetExceeded(f"range() of {len(r)} items exceeds the limit of {MAX_RANGE}")
    return r


def _round(number, ndigits=None):
    if isinstance(ndigits, int) and abs(ndigits) > MAX_ROUND_DIGITS:
        raise ScriptBudgetExceeded(f"round() to more than {MAX_ROUND_DIGITS} digits is not allowed")
    return builtins.round(number) if ndigits is None else builtins.round(number, ndigits)


def _sum(iterable, start=0):
    if isinstance(start, (list, tuple)):  # sum(lists, []) is quadratic: concatenate once, bounded
        items = list(iterable)
        if all(type(i) is type(start) for i in items):
            if len(start) + builtins.sum(len(i) for i in items) > MAX_ITEMS:
                raise _refuse("a sum() of sequences this long")
            return start + type(start)(itertools.chain.from_iterable(items))
        return builtins.sum(items, start)
    return builtins.sum(iterable, start)


def _width(self, width, *rest, method: str):
    if isinstance(width, int) and width > MAX_ITEMS:
        raise _refuse(f"{method}() to this width")
    return getattr(self, method)(width, *rest)


def _replace(self, old, new, count=-1):
    if isinstance(old, type(self)) and isinstance(new, type(self)) and len(new) > len(old):
        hits = len(self) + 1 if not old else self.count(old)
        if count is not None and count >= 0:
            hits = min(hits, count)
        if len(self) + hits * (len(new) - len(old)) > MAX_ITEMS:
            raise _refuse("a replace() result this long")
    return self.replace(old, new, count)


def _join(self, iterable):
    parts = iterable if isinstance(iterable, (list, tuple)) else list(iterable)
    total = len(self) * max(len(parts) - 1, 0) + builtins.sum(len(p) for p in parts if _sized(p))
    if total > MAX_ITEMS:
        raise _refuse("a join() result this long")
    return self.join(parts)


def _expandtabs(self, tabsize=8):
    if isinstance(tabsize, int) and len(self) + self.count(b"\t" if isinstance(self, bytes) else "\t") * tabsize > MAX_ITEMS:
        raise _refuse("an expandtabs() result this long")
    return self.expandtabs(tabsize)


def _translate(self, table, *rest):
    if isinstance(table, dict):
        longest = max((len(v) for v in table.values() if _sized(v)), default=1)
        if len(self) * longest > MAX_ITEMS:
            raise _refuse("a translate() result this long")
    return self.translate(table, *rest)


def _extend(self, iterable):
    if _sized(iterable) and len(self) + len(iterable) > MAX_ITEMS:
        raise _refuse("a list this long")
    return self.extend(iterable)


_STR_GUARDS = {
    "ljust": lambda s, *a: _width(s, *a, method="ljust"), "rjust": lambda s, *a: _width(s, *a, method="rjust"),
    "center": lambda s, *a: _width(s, *a, method="center"), "zfill": lambda s, *a: _width(s, *a, method="zfill"),
    "replace": _replace, "join": _join, "expandtabs": _expandtabs, "translate": _translate,
}
_LIST_GUARDS = {"extend": _extend}
_TEXT = (str, bytes)


def _bounded_result(fn, self_len: int):
    """Wrap a str/bytes method whose result is at most a few times its input: refuse chains that
    grow past MAX_ITEMS (`b.hex().encode().hex()...`)."""
    def call(*args, **kwargs):
        out = fn(*args, **kwargs)
        if _sized(out) and len(out) > MAX_ITEMS and len(out) > self_len:
            raise _refuse("a string this long")
        return out
    return call


def _getattr(obj, name, default=None, getattr=getattr):
    value = safer_getattr(obj, name, default, getattr)
    if isinstance(obj, _TEXT):
        guard = _STR_GUARDS.get(name)
        if guard is not None:
            return lambda *a: guard(obj, *a)
        return _bounded_result(value, len(obj)) if callable(value) else value
    if (obj is str or obj is bytes) and name in _STR_GUARDS:  # str.ljust(s, n)
        return _unbound(_STR_GUARDS[name], obj)
    if isinstance(obj, list) and name in _LIST_GUARDS:
        return lambda *a: _LIST_GUARDS[name](obj, *a)
    if obj is list and name in _LIST_GUARDS:
        return _unbound(_LIST_GUARDS[name], list)
    return value


def _unbound(guard, cls):
    def call(self, *args):
        if not isinstance(self, cls):
            raise TypeError(f"descriptor requires a '{cls.__name__}' object but received '{type(self).__name__}'")
        return guard(self, *args)
    return call


BUILTINS = dict(
    safe_builtins,
    range=_capped_range, pow=_pow, round=_round, sum=_sum,
    len=len, any=any, all=all, min=min, max=max, sorted=sorted, enumerate=enumerate,
    zip=zip, list=list, dict=dict, set=set, tuple=tuple, reversed=reversed, map=map, filter=filter,
)


def _write_guard(ob):
    # Allow in-place changes of plain data containers; refuse everything else.
    if isinstance(ob, (dict, list, set)):
        return ob
    return full_write_guard(ob)


GUARDS = {
    "__builtins__": BUILTINS,
    "_getattr_": _getattr,
    "_getitem_": default_guarded_getitem,
    "_getiter_": default_guarded_getiter,
    "_iter_unpack_sequence_": guarded_iter_unpack_sequence,
    "_write_": _write_guard,
    "_inplacevar_": _inplacevar,
    "_mul_": _mul, "_pow_": _pow, "_lshift_": _lshift, "_add_": _add, "_mod_": _mod, "_format_": _format,
}
