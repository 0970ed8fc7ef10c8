"""Every scenario in workflows/scenarios runs as a test, on SQLite and PostgreSQL."""
from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import pytest
import yaml
from sqlalchemy import select

from engine.models import ProcessVersion
from grid.cases.scenario import Runner, prepare

ROOT = Path(__file__).resolve().parents[2]
SCENARIOS = sorted((ROOT / "workflows" / "scenarios").glob("*.yaml"))


@pytest.mark.parametrize("path", SCENARIOS, ids=[p.stem for p in SCENARIOS])
def test_scenario(svc, path):
    doc = yaml.safe_load(path.read_text(encoding="utf-8"))
    result = Runner(svc, doc, str(path)).run()
    assert result.passed, str(result)


def test_designers_may_make_the_overdue_timer_non_interrupting(db, tmp_path):
    """The same warning/overdue scenario holds when the diagram's overdue timer is non-interrupting:
    its path still records 问责 and ends the level (terminate end), and the inbox still shows it as due."""
    wf, forms = tmp_path / "workflows", tmp_path / "forms"
    shutil.copytree(ROOT / "workflows", wf)
    shutil.copytree(ROOT / "forms", forms)
    bpmn = wf / "handle_level.bpmn"
    text = bpmn.read_text(encoding="utf-8")
    tag = re.search(r'<bpmn:boundaryEvent id="overdue_timer"[^>]*>', text).group(0)
    flipped = re.sub(r'\s+cancelActivity="[^"]*"', "", tag).replace('id="overdue_timer"',
                                                                     'id="overdue_timer" cancelActivity="false"')
    bpmn.write_text(text.replace(tag, flipped), encoding="utf-8")
    svc = prepare(db, wf, forms)
    with svc.db.read() as s:
        doc = json.loads(s.scalar(select(ProcessVersion.spec_json).where(ProcessVersion.process_id == "handle_level")))
    assert doc["spec"]["task_specs"]["overdue_timer"]["cancel_activity"] is False, "the variant is non-interrupting"
    path = ROOT / "workflows" / "scenarios" / "06_warning_then_overdue.yaml"
    result = Runner(svc, yaml.safe_load(path.read_text(encoding="utf-8")), str(path)).run()
    assert result.passed, str(result)
