"""The supervisors' late list page (督办): late work grouped by case, with its handlers, the
"already urged" mark, the units below that hold late work, and counts.

RECONSTRUCTED by the issue-16 session: the previous version of this file (another engineer's)
was overwritten by accident and could not be recovered. This version is rebuilt from its
callers (web/ui/inbox.py, web/templates/inbox/late.html, tests/web/test_late_list.py); its
owner should compare it with their own copy. The rows come from
`grid.cases.service.late_in_jurisdiction` (the `case_late` index, see grid/cases/late_index.py).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from engine import clock
from grid.cases import service as cases
from grid.cases.models import CaseLate, CaseRecord
from grid.org import service as org
from grid.org.models import OrgUnit, Staff

COUNT_CAP = 1000  # the total stops here (the page shows at most 25 pages of 40): "1000+"
UNIT_CAP = 100  # each unit's count in the picker stops here ("99+"): 100 index rows read per unit
_RANK = {"overdue": 2, "warning": 1, "normal": 0}


@dataclass
class LateItem:
    row: cases.InboxRow
    handlers: list[str]


@dataclass
class LateCase:
    case_id: int
    case_no: str | None
    category: str | None
    description: str | None
    state: str
    urged: int = 0
    last_urged: datetime | None = None
    items: list[LateItem] = field(default_factory=list)


@dataclass
class LatePage:
    cases: list[LateCase]
    total: int  # late work items in the jurisdiction (or the chosen unit), at most COUNT_CAP
    units: list[tuple[str, str, int]]  # units directly below the person's, with late work: (code, name, n)
    # n counted up to UNIT_CAP
    unit_names: dict[str, str]
    more: bool
    total_cap: int = COUNT_CAP
    unit_cap: int = UNIT_CAP


def _counts(s: Session, scopes: list[str], now: datetime, cap: int) -> list[int]:
    """Late work items under each unit path, each counted up to `cap`: one statement of capped
    index ranges (a scalar subquery per scope), not a round trip per unit of the picker."""
    if not scopes:
        return []
    cols = [select(func.count()).select_from(
        select(CaseLate.work_item_id).where(CaseLate.scope == p, CaseLate.late_at <= now).limit(cap).subquery())
        .scalar_subquery().label(f"n{i}") for i, p in enumerate(scopes)]
    return [n or 0 for n in s.execute(select(*cols)).one()]


def late_page(svc, staff_id: str, unit: str | None = None, limit: int = 40, offset: int = 0) -> LatePage:
    """One page of the late list (Forbidden for non-supervisors, as `late_in_jurisdiction`)."""
    rows = cases.late_in_jurisdiction(svc, staff_id, limit=limit + 1, offset=offset, unit=unit)
    more, rows = len(rows) > limit, rows[:limit]
    now = clock.now()
    with svc.db.read() as s:
        paths = org.jurisdiction_paths(s, staff_id)
        mine = list(s.scalars(select(OrgUnit).where(OrgUnit.path.in_(paths)))) if paths else []
        kids = [ch for u in sorted(mine, key=lambda x: x.path) for ch in org.children(s, u.code)]
        below = [(ch.code, ch.name, n) for ch, n in zip(kids, _counts(s, [ch.path for ch in kids], now, UNIT_CAP),
                                                         strict=True) if n]
        if unit:
            u = s.get(OrgUnit, unit) if "\x00" not in unit else None
            scopes = [u.path] if u is not None and any(u.path.startswith(p) for p in paths) else []
        else:
            scopes = paths
        total = min(COUNT_CAP, sum(_counts(s, scopes, now, COUNT_CAP)))
        case_ids = list(dict.fromkeys(r.case_id for r in rows))
        urges = {cid: (n, at) for cid, n, at in s.execute(
            select(CaseRecord.case_id, func.count(), func.max(CaseRecord.at))
            .where(CaseRecord.case_id.in_(case_ids), CaseRecord.kind == "urge")
            .group_by(CaseRecord.case_id))} if case_ids else {}
        users = {r.user_id for r in rows if r.user_id}
        names = dict(s.execute(select(Staff.id, Staff.name).where(Staff.id.in_(users))).all()) if users else {}
        pools = org.pool_names(s, {(r.unit_id, r.role) for r in rows if not r.user_id and r.unit_id and r.role})
        unit_names = dict(s.execute(select(OrgUnit.code, OrgUnit.name).where(
            OrgUnit.code.in_({r.unit_id for r in rows if r.unit_id}))).all()) if rows else {}
    groups: dict[int, LateCase] = {}
    for r in rows:
        g = groups.get(r.case_id)
        if g is None:
            n, at = urges.get(r.case_id, (0, None))
            g = groups[r.case_id] = LateCase(r.case_id, r.case_no, r.category, r.description, r.state, n, at)
        elif _RANK[r.state] > _RANK[g.state]:
            g.state = r.state
        handlers = [names.get(r.user_id, r.user_id)] if r.user_id else pools.get((r.unit_id, r.role), [])
        g.items.append(LateItem(r, handlers))
    return LatePage(list(groups.values()), total, below, unit_names, more, COUNT_CAP, UNIT_CAP)
