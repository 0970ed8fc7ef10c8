"""The dispute cases of a registered resident: cases whose parties name the resident
(`{"resident_id": ...}` in a party, as the report form's registry picker and a visit that opens
a case put it).

The link is the `case_party` table, written at report time (`link`), so the resident page reads
a primary-key range instead of scanning every case's parties JSON.

Here rather than in `grid.registry`, which must not read cases: the resident page is composed
by the web layer from `grid.registry.pages.resident_page` and `resident_cases` below.
"""
from __future__ import annotations

from sqlalchemy import insert, select
from sqlalchemy.orm import Session

from grid.cases.models import CaseParty, DisputeCase
from grid.org import service as org

LIMIT = 100


def resident_ids(party_list) -> set[int]:
    """The registered residents a case's parties name. A party's resident id may be stored as a
    number or a string (a form posts strings); anything that is not a whole number is no link."""
    out: set[int] = set()
    for p in party_list or []:
        rid = p.get("resident_id") if isinstance(p, dict) else None
        if isinstance(rid, bool):
            continue
        if isinstance(rid, int):
            out.add(rid)
        elif isinstance(rid, str) and rid.strip().isdigit():
            out.add(int(rid.strip()))
    return out


def link(s: Session, case_id: int, party_list) -> None:
    """Write the case's resident links (at report time, in the report's transaction)."""
    rows = [{"resident_id": r, "case_id": case_id} for r in sorted(resident_ids(party_list))]
    if rows:
        s.execute(insert(CaseParty), rows)


def resident_cases(svc, staff_id: str | None, resident_id: int) -> list[DisputeCase]:
    """Dispute cases whose parties name this resident, in the person's jurisdiction (None = the
    system: every case), newest first, at most `LIMIT`. The caller checks that the person may see
    the resident (the registry's rule); outside the jurisdiction a case is simply not listed."""
    with svc.db.read() as s:
        return cases_of_resident(s, staff_id, resident_id)


def cases_of_resident(s: Session, staff_id: str | None, resident_id: int) -> list[DisputeCase]:
    """`resident_cases` in an open session: the `case_party` range of the resident, joined to
    its cases."""
    q = (select(DisputeCase).join(CaseParty, CaseParty.case_id == DisputeCase.id)
         .where(CaseParty.resident_id == int(resident_id)))
    if staff_id is not None:
        q = q.where(org.paths_condition(org.jurisdiction_paths(s, staff_id), DisputeCase.unit_path))
    return list(s.scalars(q.order_by(DisputeCase.reported_at.desc(), DisputeCase.id.desc()).limit(LIMIT)))
