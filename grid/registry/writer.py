"""Importing a registry file: two passes, and the bulk writer of the second.

Natural keys make a re-import idempotent: a building is its address, a household its building
and door number, a resident the ID number. Unchanged rows do nothing; a changed resident is
updated and the change recorded as a `ResidentEvent` (transfer, death, move out/in or update).

Two passes: the first validates every row (`grid.registry.reader`: formats, ID check digits),
duplicates in the file, addresses against the database and the importer's rights; the second
writes everything in ONE transaction and checks what only the database can tell (a second
household head, a person registered in a grid the importer may not change: `rules.ID_TAKEN`, and
a dry run answers for such a person as for a new one, so the check is no oracle). Any error anywhere
rolls everything back: the result lists each bad row with its line, column and reason, and
nothing is imported.
"""
from __future__ import annotations

import marshal
import os
import tempfile
import time
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

from sqlalchemy import String, bindparam, func, select, text, update
from sqlalchemy.orm import Session

from engine import clock
from grid import crypto
from grid.errors import Forbidden
from grid.org.models import OrgUnit
from grid.registry import reader, rules, visits
from grid.registry.models import (
    ID_CONTEXT,
    PHONE_CONTEXT,
    Building,
    Household,
    ImportBatch,
    Resident,
    ResidentEvent,
    person_index,
)
from grid.registry.reader import LABELS, Progress, RowError

CHUNK = 2000
SQLITE_CACHE_KIB = 128 * 1024  # the page cache of the importing connection (SQLite's default is 2 MB)
MAX_ERRORS = 1000


@dataclass
class ImportResult:
    ok: bool
    rows: int = 0
    batch_id: int | None = None
    counts: dict[str, int] = field(default_factory=dict)
    errors: list[RowError] = field(default_factory=list)
    error_count: int = 0
    dry_run: bool = False
    seconds: float = 0.0

    def summary(self) -> str:
        if not self.ok:
            return f"rejected: {self.error_count} error(s) in {self.rows} row(s); nothing was imported"
        parts = ", ".join(f"{k}={v}" for k, v in self.counts.items())
        return f"{'checked' if self.dry_run else 'imported'} {self.rows} row(s): {parts}"


class _Reject(Exception):
    pass


