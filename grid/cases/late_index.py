"""The late list's own index (`case_late`), kept in step with the open work of each case.

(Named late_index, not late: `grid.cases.late` is the late page's module.)

Why a projection and not a condition on `work_item`: "state = open AND (warn_at <= now OR
due_at <= now) under a path prefix" has no index that serves it; the scan grew with every
closed work item (the archive) and every open case in the subtree. `case_late` holds only open
work items of open cases that can become late, once per ancestor scope of the case's grid, so a
unit's late list is an equality on `scope` read in due order, stopping after one page.
"""
from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import delete, insert, select
from sqlalchemy.orm import Session

from engine.models import WorkItem
from grid.cases.models import CaseLate, DisputeCase

NO_DUE = datetime(9999, 12, 31, tzinfo=UTC)  # sorts items without a due time last, on both databases


def scopes(path: str) -> list[str]:
    """Every ancestor path of a unit path, itself included: 'a/b/' -> ['a/', 'a/b/']."""
    parts = [p for p in path.split("/") if p]
    return ["/".join(parts[: i + 1]) + "/" for i in range(len(parts))]


def rows_for(case_id: int, path: str, items) -> list[dict]:
    """The `case_late` rows of a case's open work items, given as (id, warn_at, due_at). An item
    with neither time gets rows too (late_at NULL): a later change of its times (the triggers
    below) then only updates them."""
    out = []
    for wid, warn_at, due_at in items:
        marks = [t for t in (warn_at, due_at) if t is not None]
        for sc in scopes(path):
            out.append({"work_item_id": wid, "scope": sc, "case_id": case_id, "late_at": min(marks) if marks else None,
                        "due_key": due_at or NO_DUE})
    return out


def sync(s: Session, c: DisputeCase, instance_id: int | None) -> None:
    """Rewrite the case's rows from its open work items (run in the step's transaction, after
    the engine wrote the work items). A case that is not open has none."""
    s.execute(delete(CaseLate).where(CaseLate.case_id == c.id))
    if c.status != "open" or instance_id is None:
        return
    items = s.execute(select(WorkItem.id, WorkItem.warn_at, WorkItem.due_at)
                      .where(WorkItem.instance_id == instance_id, WorkItem.state == "open")).all()
    rows = rows_for(c.id, c.unit_path, items)
    if rows:
        s.execute(insert(CaseLate), rows)


def rebuild(s: Session) -> int:
    """Refill `case_late` from every open case (the migration and `rebuild --check` style repairs)."""
    s.execute(delete(CaseLate))
    n = 0
    q = (select(DisputeCase.id, DisputeCase.unit_path, WorkItem.id, WorkItem.warn_at, WorkItem.due_at)
         .join(WorkItem, WorkItem.instance_id == DisputeCase.instance_id)
         .where(DisputeCase.status == "open", WorkItem.state == "open"))
    batch: list[dict] = []
    for cid, path, wid, warn_at, due_at in s.execute(q):
        batch.extend(rows_for(cid, path, [(wid, warn_at, due_at)]))
        if len(batch) >= 5000:
            s.execute(insert(CaseLate), batch)
            n += len(batch)
            batch = []
    if batch:
        s.execute(insert(CaseLate), batch)
        n += len(batch)
    return n


# A work item's times can change outside a step (an engine migration rewrites them before its
# listener runs; tests and repairs update them directly): a trigger carries the change into
# `case_late` in the same statement's transaction. Membership (open item of an open case) only
# changes in steps, which `sync` handles.
_SQLITE_NO_DUE = "'9999-12-31 00:00:00.000000'"  # NO_DUE as SQLAlchemy stores it in SQLite
SQLITE_TRIGGER = f"""
CREATE TRIGGER IF NOT EXISTS trg_work_item_late_times AFTER UPDATE OF warn_at, due_at ON work_item
BEGIN
  UPDATE case_late SET
    late_at = CASE WHEN NEW.warn_at IS NULL THEN NEW.due_at WHEN NEW.due_at IS NULL THEN NEW.warn_at
                   WHEN NEW.warn_at < NEW.due_at THEN NEW.warn_at ELSE NEW.due_at END,
    due_key = COALESCE(NEW.due_at, {_SQLITE_NO_DUE})
  WHERE work_item_id = NEW.id;
END"""
PG_FUNCTION = """
CREATE OR REPLACE FUNCTION work_item_late_times() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  UPDATE case_late SET late_at = LEAST(NEW.warn_at, NEW.due_at),
                       due_key = COALESCE(NEW.due_at, TIMESTAMPTZ '9999-12-31 00:00:00+00')
  WHERE work_item_id = NEW.id;
  RETURN NULL;
END $$"""
PG_TRIGGER = """
CREATE TRIGGER trg_work_item_late_times AFTER UPDATE OF warn_at, due_at ON work_item
FOR EACH ROW WHEN (OLD.warn_at IS DISTINCT FROM NEW.warn_at OR OLD.due_at IS DISTINCT FROM NEW.due_at)
EXECUTE FUNCTION work_item_late_times()"""
DROP_SQLITE = "DROP TRIGGER IF EXISTS trg_work_item_late_times"
DROP_PG = ["DROP TRIGGER IF EXISTS trg_work_item_late_times ON work_item",
           "DROP FUNCTION IF EXISTS work_item_late_times()"]


def trigger_ddl(dialect: str) -> list[str]:
    """The statements that create the trigger on this database."""
    return [SQLITE_TRIGGER] if dialect == "sqlite" else [PG_FUNCTION, PG_TRIGGER]
