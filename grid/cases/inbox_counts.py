"""The inbox's counts by state and category, capped: "99+" instead of counting every open item.

A village head of a busy community can hold thousands of open work items; counting them all on
every inbox view makes the page grow with the backlog. With a cap the counts come from one
statement that reads at most `cap + 1` of the person's open items (a LIMIT inside the counted
subquery, no ORDER BY, so the database stops there). Below the cap the numbers are exact; past it
the page says "99+" and the state and category filters show no number (a count per state would
have to read every item of a state that has few: a LIMIT bounds nothing when the matches are
fewer than it).
"""
from __future__ import annotations

from datetime import datetime

from sqlalchemy import and_, case, func, or_, select

from engine.models import WorkItem
from grid.cases.models import DisputeCase

STATES = ("overdue", "warning", "normal")


def state_cond(state: str | None, now: datetime):
    """The condition of an inbox state ('overdue', 'warning', 'normal'; None = any)."""
    if state == "overdue":
        return WorkItem.due_at <= now
    if state == "warning":
        return and_(WorkItem.warn_at <= now, or_(WorkItem.due_at.is_(None), WorkItem.due_at > now))
    if state == "normal":
        return and_(or_(WorkItem.warn_at.is_(None), WorkItem.warn_at > now),
                    or_(WorkItem.due_at.is_(None), WorkItem.due_at > now))
    return None


def counts(s, mine, now: datetime, category: str | None = None, state: str | None = None,
           cap: int | None = None) -> dict:
    """{'by_state', 'by_category', 'total', 'capped'} of the person's open items (`mine`):
    `by_state` limited to the chosen category and `by_category` to the chosen state; items of no
    case (visits) count under 'other'. With `cap`, one statement reads at most cap + 1 items:
    past the cap `total` is cap + 1, `capped` is True and the other counts are those of the items
    read (lower bounds, which the page does not show as numbers)."""
    state_expr = case((WorkItem.due_at <= now, "overdue"), (WorkItem.warn_at <= now, "warning"), else_="normal")
    q = (select(DisputeCase.category.label("cat"), state_expr.label("st")).select_from(WorkItem)
         .outerjoin(DisputeCase, DisputeCase.instance_id == WorkItem.instance_id)
         .where(WorkItem.state == "open", mine))
    if cap is not None:
        q = q.limit(cap + 1)
    sub = q.subquery()
    rows = s.execute(select(sub.c.cat, sub.c.st, func.count()).group_by(sub.c.cat, sub.c.st)).all()
    by_cat: dict[str, int] = {}
    by_state: dict[str, int] = dict.fromkeys(STATES, 0)
    total = 0
    for cat, st, n in rows:
        if category is None or cat == category:
            by_state[st] += n
        if state is None or st == state:
            by_cat[cat or "other"] = by_cat.get(cat or "other", 0) + n
        total += n
    return {"by_state": by_state, "by_category": by_cat, "total": total,
            "capped": cap is not None and total > cap}
