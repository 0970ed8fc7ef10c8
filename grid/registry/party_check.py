"""The registry's side of the report form's party check: does a resident id name a registered
resident the person may see?

Why a hook: grid.cases may not import grid.registry (tests/test_layers.py), so the composition
root (grid.services) sets `grid.cases.service.party_checker` to `unknown_residents` below. The
rule is the registry's own (`rules.check_see`): the resident's grid lies in the person's
jurisdiction; `None` (the system) sees every resident. Moved-out and deceased residents still
exist (a dispute may name one), so status does not matter.
"""
from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from grid.org import service as org
from grid.registry.models import Resident


def unknown_residents(s: Session, staff_id: str | None, resident_ids: set[int]) -> set[int]:
    """The ids among `resident_ids` that name no resident in the person's jurisdiction (one
    query by primary key; missing and outside look the same)."""
    ids = {int(i) for i in resident_ids}
    storable = sorted(i for i in ids if 0 < i < 2**31)  # beyond the column's range: no resident
    if not storable:
        return ids
    q = select(Resident.id).where(Resident.id.in_(storable))
    if staff_id is not None:
        q = q.where(org.jurisdiction_filter(s, staff_id, Resident.grid_code))
    return ids - set(s.scalars(q))


def party_exists(svc, staff_id: str | None, resident_id: int) -> bool:
    """Whether the id names a resident the person may pick as a case party."""
    with svc.db.read() as s:
        return not unknown_residents(s, staff_id, {int(resident_id)})
