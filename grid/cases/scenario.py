"""YAML scenarios: how process designers test a change before deploying it.

A scenario runs against a fresh database with the small demo city, the workflows under
test and a fake clock. Top-level keys: `name`, `start`, `steps` and optionally `calendar`
(`{day_ends: "17:30"}`: try a close of the working day on the configured calendar). Steps:
`report` (as a person), `complete` (a task, as a person, with data; `refused: <field>` expects
the completion to be refused with an error on that field, nothing done), `advance` (the clock,
then fire due timers), `expect` (where the case stands; `links: [{kind, direction, case}]` are
its links to other cases, from both ends). An unknown key fails the scenario. The registers'
steps (`complete` with `entry: N`, `expect_entries`, `expect_supervision`, `expect_indicators`)
are in `grid.cases.accountability_scenario`.
"""
from __future__ import annotations

import re
import tempfile
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import yaml
from sqlalchemy import select

from engine import clock
from engine.db import Database
from engine.deploy import Bundle, deploy
from engine.errors import EngineError, InvalidData
from engine.migrate import upgrade
from engine.models import WorkItem
from grid.cases import service as cases
from grid.cases.accountability_scenario import AccountabilitySteps
from grid.cases.models import CaseLink, CaseRecord, DisputeCase
from grid.config import Settings
from grid.org import demo
from grid.org import service as org
from grid.org.models import OrgUnit, Staff, StaffRole
from grid.services import Services


class ScenarioFailed(AssertionError):
    pass


@dataclass
class Result:
    name: str
    file: str
    passed: bool
    steps: int
    failures: list[str] = field(default_factory=list)

    def __str__(self) -> str:
        head = f"{'PASS' if self.passed else 'FAIL'} {self.name} ({self.file}, {self.steps} steps)"
        return "\n".join([head] + [f"    {f}" for f in self.failures])


def _duration(text: str) -> timedelta:
    return clock.duration(text)


