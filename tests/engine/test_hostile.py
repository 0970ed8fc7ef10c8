"""The attacker's corpus (tests/fixtures/hostile/): every file is refused at deploy with a
located problem, or, when only run time can tell, becomes an incident instead of a crash."""
from __future__ import annotations

import logging
from pathlib import Path

import pytest
from sqlalchemy import text
from sqlalchemy.exc import IntegrityError

from engine import form_validation
from engine.db import Database
from engine.deploy import Bundle, deploy
from engine.errors import DeployError, InvalidData
from engine.migrate import NoSchema, exit_if_no_schema, require_schema
from engine.runtime import Runtime
from tests.engine_helpers import FIXTURES

HOSTILE = FIXTURES / "hostile"
PLAIN = (HOSTILE / "run_mi_computed.bpmn").read_bytes()

REFUSED = {
    "refuse_cycle_forever.bpmn": ("tick", "never ends"),
    "refuse_cycle_count.bpmn": ("tick", "repeats 100000 times"),
    "refuse_cycle_zero.bpmn": ("tick", "more often than"),
    "refuse_date_far.bpmn": ("tick", "years in the future"),
    "refuse_mi_literal.bpmn": ("each", "cardinality 5000 is over the limit"),
    "refuse_nested_expr.bpmn": ("gw", "nested too deeply"),
    "refuse_bad_cell.dmn": ("rule_broken_in", "does not compile"),
    "refuse_remote_ref.json": (None, "points outside the form"),
    "refuse_file_ref.json": (None, "points outside the form"),
    "refuse_backref_pattern.json": (None, "cannot be run in linear time"),
}


def _bundle(name: str) -> Bundle:
    content = (HOSTILE / name).read_bytes()
    if name.endswith(".bpmn"):
        return Bundle(bpmn={name: content})
    if name.endswith(".dmn"):
        return Bundle(bpmn={"plain.bpmn": PLAIN}, dmn={name: content})
    return Bundle(bpmn={"plain.bpmn": PLAIN}, forms={name: content})


@pytest.mark.parametrize("name", sorted(REFUSED))
def test_hostile_file_is_refused_with_a_located_problem(db, name):
    element, words = REFUSED[name]
    with pytest.raises(DeployError) as err, db.write() as s:
        deploy(s, _bundle(name))
    (p,) = err.value.problems
    assert words in p.message
    assert p.file == (f"forms/{name}" if name.endswith(".json") else name)
    if element:
        assert p.element == element and p.line


def test_every_hostile_file_is_in_a_test():
    names = {p.name for p in HOSTILE.iterdir()}
    assert {n for n in names if n.startswith("refuse_")} == set(REFUSED)


def _start(db, name: str, pid: str, data: dict | None = None):
    with db.write() as s:
        deploy(s, Bundle(bpmn={name: (HOSTILE / name).read_bytes()}))
    rt = Runtime(db)
    step = rt.start(pid, data or {})
    return step, rt.instance(step.instance_id)


@pytest.mark.parametrize("name,pid,data,words", [
    ("run_deep_data.bpmn", "deep_data", {}, "nested more than 64 levels"),
    ("run_unstorable.bpmn", "unstorable", {}, "cannot be stored"),
    ("run_mi_computed.bpmn", "mi_computed", {"how_many": 5000}, "is 5000, over the limit of 1000"),
])
def test_run_time_limit_is_an_incident(db, name, pid, data, words):
    step, inst = _start(db, name, pid, data)
    assert step.status == "failed" and inst.status == "failed"
    assert words in inst.error_message


def test_computed_cardinality_within_the_limit_runs(db):
    step, inst = _start(db, "run_mi_computed.bpmn", "mi_computed", {"how_many": 3})
    assert inst.status == "running"


def test_deeply_nested_input_is_refused_before_anything_walks_it(db):
    with db.write() as s:
        deploy(s, Bundle(bpmn={"plain.bpmn": PLAIN}))
    deep: list = []
    for _ in range(5000):
        deep = [deep]
    with pytest.raises(InvalidData):
        Runtime(db).start("mi_computed", {"how_many": 1, "x": deep})


def test_catastrophic_pattern_runs_in_linear_time():
    schema = __import__("json").loads((HOSTILE / "run_redos_pattern.json").read_text())
    assert form_validation.unsafe_parts(schema) == []
    errors = form_validation.validate(schema, {"code": "a" * 5000 + "!"})  # hangs with Python's re
    assert [e.validator for e in errors] == ["pattern"]
    assert form_validation.validate(schema, {"code": "aaaa"}) == []


def test_statement_parameters_stay_out_of_errors_and_logs(db, caplog):
    phone = "13912345678"
    with caplog.at_level(logging.DEBUG, logger="sqlalchemy"):
        with pytest.raises(IntegrityError) as err, db.write() as s:
            s.execute(text("INSERT INTO process_definition (process_id, name) VALUES (:a, :b)"),
                      [{"a": "dup", "b": phone}, {"a": "dup", "b": phone}])
    assert phone not in str(err.value)
    assert phone not in caplog.text


def test_commands_refuse_a_database_without_schema(tmp_path, db):
    fresh = Database(f"sqlite:///{tmp_path / 'fresh.sqlite'}")
    try:
        with pytest.raises(NoSchema, match="run gridflow db upgrade"):
            require_schema(fresh)
        with pytest.raises(SystemExit) as ex:
            exit_if_no_schema(fresh)
        assert "gridflow db upgrade" in str(ex.value.code)
    finally:
        fresh.dispose()
    require_schema(db)  # a migrated database passes


def test_gridflow_deploy_on_a_fresh_database_says_what_to_do(tmp_path):
    """The command a new administrator types first, before `gridflow db upgrade`: a clear message
    and a non-zero exit, no traceback, nothing created."""
    import subprocess
    import sys

    url = f"sqlite:///{tmp_path / 'fresh.sqlite'}"
    out = subprocess.run([sys.executable, "-m", "web.cli", "--database", url, "deploy"], capture_output=True,
                         text=True, timeout=120, cwd=Path(__file__).resolve().parents[2])
    assert out.returncode != 0
    assert "gridflow db upgrade" in out.stderr and "Traceback" not in out.stderr, out.stderr
