"""Files as designers bring them from other modelers (tests/fixtures/modelers/): each one is
deployed, and is either accepted, or refused with the file, the line, the element, what is wrong
in English and Chinese and what to do instead; never a traceback, and nothing is stored.

A file's name says what to expect: `ok_*` is accepted, `refused_<code>__*` is refused with a
problem of that message code (engine/problems.py)."""
from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import func, select

from engine.deploy import Bundle, deploy
from engine.errors import DeployError, Problem
from engine.models import ProcessVersion
from engine.problems import CATALOGUE, from_spiff, from_xsd

ROOT = Path(__file__).resolve().parents[2]
CORPUS = sorted((ROOT / "tests" / "fixtures" / "modelers").glob("*.bpmn"))
FORMS = {p.name: p.read_bytes() for p in (ROOT / "forms").glob("*.json")}


def _versions(db) -> int:
    with db.read() as s:
        return s.scalar(select(func.count()).select_from(ProcessVersion))


def assert_actionable(p: Problem, file: str) -> None:
    assert p.file == file and isinstance(p.line, int) and p.line > 0, str(p)
    assert p.element or p.name, f"names the element: {p}"
    assert p.code in CATALOGUE and p.en and p.zh and p.hint_en and p.hint_zh, str(p)
    assert any("\u4e00" <= ch <= "\u9fff" for ch in p.zh + p.hint_zh), "the Chinese text is Chinese"
    assert str(p).startswith(f"{file}:{p.line}" + (f" [{p.element}]" if p.element else "")), str(p)
    assert p.hint_en in p.message and p.zh in p.message, "callers showing message show the whole text"


def test_the_corpus_is_big_and_covers_every_kind_of_refusal():
    assert len(CORPUS) >= 30
    kinds = {p.stem.split("__")[0].removeprefix("refused_") for p in CORPUS if p.stem.startswith("refused_")}
    assert {"data_store", "service_task", "vendor_element_misplaced", "subprocess_start_events",
            "no_executable_process", "missing_ref", "missing_id", "xml_schema"} <= kinds


@pytest.mark.parametrize("path", CORPUS, ids=[p.stem for p in CORPUS])
def test_each_file_is_accepted_or_refused_with_an_action(db, path):
    bundle = Bundle(bpmn={path.name: path.read_bytes()}, forms=FORMS)
    if path.stem.startswith("ok_"):
        with db.write() as s:
            report = deploy(s, bundle, actor="designer")
        assert report.created, "an accepted file stores a version"
        return
    code = path.stem.split("__")[0].removeprefix("refused_")
    with pytest.raises(DeployError) as ei:
        with db.write() as s:
            deploy(s, bundle, actor="designer")
    assert _versions(db) == 0, "nothing stored"
    for p in ei.value.problems:
        assert_actionable(p, path.name)
    assert code in [p.code for p in ei.value.problems], [str(p) for p in ei.value.problems]


@pytest.mark.parametrize("message, code, args", [
    ("Data Store with name 台账库 has no implementation. ", "data_store", {"store": "台账库"}),
    ("A Service Task must have an operator. ", "service_task", {}),
    ("Exactly one start event is required in a SubWorkflow Task; found 2.. ", "subprocess_start_events", {"count": 2}),
    ("No start event found. ", "no_start_event", {}),
    ("Time Specification Error. Unknown Time Specification. . ", "timer_spec", {}),
    ('No "calledElement" attribute for Call Activity.. ', "call_no_element", {}),
    ('No DMN Diagram available with id "None", Available DMN ids are: . ', "decision_missing", {}),
    ("Cannot resolve dataInputAssociation <Element sourceRef>. ", "data_association", {}),
    ("Duplicate process ID: p", "duplicate_process", {"pid": "p"}),
    ("Process sub is not executable.", "process_not_executable", {"pid": "sub"}),
    ("Signal identifier is missing from bpmn xml", "event_ref_missing", {"kind": "signal"}),
    ("There is no support implemented for this task type.. ", "unsupported_element", {"kind": "the complex gateway"}),
    ("something SpiffWorkflow says that nobody has seen", "parser", {}),
])
def test_each_spiff_message_kind_is_translated(message, code, args):
    p = from_spiff(message, "a.bpmn", 7, "Activity_0x8k2dq", "本级办理", "complexGateway")
    assert p.code == code and args.items() <= p.args.items()
    assert_actionable(p, "a.bpmn")


def test_xml_schema_messages_are_translated():
    vendor = from_xsd("a.bpmn", "Element '{http://www.signavio.com}signavioMetaData': This element is not expected. "
                      "Expected is one of ( {http://www.omg.org/spec/BPMN/20100524/MODEL}incoming ).", 5, "t", "处理")
    assert vendor.code == "vendor_element_misplaced" and "signavioMetaData" in vendor.en and "extensionElements" in vendor.hint_en
    assert_actionable(vendor, "a.bpmn")
    plain = from_xsd("a.bpmn", "Element '{http://www.omg.org/spec/BPMN/20100524/MODEL}task', attribute 'startQuantity': "
                     "'many' is not a valid value of the atomic type 'xs:integer'.", 5, "t", "处理")
    assert plain.code == "xml_schema" and "bpmn:task" in plain.en and plain.en.startswith("XML Schema:")
    assert_actionable(plain, "a.bpmn")


def test_problems_without_a_code_keep_their_old_form():
    p = Problem("f.dmn", "visit intervals do not cover x", 3, "visit_intervals")
    assert str(p) == "f.dmn:3 [visit_intervals]: visit intervals do not cover x" and p.message == p.en
    assert p.code is None and p.text("zh") == p.message
