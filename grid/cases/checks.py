"""Data checks on dispute cases: a 重复件 names a real case, parties are registered residents,
repeat disputes are found and counted.

Why here and not in the forms: JSON Schema checks shapes, these need the database and the
person's jurisdiction. Every refusal that could confirm a guess ("does this case / resident
exist?") says the same thing for "missing" and "outside your jurisdiction", so it is no oracle.

Repeat disputes (重复纠纷) are counted when the case is accepted (受理): at its first dispatch to
mediators, or when it is settled on the spot. A case archived as a 重复件 is never accepted, so
the same dispute reported twice is counted as a duplicate, not as a repeat (重复纠纷数 stays a
part of 受理数). The `repeat` record is written by the step listener in that step's transaction.
"""
from __future__ import annotations

import math
import os
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import and_, or_, select, union_all
from sqlalchemy.orm import Session, load_only

from engine.errors import InvalidData
from grid.cases import parties
from grid.cases.models import CaseLink, CaseParty, DisputeCase
from grid.org import service as org

NO_SUCH_CASE = "no case with this number in your jurisdiction"
NO_SUCH_RESIDENT = "no registered resident with this id in your jurisdiction"
DUPLICATE = "duplicate"

# (session, staff id or None, resident ids) -> the ids that are missing or outside the jurisdiction;
# set by the composition root from the registry side (grid.cases must not import grid.registry)
PartyChecker = Callable[[Session, str | None, set[int]], set[int]]


# ---- 重复件 --------------------------------------------------------------------------------------
def duplicate_target(s: Session, staff_id: str, case_no: str, case_id: int | None = None) -> DisputeCase:
    """The case a 重复件 names, if it exists, is another case and lies in the person's jurisdiction;
    else InvalidData with a field error on `duplicate_of`."""
    no = (case_no or "").strip()
    target = s.scalar(select(DisputeCase).where(DisputeCase.case_no == no)) if no and "\x00" not in no else None
    if target is None or not any(target.unit_path.startswith(p) for p in org.jurisdiction_paths(s, staff_id)):
        raise InvalidData(NO_SUCH_CASE, [{"path": "duplicate_of", "message": NO_SUCH_CASE, "validator": "case"}])
    if case_id is not None and target.id == case_id:
        msg = "a case cannot be a duplicate of itself"
        raise InvalidData(msg, [{"path": "duplicate_of", "message": msg, "validator": "case"}])
    return target


SUMMARY_COLUMNS = ("id", "case_no", "category", "description", "location_text", "status", "result",
                   "current_level", "reported_at", "archived_at", "lat", "lng")  # summary's, and where


def summary(c: DisputeCase) -> dict[str, Any]:
    """What a page shows of a linked or named case (no parties: they are personal data)."""
    return {"case_id": c.id, "case_no": c.case_no, "category": c.category, "description": c.description,
            "location_text": c.location_text, "status": c.status, "result": c.result,
            "current_level": c.current_level, "reported_at": c.reported_at, "archived_at": c.archived_at}


def duplicate_preview(svc, staff_id: str, case_no: str, case_id: int | None = None) -> dict[str, Any]:
    """The summary of the case a dispatcher is about to name as the original of a 重复件 (shown
    before confirming); refused like the dispatch itself would be."""
    with svc.db.read() as s:
        return summary(duplicate_target(s, staff_id, case_no, case_id))


def check_dispatch(s: Session, staff_id: str, case_id: int | None, data: dict) -> None:
    """At the completion of a task: a `duplicate_of` given with the duplicate action must name a case."""
    if data.get("duplicate_of") and data.get("action", DUPLICATE) == DUPLICATE:
        duplicate_target(s, staff_id, str(data["duplicate_of"]), case_id)


def link_duplicate(s: Session, c: DisputeCase, actor: str | None, at: datetime) -> None:
    """Link an archived 重复件 to its original (in the archive step's transaction; idempotent)."""
    if not c.duplicate_of:
        return
    to = s.scalar(select(DisputeCase.id).where(DisputeCase.case_no == c.duplicate_of))
    if to is None or to == c.id:
        return
    if s.get(CaseLink, (c.id, to, DUPLICATE)) is None:
        s.add(CaseLink(from_case_id=c.id, to_case_id=to, kind=DUPLICATE, at=at, actor=actor))


