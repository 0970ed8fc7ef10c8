"""What /api/v1 and Open311 read, bounded by a client's jurisdiction (a unit path).

Plain dicts out (JSON-ready); personal data (descriptions, addresses, parties, staff names)
only when the caller asks with `personal=True` (the personal:read scope). Case lists page by
a keyset cursor over (updated_at, id); rows changed within the last `SETTLE` seconds are held
back, so a transaction that commits late cannot slip behind a cursor already handed out.
"""
from __future__ import annotations

import base64
import json
from datetime import date, datetime, timedelta

from sqlalchemy import func, or_, select, true

from engine import clock, outbox
from engine.errors import InvalidData, NotFound
from engine.models import WorkItem
from grid.cases import routing
from grid.cases.models import CaseRecord, DisputeCase
from grid.errors import Forbidden
from grid.org import service as org
from grid.org.models import OrgUnit, Staff, StaffRole

SETTLE = timedelta(seconds=2)
MAX_LIMIT = 200


def _under(path: str, column=OrgUnit.path):
    """Rows under `path` ("" = everything: Open311's default jurisdiction is the whole city)."""
    return org.paths_condition([path], column) if path else true()


def _iso(v: datetime | None) -> str | None:
    return v.isoformat().replace("+00:00", "Z") if v else None


def encode_cursor(*parts) -> str:
    return base64.urlsafe_b64encode(json.dumps(parts).encode()).decode().rstrip("=")


def decode_cursor(text: str) -> list:
    try:
        return json.loads(base64.urlsafe_b64decode(text + "=" * (-len(text) % 4)))
    except ValueError as e:
        raise InvalidData("bad cursor", [{"path": "cursor", "message": "not a cursor from this API"}]) from e


def _case_cursor(text: str) -> tuple[datetime, int]:
    """The (updated_at, id) a case-list cursor carries; InvalidData for anything else."""
    try:
        at_text, last_id = decode_cursor(text)
        at = datetime.fromisoformat(at_text)
    except (TypeError, ValueError):
        at = None
    if at is None or at.tzinfo is None or type(last_id) is not int:
        raise InvalidData("bad cursor", [{"path": "cursor", "message": "not a cursor from this API"}])
    return at, last_id


def case_summary(c: DisputeCase, personal: bool = False, due: dict | None = None) -> dict:
    out = {"id": c.id, "case_no": c.case_no, "category": c.category, "status": c.status, "grid": c.grid_code,
           "current_level": c.current_level, "current_unit": c.current_unit, "escalations": c.escalations,
           "warnings": c.warnings, "overdue": c.overdue, "result": c.result, "resolved_level": c.resolved_level,
           "reported_at": _iso(c.reported_at), "resolved_at": _iso(c.resolved_at),
           "archived_at": _iso(c.archived_at), "updated_at": _iso(c.updated_at),
           "source": c.source}
    if due is not None:
        out["due_at"], out["warn_at"] = due.get("due_at"), due.get("warn_at")
    if personal:
        out.update(description=c.description, location={"text": c.location_text, "lat": c.lat, "lng": c.lng},
                   parties=c.parties, reporter_id=c.reporter_id)
    return out


def _deadlines(s, instance_ids: list[int]) -> dict[int, dict]:
    out: dict[int, dict] = {}
    if not instance_ids:
        return out
    q = (select(WorkItem.instance_id, func.min(WorkItem.due_at), func.min(WorkItem.warn_at))
         .where(WorkItem.instance_id.in_(instance_ids), WorkItem.state == "open").group_by(WorkItem.instance_id))
    for iid, due, warn in s.execute(q):
        out[iid] = {"due_at": _iso(clock.to_utc(due)), "warn_at": _iso(clock.to_utc(warn))}
    return out


