"""What the maps draw, as GeoJSON FeatureCollections, each read checked against the person's
jurisdiction (a grid worker gets her grid, a county supervisor the county):

- `report_area`: the grid worker's grid outline(s) and a starting point, for the report page;
- `case_map`: one case's pin and its grid's outline (NotFound for a case the person may not see);
- `open_cases_map`: open cases under a unit of the person's jurisdiction, coloured by state
  (normal, warned, overdue, supervised), read through `ix_dispute_case_status_unit_path` (status =
  open, grid path under the unit) and `case_late` (equality on the scope), never the archive;
- `unit_shapes` / `choropleth`: the child units' outlines, with every indicator's value per unit
  from the rollup (grid.cases.dashboard.children_table) for the dashboard's choropleth.

Geometry stays WGS-84; the browser shifts it for a GCJ-02 tile layer (docs/maps.md).
"""
from __future__ import annotations

from datetime import date
from typing import Any

from sqlalchemy import func, select

from engine import clock
from engine.errors import NotFound
from engine.models import WorkItem
from grid.cases.lists import SUPERVISE_TASK
from grid.cases.models import CaseLate, DisputeCase
from grid.errors import Forbidden
from grid.org import boundaries
from grid.org import service as org
from grid.org.models import OrgUnit

MAX_POINTS = 20_000  # open cases on one map; more says `truncated` (the list pages have them all)
GROUP_AT = 2_000  # more open cases than this under a unit: one group per child unit, not a pin each


def _unit_feature(u: OrgUnit, geometry: dict | None, **props: Any) -> dict:
    return {"type": "Feature", "geometry": geometry,
            "properties": {"kind": "unit", "code": u.code, "name": u.name, "level": u.level,
                           "lat": u.lat, "lng": u.lng, **props}}


def _collection(features: list[dict], **extra: Any) -> dict:
    return {"type": "FeatureCollection", "features": features, **extra}


def _scope(s, staff_id: str, unit: str | None) -> list[OrgUnit]:
    """The units a map covers: the one asked for (in the jurisdiction, else Forbidden, unknown
    codes alike), or the person's outermost units."""
    paths = org.jurisdiction_paths(s, staff_id)
    if unit:
        u = s.get(OrgUnit, unit) if len(unit) <= 20 and unit.isascii() and unit.isalnum() else None
        if u is None or not any(u.path.startswith(p) for p in paths):
            raise Forbidden("this unit is outside your jurisdiction")
        return [u]
    return list(s.scalars(select(OrgUnit).where(OrgUnit.path.in_(paths)).order_by(OrgUnit.path))) if paths else []


def report_area(svc, staff_id: str) -> dict:
    """The grids the person is the grid worker of, with outline and point (the report page's map)."""
    with svc.db.read() as s:
        codes = [r.unit_code for r in org.roles_of(s, staff_id) if r.role == "grid_worker"]
        if not codes:
            raise Forbidden("only a grid worker has a grid to report from")
        units = list(s.scalars(select(OrgUnit).where(OrgUnit.code.in_(codes)).order_by(OrgUnit.code)))
        shapes = boundaries.many(s, codes)
        return _collection([_unit_feature(u, shapes.get(u.code), role="mine") for u in units])


def case_map(svc, staff_id: str, case_id: int) -> dict:
    """One case's pin (its reported lat/long, else its grid's point, marked approximate) and the
    outline of its grid. NotFound when the person may not see the case."""
    from grid.cases.attachments import may_see_case

    with svc.db.read() as s:
        c = s.get(DisputeCase, case_id)
        if c is None or not may_see_case(s, staff_id, c):
            raise NotFound("no such case")
        grid = s.get(OrgUnit, c.grid_code)
        shape = boundaries.geometry_of(s, c.grid_code)
        lat, lng, approx = c.lat, c.lng, False
        if lat is None or lng is None:
            lat, lng, approx = grid.lat, grid.lng, True
        feats = [_unit_feature(grid, shape, role="grid")]
        if lat is not None and lng is not None:
            inside = boundaries.contains(shape, lat, lng)
            feats.append({"type": "Feature", "geometry": {"type": "Point", "coordinates": [lng, lat]},
                          "properties": {"kind": "case", "case_no": c.case_no, "id": c.id, "approx": approx,
                                         "inside": inside, "location": c.location_text or ""}})
        return _collection(feats)


