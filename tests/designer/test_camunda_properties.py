"""Files saved by stock Camunda Modeler deploy: `camunda:properties` are read like
`spiffworkflow:properties`, `camunda:formKey` as `form`, `camunda:candidateGroups` as `role`,
and other tools' extension elements are ignored."""
from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from lxml import etree

from engine.deploy import Bundle, parse_bundle
from engine.errors import DeployError
from grid.cases.scenario import run_file

ROOT = Path(__file__).resolve().parents[2]
B = "http://www.omg.org/spec/BPMN/20100524/MODEL"
C = "http://camunda.org/schema/1.0/bpmn"
S = "http://spiffworkflow.org/bpmn/schema/1.0/core"
SEED = ROOT / "workflows" / "scenarios" / "03_seed_story.yaml"
FORMS = {p.name: p.read_bytes() for p in (ROOT / "forms").glob("*.json")}


def camundify(content: bytes) -> bytes:
    """The same diagram as Camunda Modeler would save it: forms as formKey, roles as candidate
    groups, every other property as a camunda:property, decisions as camunda:decisionRef."""
    root = etree.fromstring(content.replace(b"<bpmn:definitions ", f'<bpmn:definitions xmlns:camunda="{C}" '.encode(), 1))
    for props in list(root.iter(f"{{{S}}}properties")):
        owner = props.getparent().getparent()
        cprops = etree.Element(f"{{{C}}}properties")
        for p in props.findall(f"{{{S}}}property"):
            name, value = p.get("name"), p.get("value")
            if owner.tag == f"{{{B}}}userTask" and name == "form":
                owner.set(f"{{{C}}}formKey", value)
            elif owner.tag == f"{{{B}}}userTask" and name == "role":
                owner.set(f"{{{C}}}candidateGroups", value)
            else:
                etree.SubElement(cprops, f"{{{C}}}property", name=name, value=value)
        props.addprevious(cprops)
        props.getparent().remove(props)
    for d in list(root.iter(f"{{{S}}}calledDecisionId")):
        d.getparent().getparent().set(f"{{{C}}}decisionRef", d.text)
        d.getparent().remove(d)
    # what Camunda 7 / 8 modelers add besides
    for task in root.iter(f"{{{B}}}userTask"):
        ext = task.find(f"{{{B}}}extensionElements")
        etree.SubElement(ext, "{http://camunda.org/schema/zeebe/1.0}taskHeaders")
        etree.SubElement(ext, f"{{{C}}}inputOutput")
    etree.cleanup_namespaces(root)
    return etree.tostring(root, xml_declaration=True, encoding="UTF-8")


@pytest.fixture
def camunda_workflows(tmp_path) -> Path:
    wf = tmp_path / "workflows"
    shutil.copytree(ROOT / "workflows", wf, ignore=shutil.ignore_patterns("scenarios"))
    for name in ("dispute_case.bpmn", "handle_level.bpmn"):
        path = wf / name
        path.write_bytes(camundify(path.read_bytes()))
        text = path.read_text(encoding="utf-8")
        assert "spiffworkflow:" not in text and "camunda:property " in text and "camunda:formKey" in text
    return wf


def _props(wf: Path) -> dict:
    parsed = parse_bundle(Bundle.from_dirs(wf, ROOT / "forms"))
    out = {}
    for pid in ("dispute_case", "handle_level"):
        spec, subs = parsed.specs[pid]
        for pspec in [spec, *subs.values()]:
            for ts in pspec.task_specs.values():
                dmn = getattr(ts, "dmnEngine", None)
                out[(pid, ts.name)] = ((getattr(ts, "extensions", None) or {}).get("properties") or {},
                                       dmn.decision_table.id if dmn else None)
    return out


def test_camunda_properties_read_exactly_like_spiffworkflow_properties(camunda_workflows):
    today, camunda = _props(ROOT / "workflows"), _props(camunda_workflows)
    assert camunda.keys() == today.keys()
    for key, (props, decision) in today.items():
        assert camunda[key][0] == props, key
        assert camunda[key][1] == decision, key


