"""Registry counts: per grid for the data exchange (API), and per unit for leaders drilling down
the registry (city → county → township → village → grids). Numbers only, never a row or a name;
the per-unit sums read `registry_count` (one row per grid, kept by triggers), never the residents."""
from __future__ import annotations

from dataclasses import dataclass, field

from sqlalchemy import func, select, true
from sqlalchemy.orm import Session

from engine.errors import NotFound
from grid.org import service as org
from grid.org.models import LEVELS, OrgUnit
from grid.registry.counts import COLUMNS, RegistryCount
from grid.registry.models import Building, Household, Resident


def per_grid(svc, path: str) -> list[dict]:
    """Counts per grid under `path`: buildings, households, residents (no rows, no names)."""
    under = org.paths_condition([path], OrgUnit.path) if path else true()  # "" = the whole city
    with svc.db.read() as s:
        grids = list(s.scalars(select(OrgUnit.code).where(OrgUnit.level == "grid", under).order_by(OrgUnit.code)))
        if not grids:
            return []
        b = dict(s.execute(select(Building.grid_code, func.count()).where(Building.grid_code.in_(grids))
                           .group_by(Building.grid_code)).all())
        h = dict(s.execute(select(Building.grid_code, func.count(Household.id)).join(
            Household, Household.building_id == Building.id).where(Building.grid_code.in_(grids))
            .group_by(Building.grid_code)).all())
        r = dict(s.execute(select(Resident.grid_code, func.count()).where(Resident.grid_code.in_(grids))
                           .group_by(Resident.grid_code)).all())
    return [{"grid": g, "buildings": b.get(g, 0), "households": h.get(g, 0), "residents": r.get(g, 0)}
            for g in grids]


# ---- the registry for leaders: a unit's children with their counts ----------------------------
@dataclass
class UnitCounts:
    """One unit with the registry counts of everything below it (from `registry_count`)."""

    code: str
    name: str
    level: str
    grids: int = 0
    buildings: int = 0
    households: int = 0
    residents: int = 0
    flags: int = 0


@dataclass
class UnitPage:
    """A unit a leader drills into: where it sits (`trail`, top first, within the person's
    jurisdiction), its own totals and one page of its children (`total` of them in all)."""

    unit: UnitCounts | None  # None: the top of a person holding roles on several units
    trail: list[tuple[str, str]]
    children: list[UnitCounts] = field(default_factory=list)
    total: int = 0
    offset: int = 0


def _totals(s: Session, paths: list[str]) -> dict[str, list[int]]:
    """{path of a unit in `paths` or of the child that holds a grid: [grids, buildings, households,
    residents, flags]}, summed over the grids below each path in SQL (one small row per grid)."""
    out: dict[str, list[int]] = {}
    for path in paths:
        n = len(path)
        rest = func.substr(OrgUnit.path, n + 1)
        slash = func.strpos(rest, "/") if s.bind.dialect.name == "postgresql" else func.instr(rest, "/")
        child = func.substr(OrgUnit.path, 1, n + slash)
        rows = s.execute(
            select(child, func.count(OrgUnit.code), *[func.coalesce(func.sum(getattr(RegistryCount, c)), 0)
                                                      for c in COLUMNS])
            .select_from(OrgUnit).outerjoin(RegistryCount, RegistryCount.grid_code == OrgUnit.code)
            .where(OrgUnit.level == "grid", org.paths_condition([path], OrgUnit.path)).group_by(child))
        for key, *nums in rows:
            out[key] = [int(x or 0) for x in nums]
    return out


