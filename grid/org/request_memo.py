"""A memo that lives for one web request: the signed-in person's roles and jurisdiction are read
once, not once per service function that checks them (a task page asked 6 times).

The web layer opens the scope (`scope()` around a request); outside one, nothing is remembered.
Nothing outlives the request, and the memo is emptied after every committed write (a role change,
a move, a deactivation in the same request is seen by the next read). Only read sessions use it:
a write session always asks the database, so what a write path reads is never stale, and objects
a write changes are never shared.

    with request_memo.scope():
        paths = request_memo.remember(s, ("jurisdiction", staff_id), lambda: query(s))
"""
from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Any, TypeVar

from sqlalchemy import event
from sqlalchemy.orm import Session

T = TypeVar("T")
_memo: ContextVar[dict | None] = ContextVar("gridflow_request_memo", default=None)


@contextmanager
def scope() -> Iterator[dict]:
    """Remember reads until the block ends (one request)."""
    token = _memo.set({})
    try:
        yield _memo.get()
    finally:
        _memo.reset(token)


def enter():
    """Open a scope without a `with` block (Flask's before/teardown pair); `leave(token)` closes it."""
    return _memo.set({})


def leave(token) -> None:
    _memo.reset(token)


def forget() -> None:
    """Drop everything remembered so far (after a write)."""
    memo = _memo.get()
    if memo:
        memo.clear()


def _writes(s: Session) -> bool:
    bind = s.get_bind()
    return bool(bind.get_execution_options().get("gridflow_write")) or s.in_nested_transaction() or bool(
        s.new or s.dirty or s.deleted)


def remember(s: Session, key: tuple, compute: Callable[[], T], copy: Callable[[T], T] | None = None) -> T:
    """`compute()` once per scope and key for read sessions; `copy` makes what the caller gets its own."""
    memo = _memo.get()
    if memo is None or _writes(s):
        return compute()
    if key not in memo:
        memo[key] = compute()
    value = memo[key]
    return copy(value) if copy else value


def attached(s: Session) -> Callable[[list[Any]], list[Any]]:
    """A `copy` for lists of ORM rows: each merged (without a load) into the asking session, so lazy
    loads and identity work as if that session had read them."""
    return lambda rows: [s.merge(r, load=False) for r in rows]


def attached_row(s: Session) -> Callable[[Any], Any]:
    """A `copy` for one ORM row (or None): merged (without a load) into the asking session."""
    return lambda row: None if row is None else s.merge(row, load=False)


@event.listens_for(Session, "after_commit")
def _after_commit(session) -> None:
    forget()
