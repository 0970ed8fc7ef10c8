"""Exporting the registry in the import format (`grid.registry.reader.COLUMNS`), unmasked: only
for the people who may change these grids, and every export recorded (who exported what, when)
as a `registry_import` row with status 'exporting' or 'exported'.
"""
from __future__ import annotations

import csv
import io
import os
from collections.abc import Iterator
from typing import IO

from sqlalchemy import select

from engine import clock
from grid.errors import Forbidden
from grid.exports import escape_formula
from grid.registry import rules
from grid.registry.models import RELATIONS, SEXES, STATUSES, Building, Household, ImportBatch, Resident
from grid.registry.reader import COLUMNS, Progress


def export_rows(svc, staff_id: str | None = None, grid_code: str | None = None) -> Iterator[list]:
    """The registry as rows in the import format (header first), unmasked: only for people who may
    change these grids (or the system)."""
    with svc.db.read() as s:
        q = (select(Building.grid_code, Building.address, Building.lat, Building.lng, Household.door_no,
                    Resident.name, Resident.id_number, Resident.phone, Resident.birth_date, Resident.sex,
                    Resident.relation, Resident.status)
             .select_from(Building)
             .outerjoin(Household, Household.building_id == Building.id)
             .outerjoin(Resident, Resident.household_id == Household.id))
        if grid_code:
            if not rules.may_edit(s, staff_id, grid_code):
                raise Forbidden("only the grid worker or grid head may export this grid")
            q = q.where(Building.grid_code == grid_code)
        elif staff_id is not None:
            q = q.where(Building.grid_code.in_(sorted(rules.editable_grids(s, staff_id) or [])))
        q = q.order_by(Building.grid_code, Building.address, Household.door_no, Resident.id)
        yield [label for _k, label in COLUMNS]
        for row in s.execute(q.execution_options(yield_per=5000)):
            grid, address, lat, lng, door, name, idn, phone, born, sex, rel, status = row
            yield [escape_formula(v) for v in (
                grid, address, "" if lat is None else lat, "" if lng is None else lng, door or "", name or "",
                idn or "", phone or "", born.isoformat() if born else "", SEXES.get(sex, sex or ""),
                RELATIONS.get(rel, rel or ""), STATUSES.get(status, status or ""))]


def export_file(svc, out: str | os.PathLike | IO, fmt: str = "csv", *, staff_id: str | None = None,
                grid_code: str | None = None, actor: str | None = None,
                progress: Progress | None = None) -> int:
    """Write the export to a path or a binary stream; returns the number of data rows. Recorded as a
    registry_import row with status 'exported' (who exported what, when)."""
    t0 = clock.now()
    rows = export_rows(svc, staff_id, grid_code)
    n = 0
    own = not hasattr(out, "write")
    stream = open(out, "wb") if own else out  # noqa: SIM115
    try:
        if fmt == "csv":
            text = io.TextIOWrapper(stream, encoding="utf-8-sig", newline="", write_through=True)
            writer = csv.writer(text)
            for row in rows:
                writer.writerow(row)
                n += 1
                if progress and n % 10000 == 0:
                    progress(n, 0, "exporting")
            text.flush()
            text.detach()
        elif fmt == "xlsx":
            from openpyxl import Workbook

            wb = Workbook(write_only=True)
            ws = wb.create_sheet("registry")
            for row in rows:
                ws.append(row)
                n += 1
            wb.save(stream)
        else:
            raise ValueError(f"unknown format {fmt!r}")
    finally:
        if own:
            stream.close()
    n = max(n - 1, 0)
    with svc.db.write() as s:
        s.add(ImportBatch(filename=f"export{'-' + grid_code if grid_code else ''}.{fmt}", sha256="-", format=fmt,
                          actor=actor or staff_id or "cli", grid_code=grid_code, started_at=t0,
                          finished_at=clock.now(), status="exported", rows=n, counts={"exported": n}, errors=[]))
    if progress:
        progress(n, n, "done")
    return n


def audit_export(svc, staff_id: str, grid_code: str | None) -> int:
    """Record an (unmasked) export before its first byte leaves; returns the record id."""
    with svc.db.write() as s:
        b = ImportBatch(filename=f"export{'-' + grid_code if grid_code else ''}.csv", sha256="-", format="csv",
                        actor=staff_id, grid_code=grid_code, started_at=clock.now(), finished_at=None,
                        status="exporting", rows=0, counts={}, errors=[])
        s.add(b)
        s.flush()
        return b.id


def audit_export_done(svc, batch_id: int, rows: int) -> None:
    """Mark the export record of `audit_export` finished, with the number of rows that left."""
    with svc.db.write() as s:
        b = s.get(ImportBatch, batch_id)
        b.status, b.finished_at, b.rows, b.counts = "exported", clock.now(), rows, {"exported": rows}