# ---- import -------------------------------------------------------------------------------------
def import_file(svc, path: str | os.PathLike, *, staff_id: str | None = None, actor: str | None = None,
                grid_code: str | None = None, fmt: str | None = None, filename: str | None = None,
                progress: Progress | None = None, dry_run: bool = False, max_errors: int = MAX_ERRORS) -> ImportResult:
    """Import a CSV or XLSX file. `staff_id` None means the system (the CLI): any grid; otherwise
    only grids the person may change. `grid_code` restricts the file to one grid (rows may then
    leave the grid column empty). `dry_run` checks everything and imports nothing."""
    t0 = clock.now()
    started = time.perf_counter()
    path = Path(path)
    name = filename or path.name
    fmt = reader.file_format(name, fmt)
    actor = actor or staff_id or "cli"
    sha = reader.file_sha256(path)
    total = reader.count_rows(path, fmt)
    errors: list[RowError] = []
    err_count = 0

    def err(line: int, col: str, reason: str) -> None:
        nonlocal err_count
        err_count += 1
        if len(errors) < max_errors:
            errors.append(RowError(line, header_names.get(col) or LABELS.get(col, col), reason))

    with svc.db.read() as s:
        grids = dict(s.execute(select(OrgUnit.code, OrgUnit.level)).all())
        editable = rules.editable_grids(s, staff_id)
        if grid_code is not None:
            if grids.get(grid_code) != "grid":
                raise ValueError(f"no grid {grid_code}")
            if editable is not None and grid_code not in editable:
                raise Forbidden("you may not change this grid")
    validator = reader.Validator(grids, editable, grid_code)

    # ---- pass 1: every row on its own, plus duplicates and building consistency in the file
    header_names: dict[str, str] = {}
    cols: dict[str, int] = {}
    buildings: dict[str, list] = {}  # address -> [grid, lat, lng, first line]
    ids: dict[int, int] = {}  # id number -> line
    bad: set[int] = set()
    rows = 0
    spool = tempfile.TemporaryFile(prefix="gridflow-import-")  # the valid rows, for pass 2
    buf: list[tuple] = []
    rows_iter = reader.read_rows(path, fmt)
    header = next(rows_iter, None)
    if header is None:
        err(1, "file", "the file is empty")
    else:
        cols = reader.map_columns(header[1], header_names, err, need_grid=grid_code is None)
        validator.prepare(cols)
    if err_count:
        spool.close()
        return _rejected(svc, name, sha, fmt, actor, grid_code, t0, 0, errors, err_count, started)
    for line, cells in rows_iter:
        if not any(cells):
            continue
        rows += 1
        before = err_count
        rec = validator.row(cells, line, err)
        if rec is not None:
            grid, address, lat, lng, door, person = rec
            b = buildings.get(address)
            if b is None:
                buildings[address] = [grid, lat, lng, line]
            else:
                if b[0] != grid:
                    err(line, "grid_code", f"the same address is in grid {b[0]} on line {b[3]}")
                for i, col, v in ((1, "lat", lat), (2, "lng", lng)):
                    if v is not None:
                        if b[i] is None:
                            b[i] = v
                        elif abs(b[i] - v) > 1e-9:
                            err(line, col, f"differs from line {b[3]}")
            if person is not None:
                k = reader.id_key(person[1])
                first = ids.get(k)
                if first is not None:
                    err(line, "id_number", f"the same ID number is on line {first}")
                else:
                    ids[k] = line
                name_, idn, phone, born, sex, relation, status = person
                buf.append((line, grid, address, door, name_, idn, phone, born.toordinal() if born else None, sex,
                            relation, status))
            else:
                buf.append((line, grid, address, door, None))
            if len(buf) >= CHUNK:
                _spool_write(spool, buf)
                buf = []
        if err_count != before:
            bad.add(line)
        if progress and rows % 5000 == 0:
            progress(rows, total * 2, "validating")
    if buf:
        _spool_write(spool, buf)
    buf = []
    if rows == 0 and not err_count:
        err(2, "file", "no rows")
    with svc.db.read() as s:
        addresses = list(buildings)
        for i in range(0, len(addresses), 500):
            for address, grid in s.execute(select(Building.address, Building.grid_code)
                                           .where(Building.address.in_(addresses[i:i + 500]))):
                b = buildings[address]
                if grid != b[0]:
                    err(b[3], "grid_code", f"this address is registered in grid {grid}")
                    bad.add(b[3])
    if err_count > max_errors:
        spool.close()
        return _rejected(svc, name, sha, fmt, actor, grid_code, t0, rows, errors, err_count, started)

    try:
        return _write(svc, spool, bad, buildings, ids, counts_template(), dict(
            name=name, sha=sha, fmt=fmt, actor=actor, grid_code=grid_code, t0=t0, rows=rows, total=total,
            started=started, staff_id=staff_id, editable=editable, dry_run=dry_run), err, errors, lambda: err_count,
            progress)
    finally:
        spool.close()


def _spool_write(f, rows: list[tuple]) -> None:
    data = marshal.dumps(rows)
    f.write(len(data).to_bytes(8, "little"))
    f.write(data)


def _spool_read(f) -> list[tuple] | None:
    head = f.read(8)
    if len(head) < 8:
        return None
    return marshal.loads(f.read(int.from_bytes(head, "little")))


def counts_template() -> dict[str, int]:
    """The counters an import reports, all zero."""
    return {"buildings_created": 0, "buildings_updated": 0, "households_created": 0, "residents_created": 0,
            "residents_updated": 0, "residents_unchanged": 0}


