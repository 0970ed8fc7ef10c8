"""workflows/accountability.bpmn and accountability_limits.dmn on plain SpiffWorkflow 3.2.0, in the
style of test_workflow_files.py (RestrictedPython scripts, fake clock, JSON round trip each step):
the paths (explain -> decide; decide at once; explanation missed), the timers from the DMN, and
the conventions the engine relies on (Chinese names, forms, roles, sla on every boundary timer, DI)."""
from __future__ import annotations

import re

from jsonschema import Draft202012Validator
from lxml import etree
from RestrictedPython import compile_restricted_eval
from SpiffWorkflow.bpmn import BpmnWorkflow
from SpiffWorkflow.bpmn.script_engine import PythonScriptEngine
from SpiffWorkflow.spiff.parser.process import VALIDATOR, SpiffBpmnParser
from SpiffWorkflow.util.task import TaskState

from tests.cases.test_workflow_files import (
    BPMN_NS,
    FORMS,
    ROLES,
    SERIALIZER,
    WORKFLOWS,
    RestrictedEnvironment,
    add_workdays,
    cst,
    load_form,
)

BPMN = WORKFLOWS / "accountability.bpmn"
PARSER = SpiffBpmnParser(validator=VALIDATOR)
PARSER.add_bpmn_files([str(BPMN)])
PARSER.add_dmn_files([str(WORKFLOWS / "accountability_limits.dmn")])
SPEC = PARSER.get_spec("accountability")


class Entry:
    def __init__(self, clock, level: str = "village"):
        self.clock, self.events = clock, []
        env = RestrictedEnvironment({"workdays": lambda n: add_workdays(self.clock.now, n).isoformat(),
                                     "emit": lambda kind, **d: self.events.append((kind, d)),
                                     "now": lambda: self.clock.now.isoformat()})
        self.engine = PythonScriptEngine(environment=env)
        self.wf = BpmnWorkflow(SPEC, {}, script_engine=self.engine)
        self.wf.get_next_task(spec_name="Start").set_data(
            entry_no="XY-1-W1", case_no="XY-1", level=level, unit="V1", reviewer_unit="T1", staff_ids=["m1"])
        self.wf.do_engine_steps()
        self.roundtrip()

    def roundtrip(self) -> None:
        self.wf = SERIALIZER.deserialize_json(SERIALIZER.serialize_json(self.wf))
        self.wf.script_engine = self.engine

    def ready(self) -> list[str]:
        return sorted(t.task_spec.bpmn_id for t in self.wf.get_tasks(state=TaskState.READY, manual=True))

    def who(self, bpmn_id: str) -> tuple[str, str]:
        t = next(t for t in self.wf.get_tasks(state=TaskState.READY, manual=True) if t.task_spec.bpmn_id == bpmn_id)
        props = t.task_spec.extensions["properties"]
        role = self.engine.evaluate(t, props["roleExpression"]) if "roleExpression" in props else props["role"]
        return role, self.engine.evaluate(t, props["unit"])

    def complete(self, bpmn_id: str, form: dict) -> None:
        t = next(t for t in self.wf.get_tasks(state=TaskState.READY, manual=True) if t.task_spec.bpmn_id == bpmn_id)
        props = t.task_spec.extensions["properties"]
        Draft202012Validator(load_form(props["form"])).validate(form)
        t.data[props["result"]] = form
        t.run()
        self.wf.do_engine_steps()
        self.roundtrip()

    def advance_to(self, when) -> None:
        from datetime import UTC, timedelta

        self.clock.now = when.astimezone(UTC) + timedelta(seconds=1)
        self.wf.refresh_timers()
        self.wf.do_engine_steps()
        self.roundtrip()

    def timers(self) -> dict:
        from datetime import datetime

        return {e.name: datetime.fromisoformat(e.value) for e in self.wf.waiting_events()
                if e.event_type == "TimeDateEventDefinition"}


