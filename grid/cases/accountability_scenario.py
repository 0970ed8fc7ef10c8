"""Scenario steps for the accountability register (mixed into `grid.cases.scenario.Runner`).

- `complete: {task: explain, entry: 1, as: ..., data: ...}`: a task of the case's first
  accountability entry's process (instead of the case's own process);
- `expect_entries: {case, count, entries: [{entry, level, unit, state, outcome, staff, reviewer,
  explanation, explanation_missed, late, tasks}]}`: the register's entries of a case, in order;
- `expect_supervision: {case, states: [open|urged|ended, ...], responded: [bool, ...]}`: its 督办 entries;
- `expect_indicators: {unit, from, to, values: {indicator: value}}`: indicator values from the
  rollup for a unit's subtree over [from, to] (Beijing days).
"""
from __future__ import annotations

from datetime import date

from sqlalchemy import select

from engine.models import WorkItem
from grid.cases import indicators
from grid.cases.accountability_models import AccountabilityEntry, SupervisionEntry
from grid.org.models import OrgUnit, Staff

ENTRY_KEYS = {"entry", "level", "unit", "state", "outcome", "staff", "reviewer", "explanation",
              "explanation_missed", "late", "tasks", "note"}


class AccountabilitySteps:
    """Runner steps over the registers; `self` is a `grid.cases.scenario.Runner`."""

    def _entries(self, case_name: str | None) -> list[AccountabilityEntry]:
        c = self.case(case_name)
        with self.svc.db.read() as s:
            return list(s.scalars(select(AccountabilityEntry).where(AccountabilityEntry.case_id == c.id)
                                  .order_by(AccountabilityEntry.id)))

    def _entry_items(self, case_name: str | None, n: int) -> list[WorkItem]:
        from grid.cases.scenario import ScenarioFailed

        entries = self._entries(case_name)
        if not 1 <= int(n) <= len(entries):
            raise ScenarioFailed(f"the case has {len(entries)} accountability entries, not an entry {n}")
        with self.svc.db.read() as s:
            return list(s.scalars(select(WorkItem).where(WorkItem.instance_id == entries[int(n) - 1].instance_id,
                                                         WorkItem.state == "open").order_by(WorkItem.id)))

    def do_expect_entries(self, arg: dict) -> None:
        from grid.cases.scenario import ScenarioFailed

        entries = self._entries(arg.get("case"))
        problems: list[str] = []
        if "count" in arg and len(entries) != arg["count"]:
            problems.append(f"{len(entries)} accountability entries, expected {arg['count']}")
        for want in arg.get("entries") or []:
            unknown = set(want) - ENTRY_KEYS
            if unknown:
                raise ScenarioFailed(f"unknown entry expectation(s) {sorted(unknown)}; known: {sorted(ENTRY_KEYS)}")
            n = int(want.get("entry", 1))
            if n > len(entries):
                problems.append(f"no entry {n}")
                continue
            e = entries[n - 1]
            with self.svc.db.read() as s:
                names = dict(s.execute(select(OrgUnit.code, OrgUnit.name)
                                       .where(OrgUnit.code.in_([e.unit_code, e.reviewer_unit]))).all())
                users = dict(s.execute(select(Staff.id, Staff.username)
                                       .where(Staff.id.in_(list(e.staff_ids or [])))).all())
            got = {"level": e.level, "state": e.state, "outcome": e.outcome, "note": e.note,
                   "explanation_missed": e.explanation_missed}
            for key in ("level", "state", "outcome", "explanation_missed", "note"):
                if key in want and got[key] != want[key]:
                    problems.append(f"entry {n}: {key} is {got[key]!r}, expected {want[key]!r}")
            for key, code in (("unit", e.unit_code), ("reviewer", e.reviewer_unit)):
                if key in want and want[key] not in (code, names.get(code)):
                    problems.append(f"entry {n}: {key} is {names.get(code, code)!r}, expected {want[key]!r}")
            if "staff" in want and sorted(users.get(i, i) for i in e.staff_ids or []) != sorted(want["staff"]):
                problems.append(f"entry {n}: held by {sorted(users.values())}, expected {sorted(want['staff'])}")
            if "explanation" in want and bool(e.explanation) != bool(want["explanation"]):
                problems.append(f"entry {n}: explanation is {e.explanation!r}")
            if "late" in want and (e.due_at is not None and e.late_minutes >= 0) != bool(want["late"]):
                problems.append(f"entry {n}: due {e.due_at}, {e.late_minutes} working minutes late")
            if "tasks" in want:
                items = self._entry_items(arg.get("case"), n)
                got_tasks = sorted(w.task_spec for w in items)
                names_ = sorted(t["task"] if isinstance(t, dict) else t for t in want["tasks"] or [])
                if got_tasks != names_:
                    problems.append(f"entry {n}: open tasks are {got_tasks}, expected {names_}")
                for t in want["tasks"] or []:
                    if isinstance(t, dict) and not any(self._matches(w, t) for w in items if w.task_spec == t["task"]):
                        problems.append(f"entry {n}: task {t['task']!r} is assigned to "
                                        + ", ".join(self._who(w) for w in items if w.task_spec == t["task"]))
        if problems:
            raise ScenarioFailed("; ".join(problems))

    def do_expect_supervision(self, arg: dict) -> None:
        from grid.cases.scenario import ScenarioFailed

        c = self.case(arg.get("case"))
        with self.svc.db.read() as s:
            rows = list(s.scalars(select(SupervisionEntry).where(SupervisionEntry.case_id == c.id)
                                  .order_by(SupervisionEntry.id)))
        problems = []
        if "states" in arg and [r.state for r in rows] != list(arg["states"]):
            problems.append(f"supervision states are {[r.state for r in rows]}, expected {arg['states']}")
        if "responded" in arg and [r.response_minutes is not None for r in rows] != list(arg["responded"]):
            problems.append(f"responses: {[r.response_minutes for r in rows]} working minutes")
        if problems:
            raise ScenarioFailed("; ".join(problems))

    def do_expect_indicators(self, arg: dict) -> None:
        from grid.cases.scenario import ScenarioFailed

        code = self.unit_code(arg["unit"])
        start, end = date.fromisoformat(str(arg["from"])), date.fromisoformat(str(arg["to"]))
        with self.svc.db.read() as s:
            values = indicators.evaluate(s, s.get(OrgUnit, code).path, start, end)
        problems = [f"{k} is {values.get(k)!r}, expected {v!r}" for k, v in (arg.get("values") or {}).items()
                    if values.get(k) != v]
        if problems:
            raise ScenarioFailed("; ".join(problems))