def links_of(s: Session, staff_id: str, case_id: int) -> list[dict[str, Any]]:
    """The case's links from both ends, each with the other case's summary; `direction` is `to`
    (this case is the duplicate of the other) or `from` (the other is a duplicate of this one).
    A linked case outside the person's jurisdiction is left out."""
    rows = s.execute(select(CaseLink, DisputeCase)
                     .join(DisputeCase, or_(and_(CaseLink.from_case_id == case_id, DisputeCase.id == CaseLink.to_case_id),
                                            and_(CaseLink.to_case_id == case_id, DisputeCase.id == CaseLink.from_case_id)))
                     .where(or_(CaseLink.from_case_id == case_id, CaseLink.to_case_id == case_id))
                     .where(org.paths_condition(org.jurisdiction_paths(s, staff_id), DisputeCase.unit_path))
                     .order_by(CaseLink.at, DisputeCase.id)).all()
    return [{"kind": link.kind, "direction": "to" if link.from_case_id == case_id else "from", "at": link.at,
             **summary(other)} for link, other in rows]


def links(svc, staff_id: str, case_id: int) -> list[dict[str, Any]]:
    """`links_of` for a case the person may see (NotFound otherwise, as for the case page)."""
    from grid.cases import service

    c = service.get_case(svc, staff_id, case_id)
    with svc.db.read() as s:
        return links_of(s, staff_id, c.id)


# ---- parties -----------------------------------------------------------------------------------
def check_parties(s: Session, checker: PartyChecker | None, staff_id: str | None, party_list) -> None:
    """Every party that names a registered resident must name one that exists in the jurisdiction
    of `staff_id`; errors point at `parties/<i>/resident_id`. A resident id that is not a whole
    number is refused too (it could never link). No checker (no registry wired): no check."""
    if checker is None:
        return
    errors, wanted = [], {}
    for i, p in enumerate(party_list or []):
        rid = p.get("resident_id") if isinstance(p, dict) else None
        if rid is None or rid == "":
            continue
        ids = parties.resident_ids([p])
        if not ids:
            errors.append({"path": f"parties/{i}/resident_id", "message": NO_SUCH_RESIDENT, "validator": "resident"})
        else:
            wanted[i] = next(iter(ids))
    bad = checker(s, staff_id, set(wanted.values())) if wanted else set()
    errors.extend({"path": f"parties/{i}/resident_id", "message": NO_SUCH_RESIDENT, "validator": "resident"}
                  for i, rid in wanted.items() if rid in bad)
    if errors:
        raise InvalidData(NO_SUCH_RESIDENT, sorted(errors, key=lambda e: e["path"]))


# ---- repeat disputes ---------------------------------------------------------------------------
def repeat_meters() -> float:
    """GRIDFLOW_REPEAT_METERS (default 200): how near an earlier case of the same category must be."""
    return float(os.environ.get("GRIDFLOW_REPEAT_METERS", "200") or 200)


def repeat_days() -> int:
    """GRIDFLOW_REPEAT_DAYS (default 90): how far back an earlier case counts."""
    return int(os.environ.get("GRIDFLOW_REPEAT_DAYS", "90") or 90)


EARTH_M = 6_371_000.0


def meters(lat1: float, lng1: float, lat2: float, lng2: float) -> float:
    """Great-circle distance (haversine) in meters."""
    p1, p2 = math.radians(lat1), math.radians(lat2)
    dp, dl = p2 - p1, math.radians(lng2 - lng1)
    a = math.sin(dp / 2) ** 2 + math.cos(p1) * math.cos(p2) * math.sin(dl / 2) ** 2
    return 2 * EARTH_M * math.asin(min(1.0, math.sqrt(a)))


CELL_DEG = 0.005  # a map cell: ~550 m of latitude, ~470 m of longitude at 32°N
MAX_CELLS = 25  # a larger radius than the cells cover reads the lat/lng band instead
REPEAT_LIMIT = 50  # the newest earlier cases a repeat list shows; `count_repeats` tells how many


def geo_cell(lat: float | None, lng: float | None) -> str | None:
    """The map cell of a point, the key repeat detection reads by (`ix_dispute_case_cell`)."""
    if lat is None or lng is None:
        return None
    return f"{math.floor(lat / CELL_DEG)}:{math.floor(lng / CELL_DEG)}"


def _cells(lat: float, lng: float, dlat: float, dlng: float) -> list[str] | None:
    """The cells the box lat±dlat, lng±dlng touches; None when they are more than MAX_CELLS."""
    la = range(math.floor((lat - dlat) / CELL_DEG), math.floor((lat + dlat) / CELL_DEG) + 1)
    ln = range(math.floor((lng - dlng) / CELL_DEG), math.floor((lng + dlng) / CELL_DEG) + 1)
    if len(la) * len(ln) > MAX_CELLS:
        return None
    return [f"{a}:{b}" for a in la for b in ln]