def test_review_explain_decide(clock):
    e = Entry(clock)
    assert e.ready() == ["review_accountability"] and e.who("review_accountability") == ("supervisor", "T1")
    assert e.timers() == {"审查超时": add_workdays(cst(2020, 9, 1, 9, 0), 2)}
    e.complete("review_accountability", {"action": "explain", "comment": "请说明"})
    assert e.ready() == ["explain"] and e.who("explain") == ("grid_head", "V1")
    e.complete("explain", {"text": "调解员同时承办多起", "measures": "调整分工"})
    assert e.ready() == ["decide_accountability"]
    e.complete("decide_accountability", {"outcome": "notice", "note": "予以通报"})
    assert e.wf.is_completed()
    assert [k for k, _ in e.events] == ["accountability_reviewed", "accountability_explained", "accountability_decided"]
    assert e.events[-1][1] == {"outcome": "notice", "note": "予以通报"}


def test_decide_at_once_and_the_street_explains_through_its_dispatcher(clock):
    e = Entry(clock, level="township")
    e.complete("review_accountability", {"action": "decide", "comment": "非承办单位原因"})
    assert e.ready() == ["decide_accountability"]
    e.complete("decide_accountability", {"outcome": "exempt", "note": "免责"})
    assert e.wf.is_completed() and "accountability_explained" not in [k for k, _ in e.events]
    e2 = Entry(clock, level="township")
    e2.complete("review_accountability", {"action": "explain", "comment": "请说明"})
    assert e2.who("explain") == ("dispatcher", "V1")


def test_late_review_is_recorded_and_a_missed_explanation_goes_to_the_decision(clock):
    e = Entry(clock)
    e.advance_to(add_workdays(cst(2020, 9, 1, 9, 0), 2))
    assert e.ready() == ["review_accountability"]  # still open, red in the inbox
    assert e.events == [("accountability_stage_overdue", {"stage": "review", "unit": "T1"})]
    e.complete("review_accountability", {"action": "explain", "comment": "请说明"})
    due = e.timers()["说明逾期"]
    assert due == add_workdays(clock.now, 3)
    e.advance_to(due)
    assert e.ready() == ["decide_accountability"]
    assert e.events[-1] == ("accountability_explanation_missed", {"unit": "V1"})
    e.complete("decide_accountability", {"outcome": "interview", "note": "约谈"})
    assert e.wf.is_completed()


def test_conventions_the_engine_relies_on():
    tasks = {ts.bpmn_id: ts for ts in SPEC.task_specs.values() if ts.manual}
    assert set(tasks) == {"review_accountability", "explain", "decide_accountability"}
    for ts in tasks.values():
        props = ts.extensions["properties"]
        assert re.search(r"[\u4e00-\u9fff]", ts.bpmn_name)
        assert (FORMS / props["form"]).is_file() and props["result"]
        assert props.get("role") in ROLES or props.get("roleExpression") == "explain_role"
        for key in ("unit", "roleExpression"):
            if key in props:
                assert compile_restricted_eval(props[key]).errors == ()
    root = etree.parse(str(BPMN)).getroot()
    timers = root.xpath("//bpmn:boundaryEvent[bpmn:timerEventDefinition]", namespaces=BPMN_NS)
    assert {t.get("id"): t.xpath(".//spiffworkflow:property[@name='sla']/@value", namespaces=BPMN_NS)
            for t in timers} == {"review_overdue_timer": ["due"], "explain_overdue_timer": ["due"],
                                 "decide_overdue_timer": ["due"]}
    ns = {**BPMN_NS, "bpmndi": "http://www.omg.org/spec/BPMN/20100524/DI"}
    wanted = set(root.xpath("//bpmn:process/*[not(self::bpmn:documentation)]/@id", namespaces=ns))
    drawn = set(root.xpath("//bpmndi:BPMNShape/@bpmnElement | //bpmndi:BPMNEdge/@bpmnElement", namespaces=ns))
    assert wanted - drawn == set()
    outcomes = load_form("accountability_decide.json")["properties"]["outcome"]
    assert outcomes["enum"] == ["exempt", "notice", "interview", "accountable"]
    assert outcomes["x-enum-titles"]["zh"] == ["免责", "通报", "约谈", "问责"]
