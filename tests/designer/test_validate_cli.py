"""`gridflow validate` for the designer's loop: --format json for editors (file, path, line,
element, code, message and hint in both languages) and --watch, which validates again on a save."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
GOOD = (ROOT / "tests" / "fixtures" / "four_tasks.bpmn").read_text(encoding="utf-8")
BROKEN = (ROOT / "tests" / "fixtures" / "bogus_task.bpmn").read_text(encoding="utf-8")  # an unknown element


def _env(tmp_path: Path) -> dict:
    return {**os.environ, "GRIDFLOW_DATABASE_URL": f"sqlite:///{tmp_path}/cli.db", "PYTHONUNBUFFERED": "1"}


def _gridflow(tmp_path: Path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "web.cli", *args], cwd=ROOT, env=_env(tmp_path),
                          capture_output=True, text=True, timeout=120)


def _bundle(tmp_path: Path, text: str) -> Path:
    wf = tmp_path / "workflows"
    wf.mkdir(exist_ok=True)
    forms = tmp_path / "forms"
    forms.mkdir(exist_ok=True)
    (forms / "small.json").write_text((ROOT / "tests" / "fixtures" / "forms" / "small.json").read_text())
    (wf / "one.bpmn").write_text(text, encoding="utf-8")
    return wf


def test_json_names_file_line_and_element_of_a_broken_file(tmp_path):
    wf = _bundle(tmp_path, BROKEN)
    res = _gridflow(tmp_path, "validate", "--format", "json", str(wf))
    assert res.returncode == 1, res.stderr
    problems = json.loads(res.stdout)
    assert isinstance(problems, list) and problems
    p = next(p for p in problems if p["element"] == "bad")
    assert p["file"] == "one.bpmn" and p["path"] == str(wf / "one.bpmn")
    assert p["line"] == 5 and p["name"] == "坏元素"
    assert p["code"] == "xml_schema"
    assert "bogusTask" in p["message"]["en"] and "BPMN 2.0" in p["message"]["zh"]
    assert p["hint"]["en"] and p["hint"]["zh"]


def test_json_of_a_valid_file_is_an_empty_list(tmp_path):
    wf = _bundle(tmp_path, GOOD)
    res = _gridflow(tmp_path, "validate", "--format", "json", str(wf), "--forms", str(tmp_path / "forms"))
    assert res.returncode == 0, res.stdout + res.stderr
    assert json.loads(res.stdout) == []


def _read_until(proc: subprocess.Popen, predicate, limit: float = 90.0) -> list[str]:
    """Lines from proc's stdout until one satisfies predicate (a generous bound, not a timing assertion)."""
    lines: list[str] = []
    deadline = time.monotonic() + limit
    while time.monotonic() < deadline:
        line = proc.stdout.readline()
        if not line:
            break
        lines.append(line)
        if predicate(line):
            return lines
    raise AssertionError(f"no such line in: {lines!r}")


def test_watch_validates_again_when_a_file_changes_and_ctrl_c_exits_0(tmp_path):
    wf = _bundle(tmp_path, BROKEN)
    proc = subprocess.Popen([sys.executable, "-m", "web.cli", "validate", "--watch", "--format", "json", str(wf)],
                            cwd=ROOT, env=_env(tmp_path), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        first = _read_until(proc, lambda line: line.startswith("["))
        assert any(p["element"] == "bad" for p in json.loads(first[-1]))
        target = wf / "one.bpmn"
        target.write_text(BROKEN.replace('id="bad"', 'id="worse"'), encoding="utf-8")
        st = target.stat()
        os.utime(target, ns=(st.st_atime_ns, st.st_mtime_ns + 1_000_000_000))  # a coarse-mtime file system too
        second = _read_until(proc, lambda line: line.startswith("["))
        ids = {p["element"] for p in json.loads(second[-1])}
        assert "worse" in ids and "bad" not in ids
    finally:
        proc.send_signal(signal.SIGINT)
        try:
            rc = proc.wait(timeout=60)
        finally:
            if proc.poll() is None:
                proc.kill()
            proc.stdout.close()
            proc.stderr.close()
    assert rc == 0
