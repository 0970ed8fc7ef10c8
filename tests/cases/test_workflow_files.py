"""The designer files in workflows/ and forms/, run directly on SpiffWorkflow 3.2.0.

No Gridflow runtime is involved: a PythonScriptEngine whose environment compiles with
RestrictedPython (like the runtime's sandbox) and injects stub `workdays` / `emit` /
`now` helpers, a fake clock for the timers (the fakeclock trick from the shared notes),
and a JSON round trip through BpmnWorkflowSerializer after every step.
"""

from __future__ import annotations

import json
import re
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from types import SimpleNamespace
from zoneinfo import ZoneInfo

import pytest
import SpiffWorkflow.bpmn.specs.event_definitions.timer as spiff_timer
import yaml
from jsonschema import Draft202012Validator
from lxml import etree
from RestrictedPython import compile_restricted_eval, compile_restricted_exec, safe_builtins
from RestrictedPython.Eval import default_guarded_getitem, default_guarded_getiter
from RestrictedPython.Guards import full_write_guard, guarded_iter_unpack_sequence, safer_getattr
from SpiffWorkflow.bpmn import BpmnWorkflow
from SpiffWorkflow.bpmn.script_engine import PythonScriptEngine, TaskDataEnvironment
from SpiffWorkflow.bpmn.serializer import BpmnWorkflowSerializer
from SpiffWorkflow.spiff.parser.process import VALIDATOR, SpiffBpmnParser
from SpiffWorkflow.spiff.serializer.config import SPIFF_CONFIG
from SpiffWorkflow.util.task import TaskState

ROOT = Path(__file__).resolve().parents[2]
WORKFLOWS = ROOT / "workflows"
FORMS = ROOT / "forms"
BPMN_FILES = [WORKFLOWS / "dispute_case.bpmn", WORKFLOWS / "handle_level.bpmn"]
DMN_FILES = [WORKFLOWS / "time_limits.dmn", WORKFLOWS / "verify_limits.dmn", WORKFLOWS / "department_limits.dmn"]
SHANGHAI = ZoneInfo("Asia/Shanghai")
ROLES = {"grid_worker", "grid_head", "mediator", "dispatcher", "supervisor", "department_handler"}
LEVELS = ["village", "township", "county", "city"]
UNITS = ["V1", "T1", "C1", "S1"]
CATEGORIES = ["neighbour", "property", "municipal", "labour", "family", "land", "other"]
SERIALIZER = BpmnWorkflowSerializer(BpmnWorkflowSerializer.configure(SPIFF_CONFIG))
BPMN_NS = {
    "bpmn": "http://www.omg.org/spec/BPMN/20100524/MODEL",
    "spiffworkflow": "http://spiffworkflow.org/bpmn/schema/1.0/core",
}


def _parser() -> SpiffBpmnParser:
    parser = SpiffBpmnParser(validator=VALIDATOR)
    parser.add_bpmn_files([str(p) for p in BPMN_FILES])
    parser.add_dmn_files([str(p) for p in DMN_FILES])
    return parser


PARSER = _parser()
SPEC = PARSER.get_spec("dispute_case")
SUBPROCESS_SPECS = PARSER.get_subprocess_specs("dispute_case")


# ---------------------------------------------------------------------------------------
# Working-day calendar (a stub of the runtime's helper, reading the designer's file)


def _load_calendar() -> tuple[set[date], set[date]]:
    raw = yaml.safe_load((WORKFLOWS / "calendar.yaml").read_text(encoding="utf-8"))
    holidays: set[date] = set()
    workdays: set[date] = set()
    for spec in raw["years"].values():
        holidays |= set(spec.get("holidays") or [])
        workdays |= set(spec.get("workdays") or [])
    return holidays, workdays


HOLIDAYS, MAKEUP_WORKDAYS = _load_calendar()


def is_workday(d: date) -> bool:
    if d in MAKEUP_WORKDAYS:
        return True
    return d not in HOLIDAYS and d.weekday() < 5


def add_workdays(start: datetime, n: int) -> datetime:
    local = start.astimezone(SHANGHAI)
    d = local.date()
    for _ in range(int(n)):
        d += timedelta(days=1)
        while not is_workday(d):
            d += timedelta(days=1)
    return datetime.combine(d, local.time(), SHANGHAI)


