"""Deploying: versions, no-op redeploys, and refusal of invalid or malicious files."""
from __future__ import annotations

import pytest
from sqlalchemy import func, select

from engine.deploy import Bundle, deploy
from engine.errors import DeployError
from engine.models import ProcessDefinition, ProcessVersion
from engine.runtime import Runtime
from tests.engine_helpers import FIXTURES, deploy_fixture

FOUR = (FIXTURES / "four_tasks.bpmn").read_bytes()
SMALL_FORM = (FIXTURES / "forms" / "small.json").read_bytes()


def bundle(bpmn: bytes, forms: dict | None = None, name: str = "p.bpmn") -> Bundle:
    return Bundle(bpmn={name: bpmn}, forms=forms if forms is not None else {"small.json": SMALL_FORM})


def version_count(db) -> int:
    with db.read() as s:
        return s.scalar(select(func.count()).select_from(ProcessVersion))


def active_number(db, pid="four_tasks") -> int | None:
    with db.read() as s:
        d = s.get(ProcessDefinition, pid)
        return s.get(ProcessVersion, d.active_version_id).number if d and d.active_version_id else None


def test_deploy_versions_and_noop_redeploy(db):
    r1 = deploy_fixture(db, actor="ann", tag="first")
    assert [(v.process_id, v.number) for v in r1.created] == [("four_tasks", 1)]
    v1 = r1.created[0]
    assert len(v1.sha256) == 64 and v1.deployed_by == "ann" and v1.tag == "first"
    assert "task_specs" in v1.spec_json and "four_tasks.bpmn" in v1.files and "small.json" in v1.forms
    r2 = deploy_fixture(db)
    assert r2.created == [] and [v.number for v in r2.unchanged] == [1]
    assert version_count(db) == 1
    # a real change makes v2 and activates it
    changed = FOUR.replace(b'name="Task four"', b'name="Task four (new)"')
    with db.write() as s:
        r3 = deploy(s, bundle(changed), actor="bob")
    assert [v.number for v in r3.created] == [2]
    assert active_number(db) == 2
    # a changed form alone is a new version too (forms are versioned with their process)
    with db.write() as s:
        r4 = deploy(s, bundle(changed, {"small.json": SMALL_FORM.replace(b"200", b"300")}))
    assert [v.number for v in r4.created] == [3]


def test_new_instances_use_active_version_unless_named(db):
    deploy_fixture(db)
    with db.write() as s:
        deploy(s, bundle(FOUR.replace(b'name="Task one"', b'name="Task 1"')))
    rt = Runtime(db)
    with db.read() as s:
        ids = dict(s.execute(select(ProcessVersion.number, ProcessVersion.id)).all())
    assert rt.start("four_tasks", {"unit": "U"}).version_id == ids[2]
    assert rt.start("four_tasks", {"unit": "U"}, version_id=ids[1]).version_id == ids[1]


def _refused(db, b: Bundle) -> DeployError:
    deploy_fixture(db)
    before = (version_count(db), active_number(db))
    with pytest.raises(DeployError) as ei:
        with db.write() as s:
            deploy(s, b)
    assert (version_count(db), active_number(db)) == before, "nothing stored, active version unchanged"
    return ei.value


def test_xsd_error_names_file_line_and_element(db):
    bad = FOUR.replace(b'<bpmn:endEvent id="end">', b'<bpmn:endEvent id="end" bogus="1"><bpmn:nonsense/>')
    err = _refused(db, bundle(bad, name="broken.bpmn"))
    p = err.problems[0]
    assert p.file == "broken.bpmn" and p.line and "XML Schema" in p.message
    assert p.element == "end"
    assert "broken.bpmn:" in str(err)


