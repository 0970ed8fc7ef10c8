"""Workflow state serialization without the spec.

The spec is stored once per version and cached as objects; an instance row holds only
its state. A custom converter replaces SpiffWorkflow's BpmnWorkflowConverter so that
neither serializing nor restoring touches the spec.
"""
from __future__ import annotations

import json
from copy import deepcopy
from uuid import UUID

from SpiffWorkflow.bpmn.serializer import BpmnWorkflowSerializer
from SpiffWorkflow.bpmn.serializer.default.workflow import BpmnWorkflowConverter, WorkflowConverter
from SpiffWorkflow.bpmn.serializer.workflow import VERSION
from SpiffWorkflow.bpmn.workflow import BpmnWorkflow
from SpiffWorkflow.spiff.serializer.config import SPIFF_CONFIG

from . import limits

limits.install()  # every path that loads a workflow comes through here: no depth-1000 walks

SERIALIZER = BpmnWorkflowSerializer(BpmnWorkflowSerializer.configure(SPIFF_CONFIG))
STATE_FORMAT = "gridflow-state-1/" + VERSION


class StateOnlyConverter(BpmnWorkflowConverter):
    def to_dict(self, workflow):
        dct = WorkflowConverter.to_dict(self, workflow)
        dct["subprocesses"] = self.mapping_to_dict(workflow.subprocesses)
        dct["bpmn_events"] = self.registry.convert(workflow.bpmn_events)
        return dct

    def from_dict(self, dct, spec=None, subprocess_specs=None, script_engine=None):
        workflow = self.target_class(spec, subprocess_specs, script_engine=script_engine, deserializing=True)
        workflow.tasks = self.mapping_from_dict(dct["tasks"], UUID, workflow=workflow)
        workflow.task_tree = workflow.tasks.get(UUID(dct["root"]))
        self.set_default_attributes(workflow, dct)
        self.subprocesses_from_dict(dct["subprocesses"], workflow)
        workflow.bpmn_events = self.registry.restore(dct.pop("bpmn_events", []))
        return workflow


_config = deepcopy(SPIFF_CONFIG)
_config[BpmnWorkflow] = StateOnlyConverter
STATE = BpmnWorkflowSerializer(BpmnWorkflowSerializer.configure(_config))


def dump_state(wf: BpmnWorkflow) -> str:
    reg = STATE.registry
    reg._encoder_mode = True
    try:
        dct = reg.convert(wf)
        dct["format"] = STATE_FORMAT
        return json.dumps(dct, cls=STATE._encoder_cls, separators=(",", ":"))
    finally:
        reg._encoder_mode = False


def load_state(state_json: str, spec, subprocess_specs, script_engine) -> BpmnWorkflow:
    dct = json.loads(state_json, cls=STATE.json_decoder_cls)
    fmt = dct.pop("format", None)
    if fmt != STATE_FORMAT:
        raise ValueError(f"stored state format {fmt!r} does not match {STATE_FORMAT!r}; re-serialize instances")
    return STATE.registry.restore(dct, spec=spec, subprocess_specs=subprocess_specs, script_engine=script_engine)


def load_specs(spec_json: str):
    doc = json.loads(spec_json)
    spec = SERIALIZER.registry.restore(doc["spec"])
    subs = {k: SERIALIZER.registry.restore(v) for k, v in doc["subprocess_specs"].items()}
    return spec, subs