def cst(*args) -> datetime:
    """A Beijing wall-clock time."""
    return datetime(*args, tzinfo=SHANGHAI)


# ---------------------------------------------------------------------------------------
# Restricted script environment, fake clock, one running case


class RestrictedEnvironment(TaskDataEnvironment):
    """Compiles with RestrictedPython, as the runtime's sandbox does: no underscore names."""

    def _globals(self, context, external_context):
        g = {
            "__builtins__": dict(
                safe_builtins,
                len=len,
                min=min,
                max=max,
                sum=sum,
                any=any,
                all=all,
                sorted=sorted,
                dict=dict,
                list=list,
                enumerate=enumerate,
                zip=zip,
            ),
            "_getattr_": safer_getattr,
            "_getitem_": default_guarded_getitem,
            "_getiter_": default_guarded_getiter,
            "_iter_unpack_sequence_": guarded_iter_unpack_sequence,
            "_write_": full_write_guard,
        }
        g.update(self.globals)
        g.update(external_context or {})
        g.update(context)
        return g

    def evaluate(self, expression, context, external_context=None):
        res = compile_restricted_eval(expression)
        assert not res.errors, res.errors
        return eval(res.code, self._globals(context, external_context))  # noqa: S307

    def execute(self, script, context, external_context=None):
        res = compile_restricted_exec(script)
        assert not res.errors, res.errors
        g = self._globals(context, external_context)
        helpers = set(self.globals) | set(external_context or {})
        exec(res.code, g)  # noqa: S102
        for k, v in g.items():
            if not k.startswith("_") and not callable(v) and k not in helpers:
                context[k] = v
        return True


class Clock:
    def __init__(self, start: datetime):
        self.now = start.astimezone(UTC)


@pytest.fixture
def clock(monkeypatch):
    c = Clock(cst(2020, 9, 1, 9, 0))

    class FakeDatetime(datetime):
        @classmethod
        def now(cls, tz=None):
            return c.now.astimezone(tz) if tz else c.now.replace(tzinfo=None)

    monkeypatch.setattr(spiff_timer, "datetime", FakeDatetime)
    return c


