"""Registry counts per grid for the data exchange (API): numbers only, never a row or a name."""
from __future__ import annotations

from sqlalchemy import func, select, true

from grid.org import service as org
from grid.org.models import OrgUnit
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
