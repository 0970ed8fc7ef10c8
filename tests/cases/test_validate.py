"""`gridflow validate` catches designer mistakes, naming the file and the element."""
from __future__ import annotations

import re
import shutil
from pathlib import Path

import pytest
from click.testing import CliRunner

from web.cli import main

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def bundle(tmp_path) -> tuple[Path, Path]:
    wf, forms = tmp_path / "workflows", tmp_path / "forms"
    shutil.copytree(ROOT / "workflows", wf, ignore=shutil.ignore_patterns("scenarios"))
    shutil.copytree(ROOT / "forms", forms)
    return wf, forms


def run(wf: Path, forms: Path):
    return CliRunner().invoke(main, ["validate", str(wf), "--forms", str(forms)])


def edit(path: Path, old: str, new: str) -> None:
    text = path.read_text(encoding="utf-8")
    assert old in text, old
    path.write_text(text.replace(old, new, 1), encoding="utf-8")


def refused(bundle, name: str, old: str, new: str) -> str:
    """The output of validating the bundle with one edit in workflows/`name`, which must be refused."""
    wf, forms = bundle
    edit(wf / name, old, new)
    r = run(wf, forms)
    assert r.exit_code == 1
    return r.output


def test_the_shipped_workflows_validate(bundle):
    r = run(*bundle)
    assert r.exit_code == 0, r.output
    assert "dispute_case" in r.output and "handle_level" in r.output


def test_missing_form_file(bundle):
    wf, forms = bundle
    (forms / "verify.json").unlink()
    r = run(wf, forms)
    assert r.exit_code == 1
    assert "dispute_case.bpmn" in r.output and "[verify]" in r.output and "forms/verify.json does not exist" in r.output


def test_unquoted_timer_expression(bundle):
    text = (bundle[0] / "handle_level.bpmn").read_text(encoding="utf-8")
    m = re.search(r"<bpmn:timeDate[^>]*>([^<]+)</bpmn:timeDate>", text)
    out = refused(bundle, "handle_level.bpmn", m.group(0), m.group(0).replace(m.group(1), "P3D"))
    assert "handle_level.bpmn" in out and "not quoted" in out and "_timer]" in out


def test_dmn_gap(bundle):
    out = refused(bundle, "time_limits.dmn", '<text>"county"</text>', '<text>"countyx"</text>')
    assert "time_limits.dmn" in out and "level=county" in out and "[time_limits]" in out


def test_broken_call_activity(bundle):
    out = refused(bundle, "dispute_case.bpmn", 'calledElement="handle_level"', 'calledElement="handle_levle"')
    assert "dispute_case.bpmn:" in out and "[call_handle_level]" in out and "handle_levle" in out