def test_spiff_parse_error_names_element(db):
    bad = FOUR.replace(b'<bpmn:sequenceFlow id="f4" sourceRef="t4" targetRef="end"/>',
                       b'<bpmn:sequenceFlow id="f4" sourceRef="t4" targetRef="nowhere"/>')
    err = _refused(db, bundle(bad, name="flow.bpmn"))
    assert any(p.file == "flow.bpmn" for p in err.problems)
    assert any("nowhere" in str(p) or p.element in ("f4", "nowhere") for p in err.problems)


def test_missing_form_and_bad_schema_refused(db):
    err = _refused(db, bundle(FOUR, forms={}))
    assert any("forms/small.json does not exist" in p.message and p.element == "t1" and p.line
               for p in err.problems)
    err = _refused(db, bundle(FOUR, forms={"small.json": b'{"type": "objekt"}'}))
    assert any(p.file == "forms/small.json" and "JSON Schema" in p.message for p in err.problems)


def test_unquoted_timer_refused(db):
    err = _refused(db, bundle(FOUR.replace(b'"PT1H"', b"PT1H")))
    assert any(p.element == "t2_remind" and "not quoted" in p.message for p in err.problems)


def test_script_refused_by_sandbox_at_deploy(db):
    bad = FOUR.replace(b"reminded = True", b"import os\nreminded = True")
    err = _refused(db, bundle(bad))
    assert any(p.element == "remind" and "sandbox" in p.message for p in err.problems)


BILLION_LAUGHS = b"""<?xml version="1.0"?>
<!DOCTYPE lolz [
 <!ENTITY lol "lol">
 <!ENTITY lol2 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">
 <!ENTITY lol3 "&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;">
 <!ENTITY lol4 "&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;">
]>
<bpmn:definitions xmlns:bpmn="http://www.omg.org/spec/BPMN/20100524/MODEL" id="d" targetNamespace="x">
  <bpmn:process id="lol" name="&lol4;" isExecutable="true"/>
</bpmn:definitions>"""

XXE = b"""<?xml version="1.0"?>
<!DOCTYPE d [ <!ENTITY xxe SYSTEM "file:///etc/passwd"> <!ENTITY net SYSTEM "http://127.0.0.1:9/x"> ]>
<bpmn:definitions xmlns:bpmn="http://www.omg.org/spec/BPMN/20100524/MODEL" id="d" targetNamespace="x">
  <bpmn:process id="xxe" name="&xxe;&net;" isExecutable="true"/>
</bpmn:definitions>"""


@pytest.mark.parametrize("payload,name", [(BILLION_LAUGHS, "laughs.bpmn"), (XXE, "xxe.bpmn")])
def test_malicious_xml_rejected(db, payload, name):
    err = _refused(db, Bundle(bpmn={name: payload}))
    p = err.problems[0]
    assert p.file == name and p.line == 2 and "DOCTYPE" in p.message


def test_doctype_after_a_long_comment_is_still_refused(db):
    payload = b"<?xml version=\"1.0\"?>\n<!-- " + b"x" * 10000 + b" -->\n" + XXE.split(b"\n", 1)[1]
    err = _refused(db, Bundle(bpmn={"late.bpmn": payload}))
    assert err.problems[0].line == 3 and "DOCTYPE" in err.problems[0].message


def test_malformed_xml_reports_line(db):
    err = _refused(db, Bundle(bpmn={"cut.bpmn": FOUR[:600]}))
    assert err.problems[0].file == "cut.bpmn" and err.problems[0].line


def test_escape_in_a_timer_expression_is_refused_at_deploy(db):
    err = _refused(db, bundle(FOUR.replace(b'"PT1H"', b"__import__('os').getpid()")))
    assert any(p.element == "t2_remind" and "sandbox" in p.message for p in err.problems)


def test_escape_in_an_assignment_expression_is_refused_at_deploy(db):
    bad = FOUR.replace(b'<spiffworkflow:property name="unit" value="unit"/>',
                       b'<spiffworkflow:property name="unit" value="().__class__"/>', 1)
    err = _refused(db, bundle(bad))
    assert any(p.element == "t1" and "__class__" in p.message for p in err.problems)