class Runner(AccountabilitySteps):
    """Runs one scenario document against a Services object whose database has the demo city."""

    def __init__(self, svc: Services, doc: dict, file: str = "<scenario>"):
        self.svc, self.doc, self.file = svc, doc, file
        self.cases: dict[str, int] = {}
        self.fake: clock.FakeClock | None = None

    # -- references ----------------------------------------------------------------------------
    def staff_id(self, who: str) -> str:
        who = who.lstrip("@")
        with self.svc.db.read() as s:
            st = org.staff_by_username(s, who) or s.get(Staff, who)
            if st is None:
                raise ScenarioFailed(f"no person with username {who!r}")
            return st.id

    def unit_code(self, ref: str) -> str:
        with self.svc.db.read() as s:
            if s.get(OrgUnit, str(ref)):
                return str(ref)
            codes = list(s.scalars(select(OrgUnit.code).where(OrgUnit.name == ref)))
        if len(codes) != 1:
            raise ScenarioFailed(f"unit {ref!r} is {'unknown' if not codes else 'ambiguous'}")
        return codes[0]

    def case(self, name: str | None) -> DisputeCase:
        key = name or "case"
        if key not in self.cases:
            raise ScenarioFailed(f"no case named {key!r} has been reported yet")
        with self.svc.db.read() as s:
            return s.get(DisputeCase, self.cases[key])

    def resolve(self, value: Any) -> Any:
        if isinstance(value, dict):
            return {k: self.resolve(v) for k, v in value.items()}
        if isinstance(value, list):
            return [self.resolve(v) for v in value]
        if isinstance(value, str):
            if value.startswith("@"):
                return self.staff_id(value)
            m = re.fullmatch(r"\$case_no(?::(\w+))?", value)
            if m:
                return self.case(m.group(1)).case_no
        return value

    DOC_KEYS = {"name", "start", "steps", "calendar"}
    CALENDAR_KEYS = {"day_ends"}

    def _check_doc(self) -> str | None:
        unknown = set(self.doc) - self.DOC_KEYS
        cal = self.doc.get("calendar")
        if cal is not None and not isinstance(cal, dict):
            return f"calendar must be a mapping with {sorted(self.CALENDAR_KEYS)}"
        unknown |= {f"calendar.{k}" for k in set(cal or {}) - self.CALENDAR_KEYS}
        if unknown:
            return f"unknown scenario key(s) {sorted(unknown)}; known: {sorted(self.DOC_KEYS)}"
        return None

    # -- steps ---------------------------------------------------------------------------------
    def run(self) -> Result:
        problem = self._check_doc()
        if problem:
            return Result(self.doc.get("name", self.file), self.file, False, 0, [problem])
        start = self.doc.get("start")
        start_dt = datetime.fromisoformat(str(start)) if start else datetime(2026, 1, 5, 9, 0, tzinfo=clock.SHANGHAI)
        if start_dt.tzinfo is None:
            start_dt = start_dt.replace(tzinfo=clock.SHANGHAI)
        self.fake = clock.install_fake(start_dt)
        saved_calendar = self.svc.runtime.calendar
        saved_day_ends = self.svc.runtime.version_calendars.day_ends
        if self.doc.get("calendar"):
            self.svc.runtime.calendar = saved_calendar.with_day_ends(self.doc["calendar"].get("day_ends"))
            self.svc.runtime.version_calendars.day_ends = self.doc["calendar"].get("day_ends")  # the deployed ones too
        steps = self.doc.get("steps") or []
        result = Result(self.doc.get("name", self.file), self.file, True, len(steps))
        try:
            for i, step in enumerate(steps, 1):
                (kind, arg), = step.items()
                try:
                    getattr(self, f"do_{kind}")(arg or {})
                except ScenarioFailed as e:
                    result.passed = False
                    result.failures.append(f"step {i} ({kind}{_label(arg)}): {e}")
                    break
                except EngineError as e:
                    result.passed = False
                    extra = "; ".join(f"{x['path']}: {x['message']}" for x in getattr(e, "errors", []) or [])
                    result.failures.append(f"step {i} ({kind}{_label(arg)}): {type(e).__name__}: {e}"
                                           + (f" [{extra}]" if extra else ""))
                    break
                except AttributeError as e:
                    if f"do_{kind}" in str(e):
                        result.passed = False
                        result.failures.append(f"step {i}: unknown step kind {kind!r}")
                        break
                    raise
        finally:
            clock.set_source(None)
            self.svc.runtime.calendar = saved_calendar
            self.svc.runtime.version_calendars.day_ends = saved_day_ends
        return result

    def do_report(self, arg: dict) -> None:
        sid = self.staff_id(arg["as"])
        grid = self.unit_code(arg["grid"]) if arg.get("grid") else None
        c = cases.report(self.svc, sid, self.resolve(arg.get("data") or {}), grid_code=grid)
        self.cases[arg.get("case", "case")] = c.id

    def _open_items(self, c: DisputeCase) -> list[WorkItem]:
        with self.svc.db.read() as s:
            return list(s.scalars(select(WorkItem).where(WorkItem.instance_id == c.instance_id,
                                                         WorkItem.state == "open").order_by(WorkItem.id)))

    def do_complete(self, arg: dict) -> None:
        c = self.case(arg.get("case"))
        sid = self.staff_id(arg["as"])
        pool = self._entry_items(arg.get("case"), arg["entry"]) if "entry" in arg else self._open_items(c)
        items = [w for w in pool if w.task_spec == arg["task"]]
        if not items:
            raise ScenarioFailed(f"no open task {arg['task']!r}; open: {self._describe(c)}")
        with self.svc.db.read() as s:
            mine = [w for w in items if cases.can_act(s, sid, w)]
        if not mine:
            raise ScenarioFailed(f"{arg['as']} may not complete {arg['task']!r}; it is assigned to "
                                 + ", ".join(self._who(w) for w in items))
        if "refused" not in arg:
            cases.complete_task(self.svc, sid, mine[0].task_guid, self.resolve(arg.get("data") or {}))
            return
        try:
            cases.complete_task(self.svc, sid, mine[0].task_guid, self.resolve(arg.get("data") or {}))
        except InvalidData as e:
            paths = [x.get("path") for x in e.errors or []]
            if arg["refused"] not in paths:
                raise ScenarioFailed(f"refused, but on {paths}, expected {arg['refused']!r}: {e}") from e
            return
        raise ScenarioFailed(f"completed, expected a refusal on {arg['refused']!r}")

    def do_advance(self, arg) -> None:
        if isinstance(arg, dict) and "to" in arg:
            target = datetime.fromisoformat(str(arg["to"]))
            if target.tzinfo is None:
                target = target.replace(tzinfo=clock.SHANGHAI)
            if target < clock.now():
                raise ScenarioFailed(f"cannot move the clock back to {target}")
            self.fake.set(target)
        else:
            text = arg["by"] if isinstance(arg, dict) else str(arg)
            self.fake.advance(_duration(text))
        self.svc.runtime.sweep()

    def do_move_grid_worker(self, arg: dict) -> None:
        """The grid's worker leaves; a new person (created here) takes the grid over."""
        grid = self.unit_code(arg["grid"])
        with self.svc.db.write() as s:
            new = org.create_staff(s, arg["username"], arg.get("name", arg["username"]), password_hash="!")
            org.move_grid_worker(s, grid, new.id)

    def do_reassign(self, arg: dict) -> None:
        """改派: `as` moves the open `task` (the one `from` holds, if given) to `to` with a `reason`;
        `refused: true` expects a refusal, with nothing changed."""
        from grid.cases import reassign
        from grid.errors import Forbidden

        c = self.case(arg.get("case"))
        items = [w for w in self._open_items(c) if w.task_spec == arg["task"]]
        if arg.get("from"):
            items = [w for w in items if w.user_id == self.staff_id(arg["from"])]
        if not items:
            raise ScenarioFailed(f"no open task {arg['task']!r} to reassign; open: {self._describe(c)}")
        try:
            reassign.reassign(self.svc, self.staff_id(arg["as"]), c.id, items[0].task_guid,
                              self.staff_id(arg["to"]), arg.get("reason", ""))
        except (EngineError, Forbidden) as e:
            if arg.get("refused"):
                return
            raise ScenarioFailed(f"refused: {type(e).__name__}: {e}") from e
        if arg.get("refused"):
            raise ScenarioFailed("reassigned, expected a refusal")

    def do_urge(self, arg: dict) -> None:
        c = self.case(arg.get("case"))
        cases.urge(self.svc, self.staff_id(arg["as"]), c.id, arg.get("comment", ""))

    EXPECT_KEYS = {"case", "level", "unit", "archived", "status", "result", "disposition", "duplicate_of",
                   "resolved_level", "rework_count", "escalations", "records", "record_units", "tasks", "links"}
    TASK_KEYS = {"task", "role", "unit", "user", "title", "can", "cannot"}

    def do_expect(self, arg: dict) -> None:
        unknown = set(arg) - self.EXPECT_KEYS
        for t in arg.get("tasks") or []:
            if isinstance(t, dict):
                unknown |= {f"tasks.{k}" for k in set(t) - self.TASK_KEYS}
        if unknown:
            raise ScenarioFailed(f"unknown expectation(s) {sorted(unknown)}; known: {sorted(self.EXPECT_KEYS)}")
        c = self.case(arg.get("case"))
        problems: list[str] = []
        with self.svc.db.read() as s:
            unit_names = dict(s.execute(select(OrgUnit.code, OrgUnit.name)).all()) if arg.get("unit") else {}
            counts: dict[str, int] = {}
            for kind in s.scalars(select(CaseRecord.kind).where(CaseRecord.case_id == c.id)):
                counts[kind] = counts.get(kind, 0) + 1
        if "level" in arg and c.current_level != arg["level"]:
            problems.append(f"level is {c.current_level!r}, expected {arg['level']!r}")
        if "unit" in arg and arg["unit"] not in (c.current_unit, unit_names.get(c.current_unit)):
            problems.append(f"unit is {unit_names.get(c.current_unit, c.current_unit)!r}, expected {arg['unit']!r}")
        if "archived" in arg and (c.status == "archived") != bool(arg["archived"]):
            problems.append(f"status is {c.status!r}, expected {'archived' if arg['archived'] else 'not archived'}")
        for key in ("status", "result", "disposition", "duplicate_of", "resolved_level", "rework_count", "escalations"):
            if key in arg:
                want = self.resolve(arg[key])
                if getattr(c, key) != want:
                    problems.append(f"{key} is {getattr(c, key)!r}, expected {want!r}")
        for kind, want in (arg.get("records") or {}).items():
            if counts.get(kind, 0) != want:
                problems.append(f"{kind} records: {counts.get(kind, 0)}, expected {want}")
        for kind, unit_ref in (arg.get("record_units") or {}).items():
            code = self.unit_code(unit_ref)
            with self.svc.db.read() as s:
                units = list(s.scalars(select(CaseRecord.unit_code).where(CaseRecord.case_id == c.id,
                                                                         CaseRecord.kind == kind)))
            if code not in units:
                problems.append(f"no {kind} record against {unit_ref}; found units {units}")
        if "links" in arg:
            want_links = sorted((x["kind"], x["direction"], self.case(x["case"]).case_no) for x in arg["links"] or [])
            got_links = self._links(c)
            if got_links != want_links:
                problems.append(f"links are {got_links}, expected {want_links}")
        if "tasks" in arg:
            items = self._open_items(c)
            want = arg["tasks"] or []
            got = sorted(w.task_spec for w in items)
            want_names = sorted(t["task"] if isinstance(t, dict) else t for t in want)
            if got != want_names:
                problems.append(f"open tasks are {got}, expected {want_names}")
            else:
                for t in want:
                    if not isinstance(t, dict):
                        continue
                    cands = [w for w in items if w.task_spec == t["task"]]
                    if not any(self._matches(w, t) for w in cands):
                        problems.append(f"task {t['task']!r} is assigned to {', '.join(self._who(w) for w in cands)}, "
                                        f"expected {_label(t)}")
        if problems:
            raise ScenarioFailed("; ".join(problems))

    def _matches(self, w: WorkItem, t: dict) -> bool:
        if "role" in t and w.role != t["role"]:
            return False
        if "unit" in t and w.unit_id != self.unit_code(t["unit"]):
            return False
        if "user" in t and w.user_id != self.staff_id(t["user"]):
            return False
        if "can" in t:
            with self.svc.db.read() as s:
                if not cases.can_act(s, self.staff_id(t["can"]), w):
                    return False
        if "title" in t:
            with self.svc.db.read() as s:
                title = s.scalar(select(StaffRole.title).where(StaffRole.staff_id == w.user_id,
                                                               StaffRole.unit_code == w.unit_id))
            if title != t["title"]:
                return False
        if "cannot" in t:
            with self.svc.db.read() as s:
                if cases.can_act(s, self.staff_id(t["cannot"]), w):
                    return False
        return True

    def _links(self, c: DisputeCase) -> list[tuple[str, str, str]]:
        """(kind, direction, other case no) of the case's links, read from both ends."""
        with self.svc.db.read() as s:
            out = [(k, "to", no) for k, no in s.execute(
                select(CaseLink.kind, DisputeCase.case_no).join(DisputeCase, DisputeCase.id == CaseLink.to_case_id)
                .where(CaseLink.from_case_id == c.id))]
            out += [(k, "from", no) for k, no in s.execute(
                select(CaseLink.kind, DisputeCase.case_no).join(DisputeCase, DisputeCase.id == CaseLink.from_case_id)
                .where(CaseLink.to_case_id == c.id))]
        return sorted(out)

    def _who(self, w: WorkItem) -> str:
        with self.svc.db.read() as s:
            name = s.scalar(select(Staff.username).where(Staff.id == w.user_id)) if w.user_id else None
            unit = s.scalar(select(OrgUnit.name).where(OrgUnit.code == w.unit_id)) if w.unit_id else None
        return f"{w.task_spec}: role={w.role} unit={unit or w.unit_id}" + (f" user={name}" if name else "")

    def _describe(self, c: DisputeCase) -> str:
        return ", ".join(self._who(w) for w in self._open_items(c)) or "(none)"


