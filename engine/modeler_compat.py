"""Files from designers' own modelers, made readable for SpiffWorkflow before it parses them.

Camunda Modeler's properties panel writes "Extension properties" as `camunda:properties`, a form
as `camunda:formKey` and a role as `camunda:candidateGroups`; Gridflow reads
`spiffworkflow:properties`. `normalise` rewrites the lxml tree in place, so the runtime reads one
form only. Extension elements of other tools (zeebe:, signavio:, bizagi:, ...) are dropped from
`bpmn:extensionElements`: they mean nothing to the engine and must not refuse a file. BPMN's own
XML Schema still applies to everything else. `check_structure` finds what SpiffWorkflow would
only report as a KeyError: elements without id, references to ids that do not exist, files with
no executable process.
"""
from __future__ import annotations

import re

from lxml import etree

from .errors import Problem
from .problems import BPMN_NS, make

CAMUNDA_NS = "http://camunda.org/schema/1.0/bpmn"
SPIFF_NS = "http://spiffworkflow.org/bpmn/schema/1.0/core"
_B, _C, _S = f"{{{BPMN_NS}}}", f"{{{CAMUNDA_NS}}}", f"{{{SPIFF_NS}}}"
FORM_KEY = re.compile(r"^(?:[A-Za-z-]+:)*(?:forms/)?([\w.-]+\.json)$")
GROUP = re.compile(r"^[A-Za-z_][\w.-]*$")
FLOW_ELEMENTS = {
    "startEvent", "endEvent", "intermediateCatchEvent", "intermediateThrowEvent", "boundaryEvent", "task",
    "userTask", "manualTask", "scriptTask", "serviceTask", "sendTask", "receiveTask", "businessRuleTask",
    "callActivity", "subProcess", "transaction", "adHocSubProcess", "exclusiveGateway", "parallelGateway",
    "inclusiveGateway", "eventBasedGateway", "complexGateway", "sequenceFlow",
}
_EVENTS = ("boundaryEvent", "intermediateCatchEvent", "startEvent")
_EVENT_REFS = {"messageEventDefinition": ("messageRef", "message event", "消息事件"),
               "signalEventDefinition": ("signalRef", "signal event", "信号事件"),
               "errorEventDefinition": ("errorRef", "error event", "错误事件"),
               "escalationEventDefinition": ("escalationRef", "escalation event", "升级事件")}


def names_of(root: etree._Element) -> dict[str, str]:
    """Element id -> its name (what the designer sees on the diagram)."""
    return {el.get("id"): el.get("name") for el in root.iter()
            if isinstance(el.tag, str) and el.get("id") and el.get("name")}


def _ext(el: etree._Element, create: bool = False) -> etree._Element | None:
    ext = el.find(f"{_B}extensionElements")
    if ext is None and create:
        ext = etree.Element(f"{_B}extensionElements")
        pos = 1 if len(el) and el[0].tag == f"{_B}documentation" else 0
        el.insert(pos, ext)
    return ext


def _local(el: etree._Element) -> str:
    return etree.QName(el).localname if isinstance(el.tag, str) else ""


def normalise(root: etree._Element, filename: str, forms: set[str] | frozenset = frozenset()) -> list[Problem]:
    """Turn camunda: properties/attributes into spiffworkflow:properties; drop unknown extensions."""
    problems: list[Problem] = []
    names = names_of(root)
    for el in list(root.iter(f"{_B}*")):
        ext = _ext(el)
        props: dict[str, str] = {}
        if ext is not None:
            for cp in ext.findall(f"{_C}properties/{_C}property"):
                if cp.get("name") and cp.get("value") not in (None, ""):
                    props[cp.get("name")] = cp.get("value")
        problems += _attributes(el, props, filename, names, forms)
        if not props and ext is None:
            continue
        spiff = ext.find(f"{_S}properties") if ext is not None else None
        have = {p.get("name"): p.get("value") for p in spiff.findall(f"{_S}property")} if spiff is not None else {}
        for key, value in props.items():
            if key in have and have[key] != value:
                problems.append(make("property_conflict", filename, el.sourceline, el.get("id"),
                                     names.get(el.get("id")), key=key, a=have[key], b=value))
        new = {k: v for k, v in props.items() if k not in have}
        if new:
            ext = _ext(el, create=True)
            if spiff is None:
                spiff = etree.Element(f"{_S}properties")
                ext.insert(0, spiff)
            for key, value in new.items():
                etree.SubElement(spiff, f"{_S}property", name=key, value=value)
        _expand(el, {**props, **have})
        if ext is not None:
            for child in list(ext):
                if isinstance(child.tag, str) and etree.QName(child).namespace not in (SPIFF_NS, BPMN_NS):
                    ext.remove(child)
    return problems


