"""The dispute cases of a registered resident: cases whose parties name the resident
(`{"resident_id": ...}` in a party, as the report form's registry picker and a visit that opens
a case put it).

Here rather than in `grid.registry`, which must not read cases: the resident page is composed
by the web layer from `grid.registry.pages.resident_page` and `resident_cases` below.
"""
from __future__ import annotations

import json

from sqlalchemy import select, text
from sqlalchemy.orm import Session

from grid.cases.models import DisputeCase
from grid.org import service as org

LIMIT = 100


def resident_cases(svc, staff_id: str | None, resident_id: int) -> list[DisputeCase]:
    """Dispute cases whose parties name this resident, in the person's jurisdiction (None = the
    system: every case), newest first, at most `LIMIT`. The caller checks that the person may see
    the resident (the registry's rule); outside the jurisdiction a case is simply not listed."""
    with svc.db.read() as s:
        return cases_of_resident(s, staff_id, resident_id)


def cases_of_resident(s: Session, staff_id: str | None, resident_id: int) -> list[DisputeCase]:
    """`resident_cases` in an open session. A party's resident id may be stored as a number or a
    string (a form posts strings), so both are matched."""
    if s.bind.dialect.name == "postgresql":
        cond = text("(dispute_case.parties @> CAST(:p_int AS jsonb) OR dispute_case.parties @> CAST(:p_str AS jsonb))"
                    ).bindparams(p_int=json.dumps([{"resident_id": resident_id}]),
                                 p_str=json.dumps([{"resident_id": str(resident_id)}]))
    else:
        cond = text("EXISTS (SELECT 1 FROM json_each(dispute_case.parties) AS p "
                    "WHERE json_extract(p.value, '$.resident_id') IN (:rid, :rid_s))").bindparams(
            rid=resident_id, rid_s=str(resident_id))
    q = select(DisputeCase).where(cond)
    if staff_id is not None:
        q = q.where(org.paths_condition(org.jurisdiction_paths(s, staff_id), DisputeCase.unit_path))
    return list(s.scalars(q.order_by(DisputeCase.reported_at.desc()).limit(LIMIT)))