class Case:
    """A dispute case run with plain SpiffWorkflow; records what the scripts emit."""

    def __init__(self, clock: Clock, **overrides):
        self.clock = clock
        self.events: list[tuple[str, dict]] = []
        env = RestrictedEnvironment(
            {
                "workdays": lambda n: add_workdays(self.clock.now, n).isoformat(),
                "emit": lambda kind, **data: self.events.append((kind, data)),
                "now": lambda: self.clock.now.isoformat(),
            }
        )
        self.engine = PythonScriptEngine(environment=env)
        data = {
            "case_no": "XY-2020-0915",
            "category": "municipal",
            "description": "雨污分流改造拟在破旧路面上直接刷黑，居民担心雨水倒灌进楼道",
            "location": {"text": "檀溪社区南山家属院", "lat": 32.03, "lng": 112.14},
            "parties": [{"name": "南山家属院居民", "phone": "13800000000"}, {"name": "施工方"}],
            "photos": ["att-1"],
            "settled_on_spot": False,
            "reporter": "gw_jiang",
            "grid_unit": "G15",
            "levels": list(LEVELS),
            "level_units": list(UNITS),
            "level_idx": 0,
        }
        data.update(overrides)
        Draft202012Validator(load_form("report.json")).validate(
            {
                k: data[k]
                for k in (
                    "category",
                    "description",
                    "location",
                    "parties",
                    "photos",
                    "settled_on_spot",
                    "spot_result",
                )
                if k in data
            }
        )
        self.wf = BpmnWorkflow(SPEC, SUBPROCESS_SPECS, script_engine=self.engine)
        self.wf.get_next_task(spec_name="Start").set_data(**data)
        self.wf.do_engine_steps()
        self.roundtrip()

    def roundtrip(self) -> None:
        """Persist and restore, as the runtime does between requests."""
        wf = SERIALIZER.deserialize_json(SERIALIZER.serialize_json(self.wf))
        wf.script_engine = self.engine
        self.wf = wf

    def take_events(self) -> list[tuple[str, dict]]:
        events, self.events = self.events, []
        return events

    # -- user tasks
    def ready(self) -> list:
        return self.wf.get_tasks(state=TaskState.READY, manual=True)

    def ready_ids(self) -> list[str]:
        return sorted(t.task_spec.bpmn_id for t in self.ready())

    def assignment(self, task) -> dict:
        props = task.task_spec.extensions["properties"]
        if props.get("roleExpression"):  # `dispatch_role` (see workflows/README.md)
            role = self.engine.evaluate(task, props["roleExpression"])
        else:
            role = props["role"]
        assert role in ROLES
        out = {"role": role, "unit": self.engine.evaluate(task, props["unit"])}
        if props.get("user"):
            out["user"] = self.engine.evaluate(task, props["user"])
        return out

    def task(self, bpmn_id: str, user: str | None = None):
        found = [
            t
            for t in self.ready()
            if t.task_spec.bpmn_id == bpmn_id and (user is None or self.assignment(t).get("user") == user)
        ]
        assert len(found) == 1, f"{bpmn_id}/{user}: READY are {self.ready_ids()}"
        return found[0]

    def complete(self, bpmn_id: str, form: dict, user: str | None = None) -> None:
        task = self.task(bpmn_id, user)
        props = task.task_spec.extensions["properties"]
        Draft202012Validator(load_form(props["form"])).validate(form)
        if props.get("result"):
            task.data[props["result"]] = form
        else:
            task.data.update(form)
        task.run()
        self.wf.do_engine_steps()
        self.roundtrip()

    # -- timers
    def timers(self) -> dict[str, datetime]:
        return {
            e.name: datetime.fromisoformat(e.value)
            for e in self.wf.waiting_events()
            if e.event_type == "TimeDateEventDefinition"
        }

    def advance_to(self, when: datetime) -> None:
        """Move the clock just past `when` (a timer fires once its time has passed) and run."""
        self.clock.now = when.astimezone(UTC) + timedelta(seconds=1)
        self.wf.refresh_timers()
        self.wf.do_engine_steps()
        self.roundtrip()

    # -- shortcuts for whole steps
    def dispatch(self, *assignees: str) -> None:
        self.complete(
            "dispatch",
            {"action": "dispatch", "assignees": list(assignees), "dispatch_note": "请尽快到现场调解"},
        )

    def mediate(self, user: str, outcome: str) -> None:
        self.complete("mediate", {"outcome": outcome, "notes": "到现场协调", "photos": []}, user=user)

    def verify(self, satisfied: bool) -> None:
        form = {"satisfied": satisfied, "signature": "江冉冉", "photos": ["att-9"]}
        if not satisfied:
            form["notes"] = "路面仍未破除"
        self.complete("verify", form, user="gw_jiang")

    def fail_level(self, user: str = "m1") -> None:
        self.dispatch(user)
        self.mediate(user, "cannot_resolve")


def load_form(name: str) -> dict:
    return json.loads((FORMS / name).read_text(encoding="utf-8"))


def kinds(events) -> list[str]:
    return [k for k, _ in events]


def level_events(level: str, unit: str, assignees: list[str], outcome: str) -> list[tuple[str, dict]]:
    where = {"level": level, "unit": unit}
    return [("level_entered", where), ("dispatched", {**where, "assignees": assignees}), (outcome, where)]


def warned_events(level: str, unit: str, assignees: list[str]) -> list[tuple[str, dict]]:
    """What a level emits up to its warning: entered, dispatched, warned, supervision opened."""
    entered, dispatched, warning = level_events(level, unit, assignees, "warning")
    return [entered, dispatched, warning, ("supervision_opened", {"level": level, "unit": unit})]


# ---------------------------------------------------------------------------------------
# Paths through the process


def test_settled_on_the_spot(clock):
    case = Case(clock, settled_on_spot=True, spot_result="当场说明施工方案，双方认可")
    assert case.wf.is_completed()
    assert case.take_events() == [("archived", {"result": "settled_on_spot"})]