def _write(svc, spool, bad, buildings, ids, counts, m, err, errors, err_count, progress) -> ImportResult:
    """Pass 2: write everything in one transaction; roll back on any error."""
    name, sha, fmt, actor, grid_code, t0 = m["name"], m["sha"], m["fmt"], m["actor"], m["grid_code"], m["t0"]
    rows, total, started, staff_id, editable, dry_run = (m["rows"], m["total"], m["started"], m["staff_id"],
                                                         m["editable"], m["dry_run"])
    after_commit: dict[str, set[int]] = {"moved": set(), "ended": set()}
    batch_id = None
    try:
        with svc.db.write() as s:
            batch = ImportBatch(filename=name[:300], sha256=sha, format=fmt, actor=actor, grid_code=grid_code,
                                started_at=t0, status="running", rows=rows, counts={}, errors=[])
            s.add(batch)
            s.flush()
            batch_id = batch.id
            w = _Writer(s, batch.id, actor, editable, counts, err, ids, after_commit, dry_run)
            if w.sqlite:  # random inserts into big indexes: give SQLite a page cache worth the name
                s.execute(text(f"PRAGMA cache_size = -{SQLITE_CACHE_KIB}"))
            w.buildings(buildings)
            buildings.clear()
            done = 0
            spool.seek(0)
            while (chunk := _spool_read(spool)) is not None:
                done += len(chunk)
                w.rows([r for r in chunk if r[0] not in bad] if bad else chunk)
                if progress:
                    progress(rows + done, total * 2, "writing")
            w.check_heads()
            if err_count() or dry_run:
                raise _Reject()
            batch.status, batch.finished_at, batch.counts = "done", clock.now(), dict(counts)
            if w.sqlite:
                s.execute(text("PRAGMA cache_size = -2000"))  # back to the default for this pooled connection
    except _Reject:
        if err_count():
            return _rejected(svc, name, sha, fmt, actor, grid_code, t0, rows, errors, err_count(), started)
        if progress:
            progress(total * 2, total * 2, "checked")
        return ImportResult(True, rows, None, counts, [], 0, dry_run=True, seconds=time.perf_counter() - started)
    if progress:
        progress(total * 2, total * 2, "done")
    if after_commit["moved"]:
        visits.reassign_visits(svc, sorted(after_commit["moved"]), staff_id)
    if after_commit["ended"]:
        visits.end_flags(svc, sorted(after_commit["ended"]), staff_id, "changed by import")
    return ImportResult(True, rows, batch_id, counts, [], 0, seconds=time.perf_counter() - started)


def _rejected(svc, name, sha, fmt, actor, grid_code, t0, rows, errors, err_count, started) -> ImportResult:
    with svc.db.write() as s:
        b = ImportBatch(filename=name[:300], sha256=sha, format=fmt, actor=actor, grid_code=grid_code, started_at=t0,
                        finished_at=clock.now(), status="rejected", rows=rows, counts={"errors": err_count},
                        errors=[{"line": e.line, "column": e.column, "reason": e.reason} for e in errors[:200]])
        s.add(b)
        s.flush()
        bid = b.id
    return ImportResult(False, rows, bid, {}, errors, err_count, seconds=time.perf_counter() - started)


# Core tables: executemany straight to the driver (the ORM's bulk insert splits the rows into runs
# by which values are None, which costs an order of magnitude here).
_BT, _HT, _RT = Building.__table__, Household.__table__, Resident.__table__


def resident_insert(s: Session, now: datetime) -> tuple[Any, Any, bool]:
    """(insert statement, value for created_at/updated_at, sqlite?) for bulk resident inserts. On SQLite
    the timestamps and birth dates are bound pre-formatted (as SQLAlchemy stores them there): the
    per-row type processing is a third of the cost of a bulk insert. Give birth dates as ISO strings
    there (`date.isoformat()`)."""
    if s.bind.dialect.name != "sqlite":
        return _RT.insert(), now, False
    stmt = _RT.insert().values(created_at=bindparam("created_at", type_=String()),
                               updated_at=bindparam("updated_at", type_=String()),
                               birth_date=bindparam("birth_date", type_=String()))
    return stmt, now.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S.%f"), True


