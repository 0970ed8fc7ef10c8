"""The refusals that were worded in English only (sandbox scripts and conditions, timer literals,
form JSON, unsafe XML) come out coded: Chinese text and a hint, from engine.problems.coded."""
from __future__ import annotations

import pytest

from engine.deploy import Bundle, parse_bundle
from engine.errors import DeployError, Problem
from engine.problems import CATALOGUE, coded, coded_all, precheck

HEAD = ('<?xml version="1.0" encoding="UTF-8"?>\n<bpmn:definitions xmlns:bpmn="http://www.omg.org/spec/BPMN/'
        '20100524/MODEL" id="d" targetNamespace="http://gridflow.example/t">\n')


def _process(elements: str) -> str:
    """A one-process definitions document: a start event (flowing out on f0), then `elements`."""
    return HEAD + f"""  <bpmn:process id="p" isExecutable="true">
    <bpmn:startEvent id="start"><bpmn:outgoing>f0</bpmn:outgoing></bpmn:startEvent>
{elements}  </bpmn:process>
</bpmn:definitions>
"""


def _script_bpmn(script: str) -> str:
    return _process(f"""    <bpmn:scriptTask id="calc" name="计算"><bpmn:incoming>f0</bpmn:incoming><bpmn:outgoing>f1</bpmn:outgoing>
      <bpmn:script>{script}</bpmn:script></bpmn:scriptTask>
    <bpmn:endEvent id="end"><bpmn:incoming>f1</bpmn:incoming></bpmn:endEvent>
    <bpmn:sequenceFlow id="f0" sourceRef="start" targetRef="calc"/>
    <bpmn:sequenceFlow id="f1" sourceRef="calc" targetRef="end"/>
""")


def _condition_bpmn(cond: str) -> str:
    return _process(f"""    <bpmn:exclusiveGateway id="gw" name="判断" default="f2"><bpmn:incoming>f0</bpmn:incoming>
      <bpmn:outgoing>f1</bpmn:outgoing><bpmn:outgoing>f2</bpmn:outgoing></bpmn:exclusiveGateway>
    <bpmn:endEvent id="e1"><bpmn:incoming>f1</bpmn:incoming></bpmn:endEvent>
    <bpmn:endEvent id="e2"><bpmn:incoming>f2</bpmn:incoming></bpmn:endEvent>
    <bpmn:sequenceFlow id="f0" sourceRef="start" targetRef="gw"/>
    <bpmn:sequenceFlow id="f1" sourceRef="gw" targetRef="e1">
      <bpmn:conditionExpression>{cond}</bpmn:conditionExpression></bpmn:sequenceFlow>
    <bpmn:sequenceFlow id="f2" sourceRef="gw" targetRef="e2"/>
""")


def _timer_bpmn(expr: str) -> str:
    return _process(f"""    <bpmn:intermediateCatchEvent id="wait" name="等待"><bpmn:incoming>f0</bpmn:incoming>
      <bpmn:outgoing>f1</bpmn:outgoing>
      <bpmn:timerEventDefinition><bpmn:timeDuration>{expr}</bpmn:timeDuration></bpmn:timerEventDefinition>
    </bpmn:intermediateCatchEvent>
    <bpmn:endEvent id="end"><bpmn:incoming>f1</bpmn:incoming></bpmn:endEvent>
    <bpmn:sequenceFlow id="f0" sourceRef="start" targetRef="wait"/>
    <bpmn:sequenceFlow id="f1" sourceRef="wait" targetRef="end"/>
""")


def _refusals(bpmn: str, forms: dict | None = None) -> list[Problem]:
    bundle = Bundle(bpmn={"t.bpmn": bpmn.encode("utf-8")}, forms=forms or {})
    found = precheck(bundle.bpmn, bundle.dmn, set(bundle.forms))
    if found:
        return found
    with pytest.raises(DeployError) as e:
        parse_bundle(bundle, extra=False)
    return coded_all(e.value.problems)