def test_village_resolves_and_reporter_is_satisfied(clock):
    case = Case(clock)
    assert case.ready_ids() == ["dispatch"]
    assert case.assignment(case.task("dispatch")) == {"role": "grid_head", "unit": "V1"}
    case.dispatch("m1", "m2")
    assert case.ready_ids() == ["mediate", "mediate"]
    assert case.assignment(case.task("mediate", "m1")) == {"role": "mediator", "unit": "V1", "user": "m1"}
    case.mediate("m1", "cannot_resolve")
    case.mediate("m2", "resolved")
    assert case.ready_ids() == ["verify"]
    assert case.assignment(case.task("verify")) == {"role": "grid_worker", "unit": "G15", "user": "gw_jiang"}
    # leaving the level cancels its timers; verification has a limit of its own (verify_limits.dmn)
    assert case.timers() == {"核查超期": add_workdays(clock.now, 3)}
    case.verify(True)
    assert case.wf.is_completed()
    assert case.take_events() == level_events("village", "V1", ["m1", "m2"], "resolved") + [
        ("verified", {"satisfied": True, "rework": 0}),
        ("archived", {"result": "satisfied"}),
    ]
    data = case.wf.data
    assert [m["outcome"] for m in data["mediations"]] == ["cannot_resolve", "resolved"]
    assert data["verification"]["signature"] == "江冉冉"
    assert data["photos"] == ["att-1"], "form results do not overwrite the report's data"


def test_seed_story_village_cannot_resolve_then_township_resolves(clock):
    """檀溪社区 could not settle the road-works dispute; 真武山街道 did (Sep-Oct 2020)."""
    clock.now = cst(2020, 9, 3, 10, 0).astimezone(UTC)
    case = Case(clock)
    case.dispatch("m_zongzhi", "m_chengguan")
    case.mediate("m_zongzhi", "cannot_resolve")
    case.mediate("m_chengguan", "cannot_resolve")
    assert case.ready_ids() == ["dispatch"]
    assert case.assignment(case.task("dispatch")) == {"role": "dispatcher", "unit": "T1"}
    case.dispatch("t_chengguanban")
    case.mediate("t_chengguanban", "resolved")
    case.verify(True)
    assert case.wf.is_completed()
    assert case.take_events() == (
        level_events("village", "V1", ["m_zongzhi", "m_chengguan"], "cannot_resolve")
        + [
            (
                "escalated",
                {
                    "from_level": "village",
                    "from_unit": "V1",
                    "to_level": "township",
                    "to_unit": "T1",
                    "reason": "cannot_resolve",
                },
            )
        ]
        + level_events("township", "T1", ["t_chengguanban"], "resolved")
        + [("verified", {"satisfied": True, "rework": 0}), ("archived", {"result": "satisfied"})]
    )
    assert case.wf.data["level_idx"] == 1 and case.wf.data["current_unit"] == "T1"


def test_not_satisfied_reworks_at_the_same_level_with_a_fresh_time_limit(clock):
    case = Case(clock)
    first = case.timers()
    case.dispatch("m1")
    case.mediate("m1", "resolved")
    clock.now = cst(2020, 9, 7, 9, 0).astimezone(UTC)  # the reporter checks on site days later
    case.verify(False)
    assert case.ready_ids() == ["dispatch"]
    assert case.assignment(case.task("dispatch")) == {"role": "grid_head", "unit": "V1"}
    second = case.timers()
    assert second["预警"] == add_workdays(clock.now, 3) and second["超期"] == add_workdays(clock.now, 5)
    assert second["超期"] > first["超期"]
    case.dispatch("m1")  # `mediations` from the first round must not break the second one
    case.mediate("m1", "resolved")
    case.verify(True)
    assert case.wf.is_completed()
    events = case.take_events()
    assert events == (
        level_events("village", "V1", ["m1"], "resolved")
        + [
            ("rework", {"level": "village", "unit": "V1", "count": 1}),
            ("verified", {"satisfied": False, "rework": 1}),
        ]
        + level_events("village", "V1", ["m1"], "resolved")
        + [("verified", {"satisfied": True, "rework": 1}), ("archived", {"result": "satisfied"})]
    )
    assert len(case.wf.data["mediations"]) == 1


