"""Every scenario in workflows/scenarios runs as a test, on SQLite and PostgreSQL."""
from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from grid.scenario import Runner

SCENARIOS = sorted((Path(__file__).resolve().parent.parent / "workflows" / "scenarios").glob("*.yaml"))


@pytest.mark.parametrize("path", SCENARIOS, ids=[p.stem for p in SCENARIOS])
def test_scenario(svc, path):
    doc = yaml.safe_load(path.read_text(encoding="utf-8"))
    result = Runner(svc, doc, str(path)).run()
    assert result.passed, str(result)