def _states(s, scopes: list[str], ids: set[int]) -> dict[int, tuple[str, bool]]:
    """{case id: (normal | warned | overdue, supervised)} from `case_late` under these scopes."""
    now = clock.now()
    out: dict[int, tuple[str, bool]] = {}
    if not ids:
        return out
    scope = CaseLate.scope == scopes[0] if len(scopes) == 1 else CaseLate.scope.in_(scopes)
    q = (select(CaseLate.case_id, func.min(CaseLate.late_at), func.min(CaseLate.due_key))
         .where(scope).group_by(CaseLate.case_id))
    for cid, late_at, due in s.execute(q):
        if cid not in ids:
            continue
        state = "overdue" if due is not None and due <= now else "warned" if late_at is not None and late_at <= now \
            else "normal"
        out[cid] = (state, False)
    sup = (select(CaseLate.case_id).join(WorkItem, WorkItem.id == CaseLate.work_item_id)
           .where(scope, WorkItem.task_spec == SUPERVISE_TASK, WorkItem.state == "open"))
    for (cid,) in s.execute(sup):
        if cid in ids:
            out[cid] = (out.get(cid, ("normal", False))[0], True)
    return out


def _open_counts(s, parts: list[OrgUnit]) -> dict[str, int]:
    """Open cases under each unit (by path): a count over a range of
    `ix_dispute_case_status_unit_path` per unit, the index alone (no case row read)."""
    return {u.path: s.scalar(select(func.count()).select_from(DisputeCase).where(
        DisputeCase.status == "open", org.paths_condition([u.path], DisputeCase.unit_path))) for u in parts}


LATE_CAP = 2_000  # late rows read per group for its counts; beyond, the counts say "at least"


def _late_counts(s, paths: list[str]) -> dict[str, tuple[int, int, int, bool]]:
    """path -> (past warning, overdue, supervised, capped) open cases under it, from `case_late`
    (only what has a due time), each read an index range of at most LATE_CAP rows in due order:
    the overdue ones (due before now), then the soonest due (past warning when their warning
    time has passed). `capped`: a read hit the cap, so the counts are lower bounds."""
    now = clock.now()
    supervising = select(WorkItem.id).where(WorkItem.task_spec == SUPERVISE_TASK, WorkItem.state == "open")
    sup = dict(s.execute(select(CaseLate.scope, func.count(func.distinct(CaseLate.case_id)))
                         .where(CaseLate.scope.in_(paths), CaseLate.work_item_id.in_(supervising))
                         .group_by(CaseLate.scope)).all()) if paths else {}
    out = {}
    for p in paths:
        over = list(s.scalars(select(CaseLate.case_id).where(CaseLate.scope == p, CaseLate.due_key <= now)
                              .order_by(CaseLate.due_key).limit(LATE_CAP)))
        soon = s.execute(select(CaseLate.case_id, CaseLate.late_at).where(CaseLate.scope == p, CaseLate.due_key > now)
                         .order_by(CaseLate.due_key).limit(LATE_CAP)).all()
        overdue = set(over)
        warned = {cid for cid, at in soon if at is not None and at <= now} - overdue
        out[p] = (len(warned) + len(overdue), len(overdue), sup.get(p, 0),
                  len(over) == LATE_CAP or len(soon) == LATE_CAP)
    return out


def _grouped(s, units: list[OrgUnit], kids: list[OrgUnit], parts: list[OrgUnit], sizes: dict[str, int],
             shapes: dict) -> dict:
    """A map of many open cases: one `group` feature per child unit (its point, its count and how
    many are past warning, overdue and supervised), which the map draws as a numbered marker that
    opens the child's own map. Its cost is a few index reads per child, not one row per case."""
    feats = [_unit_feature(u, shapes.get(u.code), role="scope") for u in units]
    feats += [_unit_feature(k, shapes[k.code], role="child") for k in kids if k.code in shapes]
    counts = {"normal": 0, "warned": 0, "overdue": 0, "supervised": 0}
    lates = _late_counts(s, [u.path for u in parts if sizes.get(u.path)])
    for u in parts:
        n = sizes.get(u.path, 0)
        if not n:
            continue
        late, overdue, sup, capped = lates[u.path]
        part = {"normal": max(0, n - late), "warned": late - overdue, "overdue": overdue, "supervised": sup}
        for k in counts:
            counts[k] += part[k]
        state = "overdue" if overdue else "warned" if late else "normal"
        if u.lat is None or u.lng is None:
            continue
        feats.append({"type": "Feature", "geometry": {"type": "Point", "coordinates": [u.lng, u.lat]},
                      "properties": {"kind": "group", "code": u.code, "name": u.name, "level": u.level,
                                     "count": n, "state": state, "supervised": bool(sup), "counts": part,
                                     "at_least": capped}})
    return _collection(feats, truncated=False, grouped=True, counts=counts)