def test_every_level_fails_then_final_disposition(clock):
    case = Case(clock)
    for i, (level, unit) in enumerate(zip(LEVELS, UNITS, strict=True)):
        expected_role = "grid_head" if level == "village" else "dispatcher"
        assert case.assignment(case.task("dispatch")) == {"role": expected_role, "unit": unit}
        case.fail_level(f"m{i}")
    assert case.ready_ids() == ["final_disposition"]
    assert case.assignment(case.task("final_disposition")) == {"role": "dispatcher", "unit": "S1"}
    case.complete("final_disposition", {"disposition": "court", "notes": "引导当事人依法起诉"})
    assert case.wf.is_completed()
    events = case.take_events()
    assert kinds(events) == (
        ["level_entered", "dispatched", "cannot_resolve", "escalated"] * 3
        + ["level_entered", "dispatched", "cannot_resolve", "final_disposition", "archived"]
    )
    escalations = [d for k, d in events if k == "escalated"]
    assert [(e["from_level"], e["to_level"], e["to_unit"]) for e in escalations] == [
        ("village", "township", "T1"),
        ("township", "county", "C1"),
        ("county", "city", "S1"),
    ]
    assert events[-2:] == [
        ("final_disposition", {"disposition": "court"}),
        ("archived", {"result": "final_disposition", "disposition": "court"}),
    ]


def test_duplicate_is_archived(clock):
    case = Case(clock)
    case.complete("dispatch", {"action": "duplicate", "duplicate_of": "XY-2020-0901"})
    assert case.wf.is_completed()
    assert case.take_events() == [
        ("level_entered", {"level": "village", "unit": "V1"}),
        ("archived", {"result": "duplicate", "duplicate_of": "XY-2020-0901"}),
    ]


def test_warning_opens_supervision_and_the_level_finishing_cancels_it(clock):
    case = Case(clock)  # Tue 2020-09-01 09:00; municipal at village level: 3 / 5 working days
    timers = case.timers()
    assert timers == {"预警": cst(2020, 9, 4, 9, 0), "超期": cst(2020, 9, 8, 9, 0)}
    case.dispatch("m1")
    case.advance_to(cst(2020, 9, 4, 9, 0))
    assert case.ready_ids() == ["mediate", "supervise"]
    assert case.assignment(case.task("supervise")) == {"role": "supervisor", "unit": "V1"}
    case.complete("supervise", {"comment": "请于本周内化解"})
    assert case.ready_ids() == ["mediate"]
    case.advance_to(cst(2020, 9, 5, 9, 0))  # nothing fires twice
    assert case.ready_ids() == ["mediate"]
    case.mediate("m1", "resolved")
    assert case.ready_ids() == ["verify"]
    where = {"level": "village", "unit": "V1"}
    assert case.take_events() == [
        *warned_events("village", "V1", ["m1"]),
        ("urged", {**where, "comment": "请于本周内化解"}),
        ("resolved", where),
    ]

    # a second case: the level finishes while the supervise task is still open
    other = Case(clock)
    other.advance_to(add_workdays(clock.now, 3))
    assert other.ready_ids() == ["dispatch", "supervise"]
    other.dispatch("m2")
    other.mediate("m2", "resolved")
    assert other.ready_ids() == ["verify"], "the terminate end cancels the open supervise task"
    assert "urged" not in kinds(other.take_events())


def test_overdue_means_accountability_and_escalation(clock):
    case = Case(clock)
    case.dispatch("m1")
    case.advance_to(cst(2020, 9, 4, 9, 0))  # warning
    assert case.ready_ids() == ["mediate", "supervise"]
    case.advance_to(cst(2020, 9, 8, 9, 0))  # overdue
    assert case.ready_ids() == ["dispatch"], "the open mediate and supervise tasks are cancelled"
    assert case.assignment(case.task("dispatch")) == {"role": "dispatcher", "unit": "T1"}
    assert case.task("dispatch").data["outcome"] is None
    # township, entered when the village timer fired (Tue 8 Sep 09:00:01): 5 / 10 working days
    assert case.timers() == {"预警": cst(2020, 9, 15, 9, 0, 1), "超期": cst(2020, 9, 22, 9, 0, 1)}
    where = {"level": "village", "unit": "V1"}
    assert case.take_events() == [
        *warned_events("village", "V1", ["m1"]),
        ("accountability", where),
        (
            "escalated",
            {
                "from_level": "village",
                "from_unit": "V1",
                "to_level": "township",
                "to_unit": "T1",
                "reason": "overdue",
            },
        ),
        ("level_entered", {"level": "township", "unit": "T1"}),
    ]