def _newest(q, limit: int):
    """The newest `limit` rows of q (by report time alone, so the index's order serves it)."""
    return q.order_by(DisputeCase.reported_at.desc()).limit(limit)


def find_repeats(s: Session, c: DisputeCase, staff_id: str | None = None,
                 limit: int | None = None) -> list[tuple[DisputeCase, list[str]]]:
    """The newest `limit` earlier cases (reported in the `repeat_days()` before this one, not
    cancelled) that name a registered resident this case names, or lie within `repeat_meters()`
    with the same category; with why (`party`, `nearby`). In `staff_id`'s jurisdiction (None: all).
    Oldest first. Each read is an index range cut at `limit` rows (the resident's case links; the
    category's newest cases per map cell), so a busy corner with years of reports costs the same
    as a quiet one. Only the columns `summary` shows (and the location) are read."""
    limit = limit or REPEAT_LIMIT
    since = c.reported_at - timedelta(days=repeat_days())
    earlier = or_(DisputeCase.reported_at < c.reported_at,
                  and_(DisputeCase.reported_at == c.reported_at, DisputeCase.id < c.id))
    base = [DisputeCase.reported_at >= since, earlier, DisputeCase.status != "cancelled"]
    if staff_id is not None:
        base.append(org.paths_condition(org.jurisdiction_paths(s, staff_id), DisputeCase.unit_path))
    found: dict[int, tuple[DisputeCase, list[str]]] = {}
    shown = load_only(*(getattr(DisputeCase, k) for k in SUMMARY_COLUMNS))
    named = parties.resident_ids(c.parties)
    if named:  # (no statement for the many cases that name no registered resident)
        by_party = select(DisputeCase).where(DisputeCase.id.in_(
            select(CaseParty.case_id).where(CaseParty.resident_id.in_(named))), *base).options(shown)
        for other in s.scalars(_newest(by_party, limit)):
            found[other.id] = (other, ["party"])
    if c.lat is not None and c.lng is not None:
        radius = repeat_meters()
        dlat = radius / 111_320.0
        dlng = dlat / max(math.cos(math.radians(c.lat)), 0.01)
        box = [DisputeCase.category == c.category, DisputeCase.lat.between(c.lat - dlat, c.lat + dlat),
               DisputeCase.lng.between(c.lng - dlng, c.lng + dlng), *base]
        cells = _cells(c.lat, c.lng, dlat, dlng)
        if cells is None:
            near = _newest(select(DisputeCase).where(*box), limit)
        else:  # one statement: each cell's newest `limit`, an index range each
            ids = [_newest(select(DisputeCase.id).where(DisputeCase.geo_cell == cell, *box), limit).subquery()
                   for cell in cells]
            near = select(DisputeCase).where(DisputeCase.id.in_(union_all(*(select(q.c.id) for q in ids))))
        for other in s.scalars(near.options(shown)):
            if meters(c.lat, c.lng, other.lat, other.lng) <= radius:
                found.setdefault(other.id, (other, []))[1].append("nearby")
    return sorted(found.values(), key=lambda x: (x[0].reported_at, x[0].id))[-limit:]


def repeats(svc, staff_id: str, case_id: int) -> list[dict[str, Any]]:
    """For the dispatch page: the earlier cases this one repeats, in the person's jurisdiction,
    each a summary with `reasons` (`party`, `nearby`)."""
    from grid.cases import service

    c = service.get_case(svc, staff_id, case_id)
    with svc.db.read() as s:
        return repeats_in(s, staff_id, s.get(DisputeCase, c.id))


def repeats_in(s: Session, staff_id: str, c: DisputeCase) -> list[dict[str, Any]]:
    """`repeats` in the caller's session, for a case the caller has checked the person may see."""
    return [{**summary(o), "reasons": why} for o, why in find_repeats(s, c, staff_id)]


def repeat_data(s: Session, c: DisputeCase) -> dict[str, Any] | None:
    """The `repeat` record's data when the case repeats earlier ones (system-wide), else None."""
    found = find_repeats(s, c, limit=min(20, REPEAT_LIMIT))  # the record names the newest 20
    if not found:
        return None
    return {"of": [o.case_no for o, _ in found], "reasons": sorted({r for _, why in found for r in why})}