def list_cases(svc, path: str, *, updated_since: datetime | None = None, cursor: str | None = None,
               limit: int = 50, personal: bool = False, status: str | None = None,
               category: str | None = None, start: datetime | None = None, end: datetime | None = None) -> dict:
    """Cases under `path`, by (updated_at, id) ascending; `next_cursor` continues after the last."""
    limit = max(1, min(limit, MAX_LIMIT))
    with svc.db.read() as s:
        q = select(DisputeCase).where(_under(path, DisputeCase.unit_path),
                                      DisputeCase.updated_at <= clock.now() - SETTLE)
        if updated_since is not None:
            q = q.where(DisputeCase.updated_at >= updated_since)
        if status:
            q = q.where(DisputeCase.status.in_(status.split(",")))
        if category:
            q = q.where(DisputeCase.category.in_(category.split(",")))
        if start:
            q = q.where(DisputeCase.reported_at >= start)
        if end:
            q = q.where(DisputeCase.reported_at <= end)
        if cursor:
            at, last_id = _case_cursor(cursor)
            # `>=` first: a range the (updated_at, id) index can seek to; the OR only trims the ties
            # at `at` (an OR alone is a filter over every row from the start: deep pages got slower)
            q = q.where(DisputeCase.updated_at >= at, or_(DisputeCase.updated_at > at, DisputeCase.id > last_id))
        rows = list(s.scalars(q.order_by(DisputeCase.updated_at, DisputeCase.id).limit(limit)))
        dues = _deadlines(s, [c.instance_id for c in rows if c.instance_id])
        items = [case_summary(c, personal, dues.get(c.instance_id, {})) for c in rows]
        nxt = encode_cursor(rows[-1].updated_at.isoformat(), rows[-1].id) if rows else cursor
    return {"items": items, "next_cursor": nxt, "has_more": len(rows) == limit}


def _case(s, path: str, key: str | int) -> DisputeCase:
    q = select(DisputeCase)
    q = q.where(DisputeCase.case_no == key) if isinstance(key, str) and not key.isdigit() else \
        q.where(DisputeCase.id == int(key))
    c = s.scalar(q)
    if c is None or not c.unit_path.startswith(path):
        raise NotFound("no such case")  # outside the jurisdiction looks the same as missing
    return c


def case_detail(svc, path: str, key: str | int, personal: bool = False) -> dict:
    """Summary, open tasks with due times, records and the timeline."""
    with svc.db.read() as s:
        c = _case(s, path, key)
        tasks = list(s.scalars(select(WorkItem).where(WorkItem.instance_id == c.instance_id,
                                                      WorkItem.state == "open").order_by(WorkItem.due_at)))
        out = case_summary(c, personal, _deadlines(s, [c.instance_id] if c.instance_id else []).get(c.instance_id, {}))
        out["tasks"] = [{"task": t.task_spec, "name": t.name, "unit": t.unit_id, "role": t.role,
                         "created_at": _iso(t.created_at), "warn_at": _iso(t.warn_at), "due_at": _iso(t.due_at),
                         **({"user": t.user_id} if personal else {})} for t in tasks]
        out["records"] = case_records(s, c, personal)
    timeline = svc.runtime.history(c.instance_id) if c.instance_id else []
    out["timeline"] = [{"at": _iso(e.at), "kind": e.kind, "task": e.task,
                        **({"actor": e.actor, "data": e.data} if personal else {})} for e in timeline]
    return out


def case_records(s, c: DisputeCase, personal: bool = False) -> list[dict]:
    rows = s.scalars(select(CaseRecord).where(CaseRecord.case_id == c.id).order_by(CaseRecord.id))
    return [{"id": r.id, "kind": r.kind, "level": r.level, "unit": r.unit_code, "at": _iso(r.at),
             **({"actor": r.actor, "data": r.data} if personal else {})} for r in rows]


def records_of(svc, path: str, key: str | int, personal: bool = False) -> list[dict]:
    with svc.db.read() as s:
        return case_records(s, _case(s, path, key), personal)