def test_overdue_at_the_top_level_goes_to_final_disposition(clock):
    case = Case(clock, levels=["village", "township"], level_units=["V1", "T1"])
    case.fail_level()
    case.take_events()
    assert case.ready_ids() == ["dispatch"]
    case.advance_to(max(case.timers().values()))  # the township never dispatches
    assert case.ready_ids() == ["final_disposition"]
    assert case.task("final_disposition").data["outcome"] == "overdue"
    case.complete("final_disposition", {"disposition": "petition", "notes": "转信访渠道"})
    assert case.wf.is_completed()
    where = {"level": "township", "unit": "T1"}
    assert case.take_events() == [
        ("warning", where),
        ("supervision_opened", where),
        ("accountability", where),
        ("final_disposition", {"disposition": "petition"}),
        ("archived", {"result": "final_disposition", "disposition": "petition"}),
    ]


def test_working_days_skip_the_national_day_holiday(clock):
    """Township level entered on 30 Sep 2020: 1-8 Oct are off, Sat 10 Oct is a working day."""
    clock.now = cst(2020, 9, 23, 9, 0).astimezone(UTC)
    case = Case(clock)
    assert case.timers() == {
        "预警": cst(2020, 9, 27, 9, 0),
        "超期": cst(2020, 9, 29, 9, 0),
    }  # Sun 27 Sep works
    clock.now = cst(2020, 9, 30, 9, 0).astimezone(UTC)
    case.fail_level()
    assert case.timers() == {"预警": cst(2020, 10, 14, 9, 0), "超期": cst(2020, 10, 21, 9, 0)}


# ---------------------------------------------------------------------------------------
# The files themselves


def test_time_limits_cover_every_level_and_category():
    dmn = PARSER.get_engine("time_limits", None)
    assert dmn.decision_table.hit_policy == "UNIQUE"
    engine = PythonScriptEngine(environment=RestrictedEnvironment())
    table = {}
    for level in LEVELS:
        for category in CATEGORIES:
            task = SimpleNamespace(
                data={"level": level, "category": category}, workflow=SimpleNamespace(script_engine=engine)
            )
            assert len(dmn.decide(task)) == 1
            matches = [
                r
                for r in dmn.decision_table.rules
                if all(dmn.evaluate(e.input.expression, e.lhs[0], task) for e in r.inputEntries)
            ]
            assert len(matches) == 1, f"{level}/{category}: rules must not overlap (UNIQUE)"
            result = dmn.result(task)
            assert set(result) == {"warn_days", "overdue_days"}
            assert isinstance(result["warn_days"], int) and 0 < result["warn_days"] < result["overdue_days"]
            table[level, category] = (result["warn_days"], result["overdue_days"])
    assert table["village", "neighbour"] == (3, 5) and table["city", "other"] == (10, 20)
    assert table["village", "labour"][1] < table["village", "neighbour"][1], "labour disputes are faster"
    for category in CATEGORIES:
        dues = [table[level, category][1] for level in LEVELS]
        assert dues == sorted(dues), f"{category}: higher levels get at least as much time"


def _user_tasks():
    for process_spec in [SPEC, *SUBPROCESS_SPECS.values()]:
        for ts in process_spec.task_specs.values():
            if ts.manual:
                yield ts


def test_user_tasks_follow_the_engine_conventions():
    seen = {}
    for ts in _user_tasks():
        props = ts.extensions["properties"]
        seen[ts.bpmn_id] = props
        assert ts.bpmn_name and re.search(r"[\u4e00-\u9fff]", ts.bpmn_name), f"{ts.bpmn_id}: Chinese name"
        assert (FORMS / props["form"]).is_file(), props["form"]
        assert props.get("role") in ROLES or props.get("roleExpression") == "dispatch_role"
        for key in ("unit", "user", "roleExpression"):
            if key in props:
                assert compile_restricted_eval(props[key]).errors == (), props[key]
    assert set(seen) == {"dispatch", "mediate", "supervise", "verify", "final_disposition", "resubmit",
                         "hold_review", "decide_extension", "department_handle"}
    assert seen["mediate"]["result"] == "mediation"