def test_seed_story_runs_the_same_on_camunda_files(camunda_workflows):
    today = run_file(SEED, workflows=ROOT / "workflows", forms=ROOT / "forms")
    camunda = run_file(SEED, workflows=camunda_workflows, forms=ROOT / "forms")
    assert today.passed, str(today)
    assert camunda.passed, str(camunda)
    assert camunda.steps == today.steps


def _one(task_attrs: str = "", props: str = "", spiff: str = "", ext: str = "") -> Bundle:
    xml = f'''<?xml version="1.0" encoding="UTF-8"?>
<bpmn:definitions xmlns:bpmn="{B}" xmlns:camunda="{C}" xmlns:spiffworkflow="{S}"
    xmlns:zeebe="http://camunda.org/schema/zeebe/1.0" xmlns:signavio="http://www.signavio.com" id="d" targetNamespace="t">
  <bpmn:process id="p" isExecutable="true">
    <bpmn:startEvent id="s"/>
    <bpmn:userTask id="u" name="核查" {task_attrs}>
      <bpmn:extensionElements>{ext}<camunda:properties>{props}</camunda:properties>{spiff}</bpmn:extensionElements>
    </bpmn:userTask>
    <bpmn:endEvent id="e"/>
    <bpmn:sequenceFlow id="f1" sourceRef="s" targetRef="u"/>
    <bpmn:sequenceFlow id="f2" sourceRef="u" targetRef="e"/>
  </bpmn:process>
</bpmn:definitions>'''
    return Bundle(bpmn={"one.bpmn": xml.encode()}, forms=FORMS)


def _task_props(b: Bundle) -> dict:
    return parse_bundle(b, extra=False).specs["p"][0].task_specs["u"].extensions["properties"]


@pytest.mark.parametrize("key, form", [("verify.json", "verify.json"), ("forms/verify.json", "verify.json"),
                                       ("deployment:verify.json", "verify.json"), ("verify", "verify.json")])
def test_form_key_is_read_as_form(key, form):
    assert _task_props(_one(f'camunda:formKey="{key}" camunda:candidateGroups="grid_worker"'))["form"] == form


def test_candidate_group_is_read_as_role_and_an_explicit_property_wins_over_neither():
    props = _task_props(_one('camunda:candidateGroups="mediator"', '<camunda:property name="unit" value="current_unit"/>'))
    assert props["role"] == "mediator" and props["unit"] == "current_unit"
    props = _task_props(_one('camunda:candidateGroups="mediator"', '<camunda:property name="roleExpression" value="r"/>'))
    assert "role" not in props and props["roleExpression"] == "r"


def test_unknown_vendor_extensions_are_ignored():
    b = _one(ext='<zeebe:formDefinition formKey="x"/><signavio:signavioMetaData metaKey="k" metaValue="v"/>'
                 '<camunda:inputOutput><camunda:inputParameter name="a">1</camunda:inputParameter></camunda:inputOutput>',
             props='<camunda:property name="role" value="grid_worker"/>')
    assert _task_props(b) == {"role": "grid_worker"}


@pytest.mark.parametrize("attrs, props, spiff, code", [
    ('camunda:formKey="embedded:app:forms/verify.html"', "", "", "form_key"),
    ('camunda:candidateGroups="grid_head, mediator"', "", "", "candidate_groups"),
    ('camunda:candidateGroups="${groupOf(unit)}"', "", "", "candidate_groups"),
    ("", '<camunda:property name="role" value="mediator"/>',
     '<spiffworkflow:properties><spiffworkflow:property name="role" value="grid_head"/></spiffworkflow:properties>',
     "property_conflict"),
])
def test_ambiguous_camunda_settings_are_refused_with_what_to_do(attrs, props, spiff, code):
    with pytest.raises(DeployError) as ei:
        parse_bundle(_one(attrs, props, spiff), extra=False)
    p, = ei.value.problems
    assert (p.code, p.file, p.element, p.name) == (code, "one.bpmn", "u", "核查")
    assert p.line and p.zh and p.hint_en and p.hint_zh
