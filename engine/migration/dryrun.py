"""The dry run: a verdict per selected instance (can it move, why not, what moving means),
stored as a run so the page can show it and an execution can start from it."""
from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING

from sqlalchemy import insert

from .. import clock
from ..errors import Conflict
from ..version_models import MigrationRecord, MigrationRun
from .labels import vlabel
from .plan import Plan, plan
from .selection import Selection, find_version, load_open, select_ids

if TYPE_CHECKING:
    from .migrator import Migrator


def dry_run(m: Migrator, sel: Selection, to_number: int, actor: str | None = None, chunk: int = 200,
            progress: Callable[[int, int, str], None] | None = None) -> tuple[int, list[Plan]]:
    """Say for every selected instance whether it can move and why not; store the verdicts as a run."""
    with m.db.read() as s:
        to = find_version(s, sel.process_id, to_number)
        if to.state == "retired":
            raise Conflict(f"{vlabel(to)} is retired")
        ids = select_ids(s, sel, to)
    plans: list[Plan] = []
    for i in range(0, len(ids), chunk):
        part = ids[i:i + chunk]
        with m.db.read() as s:
            insts, rows = load_open(s, part)
            for iid in part:
                if iid in insts:
                    plans.append(plan(m, s, insts[iid], to, rows[iid], roundtrip=True))
        if progress:
            progress(min(i + chunk, len(ids)), len(ids), "dry run")
    now = clock.now()
    with m.db.write() as s:
        run = MigrationRun(process_id=sel.process_id, to_version_id=to.id, dry_run=True, selection=sel.describe(),
                           status="done", actor=actor, created_at=now, finished_at=now, total=len(plans),
                           done=len(plans), migrated=0, blocked=sum(not p.ok for p in plans), skipped=0, failed=0)
        s.add(run)
        s.flush()
        if plans:
            s.execute(insert(MigrationRecord), [
                {"run_id": run.id, "instance_id": p.instance_id, "outcome": "can_move" if p.ok else "blocked",
                 "reasons": p.reasons, "notes": p.notes, "from_version_id": p.from_version_id,
                 "to_version_id": p.to_version_id, "at": now} for p in plans])
        run_id = run.id
    return run_id, plans


def verdict_lines(plans: Iterable[Plan]) -> list[str]:
    """A plain-text rendering of dry-run verdicts for the CLI: per instance, why not and notes."""
    out = []
    for p in plans:
        head = f"{p.business_key or p.instance_id}: {'can move' if p.ok else 'cannot move'}"
        if p.at:
            head += f" (at {', '.join(p.at)})"
        out.append(head)
        out += [f"    why not: {r}" for r in p.reasons]
        out += [f"    note: {n}" for n in p.notes]
    return out