def units(svc, path: str, *, cursor: str | None = None, limit: int = 100, level: str | None = None,
          with_boundary: bool = True) -> dict:
    """Units under `path` by code, with their boundary (GeoJSON) when one is stored."""
    limit = max(1, min(limit, MAX_LIMIT))
    with svc.db.read() as s:
        q = select(OrgUnit, routing.UnitBoundary.geojson).outerjoin(
            routing.UnitBoundary, routing.UnitBoundary.unit_code == OrgUnit.code).where(
            _under(path))
        if level:
            q = q.where(OrgUnit.level == level)
        rows = _keyset(s, q, OrgUnit.code, cursor, limit)
    items = [{"code": u.code, "name": u.name, "level": u.level, "kind": u.kind, "parent": u.parent_code,
              "lat": u.lat, "lng": u.lng, **({"boundary": json.loads(g) if g else None} if with_boundary else {})}
             for u, g in rows]
    return _page(items, "code", cursor, limit)


def unit(svc, path: str, code: str) -> dict:
    with svc.db.read() as s:
        u = s.get(OrgUnit, code)
        if u is None or not u.path.startswith(path):
            raise NotFound("no such unit")
        return {"code": u.code, "name": u.name, "level": u.level, "kind": u.kind, "parent": u.parent_code,
                "lat": u.lat, "lng": u.lng, "boundary": routing.boundary(s, code)}


def staff_directory(svc, path: str, *, unit_code: str | None = None, cursor: str | None = None,
                    limit: int = 100, personal: bool = False) -> dict:
    """Posts (role, title, unit) under `path`; names only with personal data, never phones."""
    limit = max(1, min(limit, MAX_LIMIT))
    with svc.db.read() as s:
        q = (select(StaffRole, Staff.name).join(Staff, Staff.id == StaffRole.staff_id)
             .join(OrgUnit, OrgUnit.code == StaffRole.unit_code)
             .where(StaffRole.active.is_(True), _under(path)))
        if unit_code:
            q = q.where(StaffRole.unit_code == unit_code)
        rows = _keyset(s, q, StaffRole.id, cursor, limit)
    items = [{"id": r.id, "staff_id": r.staff_id, "unit": r.unit_code, "role": r.role, "title": r.title,
              **({"name": name} if personal else {})} for r, name in rows]
    return _page(items, "id", cursor, limit)


def _keyset(s, q, key, cursor: str | None, limit: int) -> list:
    """One page of `q` in `key` order, after the key the cursor carries."""
    if cursor:
        parts = decode_cursor(cursor)
        if not isinstance(parts, list) or len(parts) != 1 or type(parts[0]) is not key.type.python_type:
            raise InvalidData("bad cursor", [{"path": "cursor", "message": "not a cursor from this API"}])
        q = q.where(key > parts[0])
    return list(s.execute(q.order_by(key).limit(limit)))


def _page(items: list[dict], key: str, cursor: str | None, limit: int) -> dict:
    """The reply: the items, the cursor after the last (the same one when empty), whether more may follow."""
    return {"items": items, "next_cursor": encode_cursor(items[-1][key]) if items else cursor,
            "has_more": len(items) == limit}


def indicators(svc, path: str, unit_code: str, start: date, end: date) -> dict:
    """The indicator values for a unit inside the client's jurisdiction."""
    from grid.cases.indicators import evaluate

    with svc.db.read() as s:
        u = s.get(OrgUnit, unit_code)
        if u is None:
            raise NotFound("no such unit")
        if not u.path.startswith(path):
            raise Forbidden("this unit is outside the client's jurisdiction")
        return {"unit": unit_code, "start": start.isoformat(), "end": end.isoformat(),
                "values": evaluate(s, u.path, start, end)}


def events(svc, path: str, after: int = 0, limit: int = 100) -> dict:
    """Feed events (CloudEvents) after the cursor, those of cases in the jurisdiction."""
    limit = max(1, min(limit, MAX_LIMIT))
    with svc.db.read() as s:
        rows = outbox.feed(s, after, limit)
    items = [r.payload for r in rows if str(r.payload.get("gridflowunitpath", "")).startswith(path)]
    last = rows[-1].id if rows else after
    return {"items": items, "next_cursor": last, "has_more": len(rows) == limit}


def unit_path(svc, code: str) -> str:
    """A unit's materialised path (NotFound when there is no such unit)."""
    with svc.db.read() as s:
        u = s.get(OrgUnit, code)
        if u is None:
            raise NotFound("no such unit")
        return u.path