class _Writer:
    """The write pass: buildings once, then households and residents chunk by chunk."""

    def __init__(self, s: Session, batch_id: int, actor: str, editable: set[str] | None, counts: dict, err,
                 ids: dict[int, int], after_commit: dict[str, set[int]], dry_run: bool = False):
        self.s, self.batch_id, self.actor, self.editable, self.dry_run = s, batch_id, actor, editable, dry_run
        self.counts, self.err, self.ids, self.after = counts, err, ids, after_commit
        self.bmap: dict[str, int] = {}
        self.hmap: dict[str, int] = {}
        self.touched_heads = False
        self.now = clock.now()
        self.res_insert, self.stamp, self.sqlite = resident_insert(s, self.now)

    def buildings(self, buildings: dict[str, list]) -> None:
        s = self.s
        addresses = list(buildings)
        existing: dict[str, tuple] = {}
        for i in range(0, len(addresses), 500):
            for bid, address, grid, lat, lng in s.execute(
                    select(Building.id, Building.address, Building.grid_code, Building.lat, Building.lng)
                    .where(Building.address.in_(addresses[i:i + 500]))):
                existing[address] = (bid, grid, lat, lng)
        new = []
        for address, (grid, lat, lng, _line) in buildings.items():
            e = existing.get(address)
            if e is None:
                new.append({"grid_code": grid, "address": address, "lat": lat, "lng": lng, "created_at": self.now})
                continue
            bid, _g, old_lat, old_lng = e
            self.bmap[address] = bid
            changes = {k: v for k, v, old in (("lat", lat, old_lat), ("lng", lng, old_lng))
                       if v is not None and v != old}
            if changes:
                s.execute(update(Building).where(Building.id == bid).values(**changes))
                self.counts["buildings_updated"] += 1
        for i in range(0, len(new), CHUNK):  # no RETURNING: SQLite would insert row by row
            part = new[i:i + CHUNK]
            s.execute(_BT.insert(), part)
            for j in range(0, len(part), 500):
                for bid, address in s.execute(select(_BT.c.id, _BT.c.address).where(
                        _BT.c.address.in_([r["address"] for r in part[j:j + 500]]))):
                    self.bmap[address] = bid
        self.counts["buildings_created"] += len(new)
        ids = sorted(self.bmap.values())
        for i in range(0, len(ids), 500):
            for hid, bid, door in s.execute(select(Household.id, Household.building_id, Household.door_no)
                                            .where(Household.building_id.in_(ids[i:i + 500]))):
                self.hmap[f"{bid}|{door}"] = hid

    def rows(self, chunk: list[tuple]) -> None:
        """Spooled rows: (line, grid, address, door, None) for a building or household alone, or
        (line, grid, address, door, name, id_number, phone, birth ordinal, sex, relation, status)."""
        s, bmap, hmap = self.s, self.bmap, self.hmap
        new_h: dict[str, dict] = {}
        for r in chunk:
            door = r[3]
            if not door:
                continue
            key = f"{bmap[r[2]]}|{door}"
            if key not in hmap and key not in new_h:
                new_h[key] = {"building_id": bmap[r[2]], "door_no": door, "created_at": self.now}
        if new_h:
            s.execute(_HT.insert(), list(new_h.values()))
            bids = sorted({h["building_id"] for h in new_h.values()})
            for j in range(0, len(bids), 500):
                for hid, bid, door in s.execute(select(_HT.c.id, _HT.c.building_id, _HT.c.door_no)
                                                .where(_HT.c.building_id.in_(bids[j:j + 500]))):
                    key = f"{bid}|{door}"
                    if key in new_h:
                        hmap[key] = hid
            self.counts["households_created"] += len(new_h)
        people = [r for r in chunk if r[4] is not None]
        if not people:
            return
        keys = crypto.keyring().all
        by_index = {crypto.blind(r[5], ID_CONTEXT, k): r[5] for r in people for k in keys}
        existing = {by_index[row.id_index]: row for row in s.execute(
            select(_RT.c.id, _RT.c.id_index, _RT.c.household_id, _RT.c.grid_code, _RT.c.name, _RT.c.phone,
                   _RT.c.birth_date, _RT.c.sex, _RT.c.relation, _RT.c.status)
            .where(_RT.c.id_index.in_(list(by_index))))}
        current = keys[0]
        inserts = []
        stamp, batch, sqlite = self.stamp, self.batch_id, self.sqlite
        fromord = date.fromordinal
        for line, grid, address, door, name, idn, phone, born, sex, relation, status in people:
            hid = hmap[f"{bmap[address]}|{door}"]
            born = fromord(born) if born is not None else None
            if relation == "head" and status == "living":
                self.touched_heads = True
            old = existing.get(idn)
            if old is None:
                inserts.append({"household_id": hid, "grid_code": grid, "name": name, "id_number": idn,
                                "id_index": crypto.blind(idn, ID_CONTEXT, current), "id_tail": idn[-4:],
                                "phone": phone, "phone_index": crypto.blind(phone, PHONE_CONTEXT, current)
                                if phone else None,
                                "birth_date": born.isoformat() if sqlite and born else born, "sex": sex,
                                "relation": relation, "status": status, "created_at": stamp, "updated_at": stamp,
                                "created_batch_id": batch})
                continue
            self.update(line, old, hid, grid, dict(name=name, phone=phone, birth_date=born, sex=sex,
                                                   relation=relation, status=status))
        if inserts:
            s.execute(self.res_insert, inserts)
            self.counts["residents_created"] += len(inserts)

    def update(self, line: int, old, hid: int, grid: str, new: dict) -> None:
        changes = {k: v for k, v in new.items() if getattr(old, k) != v}
        if hid != old.household_id:
            changes["household_id"] = hid
        if grid != old.grid_code:
            changes["grid_code"] = grid
        if not changes:
            self.counts["residents_unchanged"] += 1
            return
        if self.editable is not None and old.grid_code not in self.editable:
            # the move guard (`rules.check_move`): both ends. A dry run answers as for a new person
            # and the import itself with the one neutral refusal: no oracle of who is registered where
            if self.dry_run:
                self.counts["residents_created"] += 1
            else:
                self.err(line, "id_number", rules.ID_TAKEN)
            return
        before = {k: getattr(old, k) for k in changes}
        st_old, st_new = old.status, changes.get("status", old.status)
        if st_new == "deceased" and st_old != "deceased":
            kind = "death"
        elif st_new == "moved_out" and st_old == "living":
            kind = "move_out"
        elif st_new == "living" and st_old != "living":
            kind = "move_in"
        elif "household_id" in changes:
            kind = "transfer"
        else:
            kind = "update"
        if "relation" in changes or "household_id" in changes or "status" in changes:
            self.touched_heads = True
        index = person_index(phone=changes["phone"]) if "phone" in changes else {}
        self.s.execute(update(Resident).where(Resident.id == old.id).values(**changes, **index,
                                                                            updated_at=self.now))
        self.s.execute(ResidentEvent.__table__.insert(), [{
            "resident_id": old.id, "household_id": hid, "grid_code": grid, "kind": kind,
            "occurred_on": None, "at": self.now, "actor": self.actor, "before": rules.jsonable(before),
            "after": rules.jsonable({**changes, "import_batch": self.batch_id}),
            "note": f"import #{self.batch_id}, line {line}"}])
        self.counts["residents_updated"] += 1
        if kind in ("death", "move_out"):
            self.after["ended"].add(old.id)
        elif "grid_code" in changes and st_new == "living":
            visits.move_flags(self.s, old.id, grid)
            self.after["moved"].add(old.id)

    def check_heads(self) -> None:
        """Households with two living heads after this import (in the file, or file + database)."""
        if not self.touched_heads:
            return
        s = self.s
        dup = select(Resident.household_id).where(Resident.status == "living", Resident.relation == "head") \
            .group_by(Resident.household_id).having(func.count() > 1).subquery()
        rows = s.execute(select(Resident.household_id, Resident.id_number)
                         .where(Resident.household_id.in_(select(dup.c.household_id)), Resident.status == "living",
                                Resident.relation == "head").order_by(Resident.household_id, Resident.id)).all()
        seen: dict[int, list[str | None]] = {}
        for hid, idn in rows:
            seen.setdefault(hid, []).append(idn)
        for idns in seen.values():
            lines = sorted(self.ids[reader.id_key(i)] for i in idns if i and reader.id_key(i) in self.ids)
            for line in lines[1:] or lines:
                self.err(line, "relation", "the household already has a head" + (
                    f" (line {lines[0]})" if len(lines) > 1 else " in the registry"))


def batches(svc, limit: int = 20, actor: str | None = None) -> list[ImportBatch]:
    """The latest imports and exports (of `actor`, if given), newest first."""
    with svc.db.read() as s:
        q = select(ImportBatch).order_by(ImportBatch.id.desc()).limit(limit)
        if actor:
            q = q.where(ImportBatch.actor == actor)
        return list(s.scalars(q))