def assert_coded(p: Problem, code: str) -> None:
    assert p.code == code, str(p)
    assert code in CATALOGUE and p.en and p.zh and p.hint_en and p.hint_zh, str(p)
    assert any("\u4e00" <= ch <= "\u9fff" for ch in p.zh + p.hint_zh), str(p)
    assert p.zh in p.message and p.hint_en in p.message


@pytest.mark.parametrize(("script", "zh_part", "hint_part"), [
    ("import os", "不允许 import", "Remove the import"),
    ("_secret = 1", "下划线", "underscore"),
    ("async def f(): pass", "不允许 AsyncFunctionDef 语句", "Remove the statement"),
    ("x = y.__class__", "__class__", "underscore"),
    ("x = (", "语法错误", "syntax"),
])
def test_sandbox_script_refusals_are_coded(script, zh_part, hint_part):
    [p] = _refusals(_script_bpmn(script))
    assert_coded(p, "script_refused")
    assert p.file == "t.bpmn" and p.element == "calc" and p.line
    assert p.args["label"] == "script" and p.zh.startswith("脚本被脚本沙箱拒绝")
    assert zh_part in p.zh and hint_part in p.hint_en


def test_sandbox_condition_refusal_is_coded():
    [p] = _refusals(_condition_bpmn("_hidden == 1"))
    assert_coded(p, "expression_refused")
    assert p.args["label"] == "condition" and p.args["expr"] == "_hidden == 1"
    assert "条件表达式" in p.zh and "下划线" in p.zh


def test_unquoted_timer_is_coded():
    [p] = _refusals(_timer_bpmn("PT1H"))
    assert_coded(p, "timer_unquoted")
    assert p.element == "wait" and p.args == {"expr": "PT1H"}
    assert '"PT1H"' in p.zh and '"PT1H"' in p.hint_en


def test_timer_that_is_not_iso_is_coded():
    [p] = _refusals(_timer_bpmn('"soon"'))
    assert_coded(p, "timer_not_iso")
    assert p.element == "wait"


def test_invalid_form_json_is_coded():
    probs = _refusals(_script_bpmn("x = 1"), forms={"bad.json": b'{"type": "object",\n "properties": }'})
    [p] = [p for p in probs if p.file == "forms/bad.json"]
    assert_coded(p, "form_json")
    assert p.line == 2 and "JSON" in p.zh


def test_invalid_form_schema_is_coded():
    probs = _refusals(_script_bpmn("x = 1"), forms={"bad.json": b'{"type": "thing"}'})
    [p] = [p for p in probs if p.file == "forms/bad.json"]
    assert_coded(p, "form_schema")


def test_doctype_is_coded():
    text = _script_bpmn("x = 1").replace("<bpmn:definitions", '<!DOCTYPE x [<!ENTITY a "b">]>\n<bpmn:definitions', 1)
    [p] = _refusals(text)
    assert_coded(p, "xml_doctype")
    assert p.line == 2


def test_malformed_xml_is_coded():
    [p] = _refusals(_script_bpmn("x = 1").replace("</bpmn:process>", ""))
    assert_coded(p, "xml_malformed")
    assert p.line


def test_entity_reference_wording_is_coded():
    assert_coded(coded(Problem("t.bpmn", "entity references are not allowed", 3)), "xml_entity")


def test_no_bpmn_is_coded():
    [p] = precheck({}, {}, set())
    assert_coded(p, "no_bpmn")


def test_coded_keeps_coded_problems_and_unknown_wording():
    p = Problem("t.bpmn", "something nobody words", 1, "x")
    assert coded(p) is p
    q = coded(Problem("t.bpmn", "timer has no expression", 4, "w"), {"w": "等待"})
    assert_coded(q, "timer_empty")
    assert q.name == "等待" and q.line == 4 and coded(q) is q