def unit_page(svc, staff_id: str | None, unit_code: str | None = None, limit: int = 50,
              offset: int = 0) -> UnitPage:
    """The registry of a unit for a leader: its children (counties → townships → villages → grids;
    not the functional departments, which hold no grids), each with grids, buildings, households,
    living residents and active flags below it, paged.
    Without `unit_code`: the person's own unit (or, holding roles on several, those units).
    Outside the jurisdiction looks the same as missing (NotFound)."""
    limit, offset = max(1, min(int(limit), 200)), max(0, int(offset))
    with svc.db.read() as s:
        roots = org.jurisdiction_paths(s, staff_id) if staff_id is not None else [
            p for p in s.scalars(select(OrgUnit.path).where(OrgUnit.parent_code.is_(None)))]
        if unit_code is None and len(roots) == 1:
            unit_code = org.path_codes(roots[0])[-1]
        if unit_code is None:  # several roots: list them
            codes = [org.path_codes(p)[-1] for p in roots]
            units = {u.code: u for u in s.scalars(select(OrgUnit).where(OrgUnit.code.in_(codes)))}
            shown = [units[c] for c in codes[offset:offset + limit] if c in units]
            return UnitPage(None, [], [_counts(u, _sum(_totals(s, [u.path]))) for u in shown], len(codes), offset)
        unit = s.get(OrgUnit, unit_code)
        if unit is None or not any(unit.path.startswith(r) for r in roots):
            raise NotFound("no such unit")
        top = min((r for r in roots if unit.path.startswith(r)), key=len)
        trail_codes = org.path_codes(unit.path)[len(org.path_codes(top)) - 1:]
        names = dict(s.execute(select(OrgUnit.code, OrgUnit.name).where(OrgUnit.code.in_(trail_codes))).all())
        trail = [(c, names.get(c, c)) for c in trail_codes]
        below = (OrgUnit.parent_code == unit.code, OrgUnit.level.in_(LEVELS))  # the territory, not 职能部门
        total = s.scalar(select(func.count()).select_from(OrgUnit).where(*below)) or 0
        kids = list(s.scalars(select(OrgUnit).where(*below).order_by(OrgUnit.code).limit(limit).offset(offset)))
        sums = _totals(s, [unit.path])
        return UnitPage(_counts(unit, _sum(sums)), trail, [_counts(k, sums.get(k.path)) for k in kids], total,
                        offset)


def _sum(sums: dict[str, list[int]]) -> list[int]:
    own = [0] * (1 + len(COLUMNS))
    for nums in sums.values():
        own = [a + b for a, b in zip(own, nums, strict=True)]
    return own


def _counts(u: OrgUnit, nums: list[int] | None) -> UnitCounts:
    nums = nums or [1 if u.level == "grid" else 0] + [0] * len(COLUMNS)
    return UnitCounts(u.code, u.name, u.level, *nums)


# ---- finding a unit by name (the other way to reach a unit than paging) -----------------------
@dataclass
class FoundUnit:
    """A unit whose name matched, with the name of the unit above it (名称 repeat: 第一网格 …)."""

    code: str
    name: str
    level: str
    parent_name: str | None


def find_units(svc, staff_id: str | None, text: str, unit_code: str | None = None,
               limit: int = 20) -> tuple[list[FoundUnit], bool]:
    """Units below `unit_code` (or anywhere in the jurisdiction) whose name contains `text`,
    upper levels first: ([found], whether there were more than `limit`). Only units in the
    person's jurisdiction; an outside `unit_code` is NotFound."""
    text = (text or "").strip()[:50]
    if not text or "\x00" in text:
        return [], False
    limit = max(1, min(int(limit), 100))
    esc = text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    with svc.db.read() as s:
        roots = org.jurisdiction_paths(s, staff_id) if staff_id is not None else [
            p for p in s.scalars(select(OrgUnit.path).where(OrgUnit.parent_code.is_(None)))]
        if unit_code:
            unit = s.get(OrgUnit, unit_code)
            if unit is None or not any(unit.path.startswith(r) for r in roots):
                raise NotFound("no such unit")
            roots = [unit.path]
        parent = OrgUnit.__table__.alias("parent")
        rows = s.execute(
            select(OrgUnit.code, OrgUnit.name, OrgUnit.level, parent.c.name)
            .outerjoin(parent, parent.c.code == OrgUnit.parent_code)
            .where(org.paths_condition(roots, OrgUnit.path), OrgUnit.level.in_(LEVELS),
                   OrgUnit.name.like(f"%{esc}%", escape="\\"))
            .order_by(func.length(OrgUnit.path), OrgUnit.code).limit(limit + 1)).all()
    return [FoundUnit(*r) for r in rows[:limit]], len(rows) > limit
