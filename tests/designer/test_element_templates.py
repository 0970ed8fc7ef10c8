"""The Camunda Modeler element templates are valid (against the vendored schema, offline) and write
what Gridflow reads: a diagram with each template applied deploys with the properties the runtime uses."""
from __future__ import annotations

import json
from pathlib import Path

import pytest
from jsonschema import Draft7Validator

from engine.deploy import Bundle, parse_bundle

ROOT = Path(__file__).resolve().parents[2]
MODELER = ROOT / "tools" / "modeler"
SCHEMA = json.loads((MODELER / "schema" / "element-templates-0.22.1.schema.json").read_text(encoding="utf-8"))
TEMPLATES = json.loads((MODELER / "gridflow.json").read_text(encoding="utf-8"))
BY_ID = {t["id"]: t for t in TEMPLATES}
NS = ('xmlns:bpmn="http://www.omg.org/spec/BPMN/20100524/MODEL" '
      'xmlns:camunda="http://camunda.org/schema/1.0/bpmn" '
      'xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance"')


def test_schema_is_the_vendored_draft07_schema():
    Draft7Validator.check_schema(SCHEMA)
    assert SCHEMA["$id"] == "http://camunda.org/schema/element-templates/1.0"


@pytest.mark.parametrize("template", TEMPLATES, ids=[t["id"] for t in TEMPLATES])
def test_every_template_validates(template):
    errors = [e.message for e in Draft7Validator(SCHEMA).iter_errors(template)]
    assert errors == []
    assert template["$schema"].endswith("element-templates-json-schema@0.22.1/resources/schema.json")


def test_the_file_validates_as_one_descriptor_and_the_schema_refuses_nonsense():
    v = Draft7Validator(SCHEMA)
    assert list(v.iter_errors(TEMPLATES)) == []
    bad = [{"name": "x", "id": "x", "appliesTo": ["bpmn:Task"],
            "properties": [{"label": "a", "type": "Bogus", "binding": {"type": "camunda:property"}}]}]
    assert list(v.iter_errors(bad)), "the schema really checks property types and bindings"


def test_form_and_role_choices_match_the_repository():
    props = {p["binding"].get("name"): p for p in BY_ID["gridflow.userTask"]["properties"]}
    forms = sorted(p.name for p in (ROOT / "forms").glob("*.json") if p.name != "report.json")
    assert sorted(c["value"] for c in props["form"]["choices"]) == forms
    roles = {c["value"] for c in props["role"]["choices"]} - {""}
    assert roles == {"grid_worker", "grid_head", "mediator", "dispatcher", "supervisor", "department_handler"}
    readme = (ROOT / "workflows" / "README.md").read_text(encoding="utf-8")
    emit = {p["binding"]["name"]: p for p in BY_ID["gridflow.emitScript"]["properties"] if "name" in p["binding"]}
    for kind in (c["value"] for c in emit["emit"]["choices"]):
        assert f"`{kind}`" in readme, f"event kind {kind} is documented"


def _apply(template: dict, overrides: dict | None = None) -> tuple[dict, list[tuple[str, str]], str | None]:
    """What the properties panel writes for a template with its default values: attributes
    (`property` bindings), `camunda:property` entries, and a script body."""
    attrs, cprops, script = {}, [], None
    for p in template["properties"]:
        b = p["binding"]
        value = (overrides or {}).get(b.get("name"), p.get("value"))
        if value in (None, ""):
            continue
        if b["type"] == "camunda:property":
            cprops.append((b["name"], str(value)))
        elif b["name"] == "script":
            script = str(value)
        else:
            attrs[b["name"]] = str(value).lower() if isinstance(value, bool) else str(value)
    return attrs, cprops, script


def _element(tag: str, eid: str, template: dict, inner: str = "", extra: str = "", **overrides) -> str:
    attrs, cprops, script = _apply(template, overrides)
    attrs.setdefault("name", eid)
    attr_text = " ".join(f'{k}="{v}"' for k, v in attrs.items())
    props = "".join(f'<camunda:property name="{k}" value="{v}"/>' for k, v in cprops)
    body = f"<bpmn:script>{script}</bpmn:script>" if script else ""
    return (f'<bpmn:{tag} id="{eid}" {attr_text} {extra} camunda:modelerTemplate="{template["id"]}">'
            f"<bpmn:extensionElements><camunda:properties>{props}</camunda:properties></bpmn:extensionElements>"
            f"{inner}{body}</bpmn:{tag}>")


def test_a_diagram_made_with_the_templates_deploys_with_what_gridflow_reads():
    task = _element("userTask", "mediate", BY_ID["gridflow.userTask"], result="mediation",
                    inner='<bpmn:incoming>f1</bpmn:incoming><bpmn:outgoing>f2</bpmn:outgoing>', name="调解")
    timer = _element("boundaryEvent", "warn", BY_ID["gridflow.slaTimer"], extra='attachedToRef="mediate"',
                     inner='<bpmn:outgoing>f4</bpmn:outgoing>')
    script = _element("scriptTask", "note", BY_ID["gridflow.emitScript"], name="登记",
                      script="level = 'village'\ncurrent_unit = 'U'",
                      inner='<bpmn:incoming>f2</bpmn:incoming><bpmn:outgoing>f3</bpmn:outgoing>')
    xml = f'''<?xml version="1.0" encoding="UTF-8"?>
<bpmn:definitions {NS} id="d" targetNamespace="t">
  <bpmn:process id="templated" isExecutable="true">
    <bpmn:startEvent id="s"><bpmn:outgoing>f1</bpmn:outgoing></bpmn:startEvent>
    {task}
    {script}
    {timer}
    <bpmn:endEvent id="e"><bpmn:incoming>f3</bpmn:incoming></bpmn:endEvent>
    <bpmn:endEvent id="e2"><bpmn:incoming>f4</bpmn:incoming></bpmn:endEvent>
    <bpmn:sequenceFlow id="f1" sourceRef="s" targetRef="mediate"/>
    <bpmn:sequenceFlow id="f2" sourceRef="mediate" targetRef="note"/>
    <bpmn:sequenceFlow id="f3" sourceRef="note" targetRef="e"/>
    <bpmn:sequenceFlow id="f4" sourceRef="warn" targetRef="e2"/>
  </bpmn:process>
</bpmn:definitions>'''.encode()
    forms = {p.name: p.read_bytes() for p in (ROOT / "forms").glob("*.json")}
    parsed = parse_bundle(Bundle(bpmn={"templated.bpmn": xml}, forms=forms), extra=False)
    spec = parsed.specs["templated"][0]
    props = spec.task_specs["mediate"].extensions["properties"]
    assert {k: props.get(k) for k in ("form", "role", "unit", "result")} == {
        "form": "mediate.json", "role": "grid_worker", "unit": "current_unit", "result": "mediation"}
    warn = spec.task_specs["warn"]
    assert warn.extensions["properties"]["sla"] == "warning"
    assert warn.event_definition.expression == "warn_at" and warn.cancel_activity is False
    assert spec.task_specs["note"].script.splitlines() == [
        "level = 'village'", "current_unit = 'U'", "emit('level_entered', level=level, unit=current_unit)"]