def _attributes(el, props: dict, filename: str, names: dict, forms) -> list[Problem]:
    """camunda:formKey -> form, camunda:candidateGroups -> role, camunda:decisionRef -> decision."""
    out: list[Problem] = []
    where = (filename, el.sourceline, el.get("id"), names.get(el.get("id")))
    key = el.get(f"{_C}formKey")
    if key and "form" not in props and not _has_spiff(el, "form"):
        m = FORM_KEY.match(key.strip())
        if m:
            props["form"] = m.group(1)
        elif f"{key.strip()}.json" in forms:
            props["form"] = f"{key.strip()}.json"
        else:
            out.append(make("form_key", *where, value=key))
    groups = el.get(f"{_C}candidateGroups")
    if groups and not {"role", "roleExpression"} & set(props) and not _has_spiff(el, "role", "roleExpression"):
        if GROUP.match(groups.strip()):
            props["role"] = groups.strip()
        else:
            out.append(make("candidate_groups", *where, value=groups))
    ref = el.get(f"{_C}decisionRef")
    if ref and _local(el) == "businessRuleTask":
        ext = _ext(el, create=True)
        if ext.find(f"{_S}calledDecisionId") is None:
            etree.SubElement(ext, f"{_S}calledDecisionId").text = ref
    return out


def _has_spiff(el, *keys: str) -> bool:
    ext = _ext(el)
    if ext is None:
        return False
    return any(p.get("name") in keys for p in ext.findall(f"{_S}properties/{_S}property"))


def _expand(el, props: dict) -> None:
    """What the element templates write as properties, made into BPMN: a timer's `timeDate`,
    a script task's `emit` (kind) with `emitData` (keyword arguments)."""
    local = _local(el)
    if local in _EVENTS and props.get("timeDate"):
        timer = el.find(f"{_B}timerEventDefinition")
        others = [c for c in el if _local(c).endswith("EventDefinition") and c is not timer]
        if timer is None and not others:
            timer = etree.SubElement(el, f"{_B}timerEventDefinition", id=f"{el.get('id')}_timer")
        if timer is not None and not any(_local(c) in ("timeDate", "timeDuration", "timeCycle") for c in timer):
            td = etree.SubElement(timer, f"{_B}timeDate")
            td.set("{http://www.w3.org/2001/XMLSchema-instance}type", "bpmn:tFormalExpression")
            td.text = props["timeDate"]
    if local == "scriptTask" and props.get("emit"):
        data = (props.get("emitData") or "").strip()
        call = f"emit({props['emit']!r}{', ' + data if data else ''})"
        script = el.find(f"{_B}script")
        if script is None:
            script = etree.SubElement(el, f"{_B}script")
        if call not in (script.text or ""):
            script.text = f"{script.text.rstrip()}\n{call}" if (script.text or "").strip() else call


def check_structure(root: etree._Element, filename: str) -> list[Problem]:
    """Ids, references and executability, checked before SpiffWorkflow sees the file."""
    out: list[Problem] = []
    names = names_of(root)
    ids = {el.get("id") for el in root.iter() if isinstance(el.tag, str) and el.get("id")}
    for el in root.iter(f"{_B}*"):
        local = _local(el)
        if local in FLOW_ELEMENTS and not el.get("id"):
            out.append(make("missing_id", filename, el.sourceline, None, el.get("name"), tag=f"bpmn:{local}"))
        refs = []
        if local == "sequenceFlow":
            refs = [("sourceRef", "sequence flow", "连线"), ("targetRef", "sequence flow", "连线")]
        elif local == "boundaryEvent":
            refs = [("attachedToRef", "boundary event", "边界事件")]
        elif local in _EVENT_REFS:
            refs = [(_EVENT_REFS[local][0], *_EVENT_REFS[local][1:])]
        elif el.get("default") is not None:
            refs = [("default", "default flow", "默认路径")]
        owner = el.getparent() if local in _EVENT_REFS and el.getparent() is not None else el
        for attr, what, what_zh in refs:
            ref = el.get(attr)
            if ref is not None and ref not in ids:
                out.append(make("missing_ref", filename, el.sourceline, owner.get("id"), names.get(owner.get("id")),
                                attr=f"{local}.{attr}", ref=ref, what=what, what_zh=what_zh))
    if root.tag == f"{_B}definitions":
        procs = root.findall(f"{_B}process")
        if not any(p.get("isExecutable", "true") == "true" for p in procs):
            first = procs[0] if procs else root
            out.append(make("no_executable_process", filename, first.sourceline, first.get("id"),
                            first.get("name")))
    return out