def test_every_boundary_timer_has_an_sla_property():
    root = etree.parse(str(WORKFLOWS / "handle_level.bpmn")).getroot()
    timers = root.xpath("//bpmn:boundaryEvent[bpmn:timerEventDefinition]", namespaces=BPMN_NS)
    slas = {
        t.get("id"): t.xpath(".//spiffworkflow:property[@name='sla']/@value", namespaces=BPMN_NS)
        for t in timers
    }
    assert slas == {"warning_timer": ["warning"], "overdue_timer": ["due"],
                    "department_warning_timer": ["warning"], "department_overdue_timer": ["due"]}


def test_every_diagram_element_has_a_shape():
    for path in BPMN_FILES:
        root = etree.parse(str(path)).getroot()
        ns = {**BPMN_NS, "bpmndi": "http://www.omg.org/spec/BPMN/20100524/DI"}
        wanted = {
            e.get("id")
            for e in root.xpath(
                "//bpmn:process//*[self::bpmn:startEvent or self::bpmn:endEvent or self::bpmn:boundaryEvent"
                " or self::bpmn:exclusiveGateway or self::bpmn:sequenceFlow or contains(local-name(), 'ask')"
                " or self::bpmn:subProcess or self::bpmn:callActivity]",
                namespaces=ns,
            )
        }
        drawn = set(
            root.xpath("//bpmndi:BPMNShape/@bpmnElement | //bpmndi:BPMNEdge/@bpmnElement", namespaces=ns)
        )
        assert wanted - drawn == set(), f"{path.name}: no DI for {sorted(wanted - drawn)}"
        for sub in root.xpath("//bpmn:subProcess/@id", namespaces=ns):  # drawn with its content
            assert root.xpath(f"//bpmndi:BPMNShape[@bpmnElement='{sub}']/@isExpanded", namespaces=ns) == [
                "true"
            ]


@pytest.mark.parametrize("name", sorted(p.name for p in FORMS.glob("*.json")))
def test_forms_are_json_schemas_with_the_renderer_hints(name):
    schema = load_form(name)
    Draft202012Validator.check_schema(schema)
    assert schema["title"] and schema["x-title"]["en"]
    assert set(schema.get("x-order", [])) <= set(schema["properties"])

    def check(prop_name, prop):
        assert prop.get("title") and prop.get("x-title", {}).get("en"), f"{name}: {prop_name} titles"
        if "enum" in prop:
            titles = prop["x-enum-titles"]
            assert len(titles["zh"]) == len(titles["en"]) == len(prop["enum"]), f"{name}: {prop_name}"
        for sub_name, sub in (prop.get("properties") or {}).items():
            check(f"{prop_name}.{sub_name}", sub)
        for sub_name, sub in ((prop.get("items") or {}).get("properties") or {}).items():
            check(f"{prop_name}[].{sub_name}", sub)

    for prop_name, prop in schema["properties"].items():
        check(prop_name, prop)


def test_the_report_form_requires_a_spot_result_when_settled():
    validator = Draft202012Validator(load_form("report.json"))
    base = {"category": "neighbour", "description": "楼上漏水到楼下", "location": {"text": "檀溪社区"}}
    assert validator.is_valid({**base, "settled_on_spot": False})
    assert not validator.is_valid({**base, "settled_on_spot": True})
    assert validator.is_valid({**base, "settled_on_spot": True, "spot_result": "双方协商赔偿"})
    dispatch = Draft202012Validator(load_form("dispatch.json"))
    assert not dispatch.is_valid({"action": "dispatch"})
    assert not dispatch.is_valid({"action": "duplicate"})
    assert dispatch.is_valid({"action": "duplicate", "duplicate_of": "XY-1"})


def test_the_calendar_lists_holidays_and_makeup_working_days():
    raw = yaml.safe_load((WORKFLOWS / "calendar.yaml").read_text(encoding="utf-8"))["years"]
    assert {2020, 2024, 2025, 2026, 2027} <= set(raw)
    for year, spec in raw.items():
        assert all(d.year == year for d in spec["holidays"] + spec["workdays"])
        assert all(d.weekday() >= 5 for d in spec["workdays"]), f"{year}: make-up days are weekend days"
        assert not set(spec["holidays"]) & set(spec["workdays"])
    assert is_workday(date(2020, 9, 27)) and is_workday(date(2020, 10, 10))
    assert not any(is_workday(date(2020, 10, d)) for d in range(1, 9))
    assert add_workdays(cst(2020, 9, 30, 9, 0), 1) == cst(2020, 10, 9, 9, 0)
