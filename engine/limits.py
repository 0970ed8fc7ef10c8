"""Limits that keep a deployed file from stalling the engine or closing an instance silently.

SpiffWorkflow's task iterator stops descending at depth 1000 (`TaskIterator(max_depth=1000)`),
and every walk of the task tree uses it: `is_completed`, `get_tasks`, `do_engine_steps`,
`cancel`, the joins. A loop that ran ~333 rounds (three tasks a round) therefore hid its
READY task and the instance was reported complete. `install()` makes the iterator's default
depth unbounded (the iterator is iterative, so that is safe); `MAX_TREE_DEPTH` then refuses
trees that would make each step slow, as an incident with a clear message.

Every limit is a module constant with an environment override (`GRIDFLOW_<NAME>`).
"""
from __future__ import annotations

import ast
import os
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from typing import Any

from SpiffWorkflow.bpmn.specs.event_definitions.timer import TimerEventDefinition as T
from SpiffWorkflow.bpmn.util.task import BpmnTaskIterator
from SpiffWorkflow.util.task import TaskIterator


def _env_int(name: str, default: int) -> int:
    raw = os.environ.get(f"GRIDFLOW_{name}")
    try:
        return int(raw) if raw else default
    except ValueError:
        return default


MAX_TREE_DEPTH = _env_int("MAX_TREE_DEPTH", 10_000)
"""Deepest task tree an instance may grow (a loop adds its tasks per round)."""
PARSE_RECURSION_LIMIT = _env_int("PARSE_RECURSION_LIMIT", 20_000)
"""Python recursion limit while SpiffWorkflow parses (it recurses along the sequence flows)."""
MAX_FLOW_NODES = _env_int("MAX_FLOW_NODES", 3_000)
"""Most flow elements one BPMN file may hold (bounds the parser's recursion)."""
MAX_MI_CARDINALITY = _env_int("MAX_MI_CARDINALITY", 1_000)
"""Most instances one multi-instance activity may create."""
MAX_TIMER_CYCLES = _env_int("MAX_TIMER_CYCLES", 1_000)
"""Most repetitions of a timer cycle (an `R/...` without a count is refused)."""
MIN_CYCLE_SECONDS = _env_int("MIN_CYCLE_SECONDS", 60)
"""Shortest interval of a timer cycle."""
MAX_TIMER_YEARS = _env_int("MAX_TIMER_YEARS", 50)
"""Furthest a timer date or duration may lie in the future."""
MAX_DATA_DEPTH = _env_int("MAX_DATA_DEPTH", 64)
"""Deepest nesting of lists/dicts in task data (deeper data cannot be stored safely)."""

_UNBOUNDED = sys.maxsize
_lock = threading.Lock()
_raised = 0
_saved_limit = 0


def install() -> None:
    """Make SpiffWorkflow's task iterators walk the whole tree by default (idempotent)."""
    TaskIterator.__init__.__defaults__ = (None, _UNBOUNDED, True, None)
    BpmnTaskIterator.__init__.__defaults__ = (None, _UNBOUNDED, True, False, None)


def iterator_depth() -> int:
    """The default depth SpiffWorkflow's iterators use now (for tests and the health check)."""
    return min(TaskIterator.__init__.__defaults__[1], BpmnTaskIterator.__init__.__defaults__[1])


@contextmanager
def deep_recursion(limit: int | None = None) -> Iterator[None]:
    """Raise Python's recursion limit while SpiffWorkflow's recursive parser runs; nested uses
    from several threads keep it raised until the last one leaves."""
    global _raised, _saved_limit
    with _lock:
        if _raised == 0:
            _saved_limit = sys.getrecursionlimit()
        _raised += 1
        sys.setrecursionlimit(max(_saved_limit, limit or PARSE_RECURSION_LIMIT))
    try:
        yield
    finally:
        with _lock:
            _raised -= 1
            if _raised == 0:
                sys.setrecursionlimit(_saved_limit)


def tree_depth(wf) -> int:
    """The deepest task tree of a workflow or any of its subprocesses, walked iteratively; below
    `MAX_TREE_DEPTH` tasks it answers the task count (an upper bound) without walking."""
    flows = [wf, *getattr(wf, "subprocesses", {}).values()]
    total = sum(len(w.tasks) for w in flows)
    if total < MAX_TREE_DEPTH:
        return total
    deepest = 0
    for w in flows:
        stack = [(w.task_tree, 1)]
        while stack:
            task, d = stack.pop()
            deepest = max(deepest, d)
            stack.extend((c, d + 1) for c in task.children if c is not None)
    return deepest


def data_depth(value: Any, stop: int | None = None) -> int:
    """How deeply lists/dicts nest in `value`, walked iteratively; stops counting past `stop`."""
    stop = stop or MAX_DATA_DEPTH
    deepest = 0
    stack = [(value, 0)]
    seen: set[int] = set()
    while stack:
        v, d = stack.pop()
        if isinstance(v, (dict, list, tuple, set, frozenset)):
            if id(v) in seen:  # shared or cyclic: counted once (json refuses cycles itself)
                continue
            seen.add(id(v))
            d += 1
            deepest = max(deepest, d)
            if deepest > stop:
                return deepest
            items = v.values() if isinstance(v, dict) else v
            stack.extend((x, d) for x in items)
    return deepest


class LimitExceeded(Exception):
    """An instance went past one of these limits (becomes an incident, never a silent close)."""


install()


# ---- checks deploy runs on literal values -------------------------------------------------------
def timer_problem(value: str) -> str | None:
    """Why a literal timer value is refused (never-ending or too frequent cycle, a date or
    duration beyond the horizon), or None."""
    now = datetime.now(UTC)
    horizon = now + timedelta(days=365 * MAX_TIMER_YEARS)
    text = str(value).strip()
    if text.upper().startswith("R"):
        cycles, start, duration = T.parse_iso_recurring_interval(text)
        if cycles < 0:
            return f"the cycle {text} never ends: give a repeat count (R<n>/...) of at most {MAX_TIMER_CYCLES}"
        if cycles > MAX_TIMER_CYCLES:
            return f"the cycle {text} repeats {cycles} times, over the limit of {MAX_TIMER_CYCLES}"
        if duration.total_seconds() < MIN_CYCLE_SECONDS:
            return (f"the cycle {text} repeats every {duration.total_seconds():g} s, more often than "
                    f"every {MIN_CYCLE_SECONDS} s")
        when = start
    else:
        parsed = T.parse_time_or_duration(text)
        if isinstance(parsed, datetime):
            when = parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)
        else:
            try:
                when = now + T.get_timedelta_from_start(parsed, now)
            except OverflowError:
                when = datetime.max.replace(tzinfo=UTC)
    if when > horizon:
        return f"the timer {text} lies more than {MAX_TIMER_YEARS} years in the future"
    return None


def cardinality_problem(expression: str | None) -> str | None:
    """Why a literal multi-instance cardinality is refused, or None (expressions are checked
    when they are computed)."""
    try:
        value = ast.literal_eval((expression or "").strip())
    except (ValueError, SyntaxError, TypeError, MemoryError, RecursionError):
        return None
    if isinstance(value, int) and value > MAX_MI_CARDINALITY:
        return f"the cardinality {value} is over the limit of {MAX_MI_CARDINALITY} instances"
    return None