def open_cases_map(svc, staff_id: str, unit: str | None = None) -> dict:
    """Open cases under `unit` (or the person's whole jurisdiction) as points with their state,
    plus the outline of each unit covered. Cases reported without coordinates sit on their grid's
    point (`approx`)."""
    with svc.db.read() as s:
        units = _scope(s, staff_id, unit)
        if not units:
            return _collection([], truncated=False, counts={})
        paths = [u.path for u in units]
        kids = [k for u in units for k in org.children(s, u.code)] if len(units) == 1 else []
        shapes = boundaries.many(s, [u.code for u in units + kids])
        parts = kids if len(units) == 1 else units
        sizes = _open_counts(s, parts) if parts else {}
        if sum(sizes.values()) > GROUP_AT:
            return _grouped(s, units, kids, parts, sizes, shapes)
        q = (select(DisputeCase.id, DisputeCase.case_no, DisputeCase.category, DisputeCase.lat, DisputeCase.lng,
                    DisputeCase.grid_code, DisputeCase.current_level, DisputeCase.reported_at)
             .where(DisputeCase.status == "open", org.paths_condition(paths, DisputeCase.unit_path))
             .order_by(DisputeCase.id.desc()).limit(MAX_POINTS + 1))
        rows = list(s.execute(q))
        truncated = len(rows) > MAX_POINTS
        rows = rows[:MAX_POINTS]
        states = _states(s, paths, {r.id for r in rows})
        missing = {r.grid_code for r in rows if r.lat is None or r.lng is None}
        points = dict((c, (la, ln)) for c, la, ln in s.execute(
            select(OrgUnit.code, OrgUnit.lat, OrgUnit.lng).where(OrgUnit.code.in_(missing)))) if missing else {}
        feats = [_unit_feature(u, shapes.get(u.code), role="scope") for u in units]
        feats += [_unit_feature(k, shapes[k.code], role="child") for k in kids if k.code in shapes]
        counts = {"normal": 0, "warned": 0, "overdue": 0, "supervised": 0}
        for r in rows:
            lat, lng, approx = r.lat, r.lng, False
            if lat is None or lng is None:
                lat, lng = points.get(r.grid_code, (None, None))
                approx = True
            if lat is None or lng is None:
                continue
            state, supervised = states.get(r.id, ("normal", False))
            counts[state] += 1
            counts["supervised"] += supervised
            feats.append({"type": "Feature", "geometry": {"type": "Point", "coordinates": [lng, lat]},
                          "properties": {"kind": "case", "id": r.id, "case_no": r.case_no, "category": r.category,
                                         "level": r.current_level, "state": state, "supervised": supervised,
                                         "approx": approx, "reported_at": r.reported_at.isoformat()}})
        return _collection(feats, truncated=truncated, counts=counts)


def unit_shapes(svc, staff_id: str, unit: str | None = None, children: bool = True) -> dict:
    """Outlines of a unit in the jurisdiction (default: the person's own units), or of its
    children: a grid worker gets her grid, a county supervisor the county and its townships."""
    with svc.db.read() as s:
        units = _scope(s, staff_id, unit)
        if children and unit:
            units = org.children(s, units[0].code) or units
        shapes = boundaries.many(s, [u.code for u in units])
        return _collection([_unit_feature(u, shapes.get(u.code)) for u in units])


def choropleth(svc, staff_id: str, unit_code: str, start: date, end: date) -> dict:
    """The child units' outlines with every indicator's value for [start, end] (from the rollup):
    the dashboard colours them by the indicator chosen, client-side."""
    from grid.cases import dashboard as dash

    table = dash.children_table(svc, staff_id, unit_code, start, end)  # checks the jurisdiction
    with svc.db.read() as s:
        shapes = boundaries.many(s, [r["unit_code"] for r in table])
        units = {u.code: u for u in s.scalars(select(OrgUnit).where(OrgUnit.code.in_([r["unit_code"] for r in table])))}
    feats = []
    for r in table:
        u = units.get(r["unit_code"])
        if u is None:
            continue
        values = {k: _plain(v) for k, v in r["values"].items()}
        feats.append(_unit_feature(u, shapes.get(u.code), values=values))
    return _collection(feats)


def _plain(v: Any) -> float | int | None:
    """An indicator value as one number: rates and counts as they are, durations as average days."""
    if isinstance(v, dict):
        return (v.get("all") or {}).get("avg_days")
    return v