def _label(arg: Any) -> str:
    if isinstance(arg, dict):
        bits = [f"{k}={v}" for k, v in arg.items() if k in ("task", "as", "role", "unit", "user", "title", "to", "by", "can", "cannot")]
        return " " + " ".join(bits) if bits else ""
    return f" {arg}"


def prepare(db: Database, workflows: Path, forms: Path) -> Services:
    """Migrate, deploy the workflows under test, and generate the small demo city."""
    upgrade(db)
    settings = Settings(database_url=db.url_with_password, workflows=Path(workflows), forms=Path(forms))
    svc = Services.build(settings, db=db)
    with db.write() as s:
        deploy(s, Bundle.from_dirs(workflows, forms), actor="scenario")
    demo.generate(db, size="small")
    demo.add_departments(db)  # 部门协同: the seed street's and county's departments
    return svc


def run_file(path: Path, db: Database | None = None, workflows: Path | None = None,
             forms: Path | None = None) -> Result:
    """Run one scenario file on `db` (default: a fresh temporary SQLite file)."""
    settings = Settings()
    workflows = workflows or settings.workflows
    forms = forms or settings.forms
    doc = yaml.safe_load(Path(path).read_text(encoding="utf-8"))
    tmp = None
    if db is None:
        tmp = tempfile.TemporaryDirectory()
        db = Database(f"sqlite:///{tmp.name}/scenario.sqlite")
    try:
        svc = prepare(db, workflows, forms)
        return Runner(svc, doc, str(path)).run()
    finally:
        if tmp is not None:
            db.dispose()
            tmp.cleanup()
