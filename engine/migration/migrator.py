"""The `Migrator` facade: one object over a Runtime that the web pages and the CLI hold.

It keeps what outlives one call (the spec-diff cache, the round-trip setting, the test seam)
and hands each verb to its module: `dryrun`, `execute`, `revert`, `runs`; the verdict itself
is `rule.check`, the in-memory move `plan.apply`.
"""
from __future__ import annotations

from collections.abc import Callable

from sqlalchemy.orm import Session

from ..db import Database
from ..models import Instance, ProcessVersion, WorkItem
from ..runtime import Runtime
from ..version_models import MigrationRecord, MigrationRun
from . import dryrun, execute, revert, rule, runs, selection
from . import plan as planning
from .diff import PairDiff
from .plan import Plan
from .selection import Selection


class Migrator:
    """Dry runs, executions and reverts of instance migrations, over one Runtime."""

    def __init__(self, runtime: Runtime, verify_roundtrip: bool = False):
        self.rt = runtime
        self.db: Database = runtime.db
        # The dry run always loads each migrated state back. Executions do it too with
        # verify_roundtrip=True; by default they rely on the structural checks of `apply` (every task
        # and sub-process resolves in the new version; the data is the data that loaded before).
        self.verify_roundtrip = verify_roundtrip
        self._pairs: dict[tuple[int, int], PairDiff] = {}
        self.before_save: Callable[[list[Plan]], None] | None = None  # test seam: runs between plan and save

    # -- shared by the verbs ---------------------------------------------------------------
    def pair(self, s: Session, from_vid: int, to_vid: int) -> PairDiff:
        """The spec diff between two versions, computed once per Migrator."""
        key = (from_vid, to_vid)
        p = self._pairs.get(key)
        if p is None:
            spec1, deps1, _f1, _p1 = self.rt.specs(s, from_vid)
            spec2, deps2, _f2, _p2 = self.rt.specs(s, to_vid)
            p = PairDiff(spec1, deps1, spec2, deps2)
            self._pairs[key] = p
        return p

    def version(self, s: Session, process_id: str, number: int) -> ProcessVersion:
        """Version `number` of a process, or NotFound."""
        return selection.find_version(s, process_id, number)

    def select_ids(self, s: Session, sel: Selection, to: ProcessVersion) -> list[int]:
        """Ids of the open instances `sel` names that are not on `to` yet."""
        return selection.select_ids(s, sel, to)

    def check(self, wf, pair: PairDiff, to_label: str) -> tuple[list[str], list[str]]:
        """Reasons the instance cannot move (empty: it can) and notes on what moving means."""
        return rule.check(wf, pair, to_label)

    def apply(self, wf, pair: PairDiff, to_label: str) -> list:
        """Move a loaded workflow onto the new specs in memory; returns the READY user tasks."""
        return planning.apply(wf, pair, to_label)

    def plan(self, s: Session, inst: Instance, to: ProcessVersion, rows: list[WorkItem],
             roundtrip: bool | None = None) -> Plan:
        """Decide for one instance, and if it can move, migrate it in memory (nothing is saved)."""
        return planning.plan(self, s, inst, to, rows, roundtrip)

    # -- dry run ---------------------------------------------------------------------------
    def dry_run(self, sel: Selection, to_number: int, actor: str | None = None, chunk: int = 200,
                progress: Callable[[int, int, str], None] | None = None) -> tuple[int, list[Plan]]:
        """Say for every selected instance whether it can move and why not; store the verdicts as a run."""
        return dryrun.dry_run(self, sel, to_number, actor, chunk, progress)

    # -- execute ---------------------------------------------------------------------------
    def start(self, sel: Selection, to_number: int, actor: str | None = None) -> int:
        """Create an execution run with one pending record per selected instance; `step` works it off."""
        return execute.start(self, sel, to_number, actor)

    def step(self, run_id: int, limit: int = 50) -> MigrationRun:
        """Migrate the next `limit` pending instances of a run; returns the run with its counters."""
        return execute.step(self, run_id, limit)

    def execute(self, sel: Selection, to_number: int, actor: str | None = None, batch: int = 50,
                progress: Callable[[int, int, str], None] | None = None) -> MigrationRun:
        """Start a run and work it off in batches (the CLI; the web page calls `step` per request)."""
        return execute.execute(self, sel, to_number, actor, batch, progress)

    def start_from_dry_run(self, dry_run_id: int, actor: str | None = None) -> int:
        """Execute what a dry run found movable (each instance is checked again when it is moved)."""
        return execute.start_from_dry_run(self, dry_run_id, actor)

    # -- revert ----------------------------------------------------------------------------
    def revert(self, instance_id: int, actor: str | None = None) -> MigrationRecord:
        """Put a migrated instance back exactly as it was before its last migration."""
        return revert.revert(self.rt, instance_id, actor)

    # -- runs and records ------------------------------------------------------------------
    def get_run(self, run_id: int) -> MigrationRun:
        """One run with its counters, or NotFound."""
        return runs.get_run(self.db, run_id)

    def records(self, run_id: int, outcome: str | None = None, limit: int | None = None,
                offset: int = 0) -> list[MigrationRecord]:
        """The records of a run, optionally of one outcome, paged."""
        return runs.records(self.db, run_id, outcome, limit, offset)

    def record_rows(self, run_id: int, outcome: str | None = None, limit: int | None = None,
                    offset: int = 0) -> list[dict]:
        """Records of a run with the instance's business key and version numbers, for pages."""
        return runs.record_rows(self.db, run_id, outcome, limit, offset)

    def version_label(self, version_id: int) -> str:
        """`process vN` for a version id."""
        return runs.version_label(self.db, version_id)

    def runs(self, process_id: str | None = None, limit: int = 50) -> list[MigrationRun]:
        """The latest runs, newest first."""
        return runs.runs(self.db, process_id, limit)
