"""Reading rows back in the tests."""
from __future__ import annotations

from sqlalchemy import select


def rows(svc, model, order_by, kind: str | None = None, **where) -> list:
    """The `model` rows whose columns equal `where` (and whose `kind` is `kind`, if given), in `order_by` order."""
    q = select(model).filter_by(**where, **({"kind": kind} if kind else {}))
    with svc.db.read() as s:
        return list(s.scalars(q.order_by(order_by)))
