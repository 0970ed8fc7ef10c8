"""Version administration: list, new version (CLI and upload) with validation report, activate and
roll back, pilot in one county, retire, audit; the admin pages and the `gridflow version` commands."""
from __future__ import annotations

import io
import zipfile

import pytest
from click.testing import CliRunner
from sqlalchemy import func, select

from engine import clock
from engine.errors import Conflict, DeployError
from engine.migration import Migrator, Selection
from engine.models import Instance, ProcessDefinition, ProcessVersion, VersionPin
from engine.version_models import VersionEvent
from engine.versions import (
    activate,
    audit,
    bundle_from_upload,
    choices,
    deploy_bundle,
    list_versions,
    pin,
    retire,
    unpin,
)
from grid.org import service as org
from tests.versions_helpers import ROOT, START, V2, deploy_v2, v2_bundle, v3_bundle, version_of
from tests.web_helpers import admin_client, session_as

COUNTY_XC = "420602000000"  # 襄城区, where 江冉冉 reports
COUNTY_FC = "420606000000"  # 樊城区
FC_GRID_WORKER = "gw.420606001001001"


def _path(svc, code: str) -> str:
    with svc.db.read() as s:
        return org.get_unit(s, code).path


def _counts(svc) -> dict:
    with svc.db.read() as s:
        return {t.__name__: s.scalar(select(func.count()).select_from(t))
                for t in (ProcessVersion, VersionEvent, VersionPin, Instance)} | {
            "active": dict(s.execute(select(ProcessDefinition.process_id, ProcessDefinition.active_version_id)).all())}


def test_list_versions_with_counts_and_audit(world, svc):
    world.at_verification("c")
    world.report("open")
    world.verify_satisfied("c")
    report, checks = deploy_v2(svc, actor="alice", tag="2026-q2")
    assert len(checks) == 5 and "record_agreement" not in " ".join(checks)
    rows = {(r["process_id"], r["number"]): r for r in list_versions(svc.db, "dispute_case")}
    v1, v2 = rows[("dispute_case", 1)], rows[("dispute_case", 2)]
    assert (v1["open"], v1["closed"], v1["active"]) == (1, 1, True)
    assert (v2["open"], v2["closed"], v2["active"], v2["tag"], v2["deployed_by"]) == (0, 0, False, "2026-q2", "alice")
    assert len(v2["sha256"]) == 64 and v2["deployed_at"] == START
    # forms are versioned with their process
    with svc.db.read() as s:
        assert "record_agreement.json" in s.get(ProcessVersion, v2["id"]).forms
        assert "record_agreement.json" not in s.get(ProcessVersion, v1["id"]).forms
    ev = [e for e in audit(svc.db, "dispute_case") if e["action"] == "deploy"]
    assert ev[0]["actor"] == "alice" and ev[0]["number"] == 2 and ev[0]["data"]["checks"] == [c.as_dict() for c in checks]
    # deploying the same bundle again creates nothing
    again, _ = deploy_v2(svc)
    assert not again.created and {v.number for v in again.unchanged} == {2}


def test_activate_and_roll_back(world, svc, fake):
    deploy_v2(svc)
    world.report("before")
    assert world.instance("before").version_id == version_of(svc, "dispute_case", 1).id
    activate(svc.db, "dispute_case", 2, actor="alice")
    world.report("on_v2")
    assert world.instance("on_v2").version_id == version_of(svc, "dispute_case", 2).id
    fake.advance(clock.duration("PT1H"))
    activate(svc.db, "dispute_case", 1, actor="bob")  # roll back
    world.report("rolled_back")
    assert world.instance("rolled_back").version_id == version_of(svc, "dispute_case", 1).id
    # running cases keep their own version (and its forms)
    assert world.instance("on_v2").version_id == version_of(svc, "dispute_case", 2).id
    acts = [e for e in audit(svc.db, "dispute_case") if e["action"] == "activate"]
    assert [(e["actor"], e["number"], e["data"]["rollback"]) for e in acts[:2]] == [("bob", 1, True),
                                                                                    ("alice", 2, False)]
    assert acts[0]["at"] == START + clock.duration("PT1H")


def test_pilot_one_county_on_v3_rest_on_v2(world, svc):
    deploy_v2(svc, activate=True)
    deploy_bundle(svc.db, v3_bundle(), actor="alice", tag="v3")
    v2, v3 = version_of(svc, "dispute_case", 2), version_of(svc, "dispute_case", 3)
    assert v3 is not None and v3.state == "deployed"
    pin(svc.db, "dispute_case", _path(svc, COUNTY_XC), 3, actor="alice", label="襄城区")
    world.report("xc")  # 江冉冉's grid is in 襄城区
    world.report("fc", who=FC_GRID_WORKER)
    assert world.instance("xc").version_id == v3.id
    assert world.instance("fc").version_id == v2.id
    row = next(r for r in list_versions(svc.db, "dispute_case") if r["number"] == 3)
    assert row["pins"] == [_path(svc, COUNTY_XC)] and not row["active"]
    # a pilot on a more specific unit wins over the county's
    pin(svc.db, "dispute_case", _path(svc, "420602003000"), 2, actor="alice")
    world.report("street")
    assert world.instance("street").version_id == v2.id
    unpin(svc.db, "dispute_case", _path(svc, "420602003000"), actor="alice")
    unpin(svc.db, "dispute_case", _path(svc, COUNTY_XC), actor="carol")
    world.report("xc_after")
    assert world.instance("xc_after").version_id == v2.id
    trail = [(e["action"], e["actor"], e["scope"]) for e in audit(svc.db, "dispute_case")
             if e["action"] in ("pin", "unpin")]
    assert trail[0] == ("unpin", "carol", _path(svc, COUNTY_XC))
    assert ("pin", "alice", _path(svc, COUNTY_XC)) in trail


def test_retire(world, svc):
    world.report("old")  # an open case on v1
    deploy_v2(svc)
    with pytest.raises(Conflict, match="open instance"):
        retire(svc.db, "dispute_case", 1, actor="alice")
    activate(svc.db, "dispute_case", 2, actor="alice")
    with pytest.raises(Conflict, match="open instance"):
        retire(svc.db, "dispute_case", 1, actor="alice")
    with pytest.raises(Conflict, match="active"):
        retire(svc.db, "dispute_case", 2, actor="alice")
    pin(svc.db, "dispute_case", _path(svc, COUNTY_XC), 1, actor="alice")
    svc.runtime.cancel(world.case("old").instance_id, actor="alice", reason="test")
    with pytest.raises(Conflict, match="pinned"):
        retire(svc.db, "dispute_case", 1, actor="alice")
    unpin(svc.db, "dispute_case", _path(svc, COUNTY_XC), actor="alice")
    before = _counts(svc)
    retire(svc.db, "dispute_case", 1, actor="alice")
    assert version_of(svc, "dispute_case", 1).state == "retired"
    assert [r["number"] for r in choices(svc.db, "dispute_case")] == [2]
    with pytest.raises(Conflict, match="retired"):
        activate(svc.db, "dispute_case", 1, actor="alice")
    with pytest.raises(Conflict, match="retired"):
        pin(svc.db, "dispute_case", _path(svc, COUNTY_XC), 1, actor="alice")
    with pytest.raises(Conflict, match="retired"):
        Migrator(svc.runtime).dry_run(Selection("dispute_case"), 1)
    after = _counts(svc)
    assert after["VersionEvent"] == before["VersionEvent"] + 1 and after["active"] == before["active"]
    assert audit(svc.db, "dispute_case")[0]["action"] == "retire"


def _zip(files: dict[str, bytes]) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        for name, content in files.items():
            z.writestr(name, content)
    return buf.getvalue()


def _v2_files() -> dict[str, bytes]:
    b = v2_bundle()
    return {**b.bpmn, **b.dmn, **{f"forms/{k}": v for k, v in b.forms.items()}}


def test_upload_bundle_zip_or_files():
    files = _v2_files()
    b = bundle_from_upload([("v2.zip", _zip(files))])
    assert set(b.bpmn) == {"dispute_case.bpmn", "handle_level.bpmn"} and "record_agreement.json" in b.forms
    b2 = bundle_from_upload(list(files.items()))
    assert b2.bpmn == b.bpmn and b2.forms == b.forms
    with pytest.raises(DeployError, match="zip"):
        bundle_from_upload([("x.zip", b"not a zip")])
    with pytest.raises(DeployError, match="not a BPMN"):
        bundle_from_upload([("evil.exe", b"MZ")])


# ---- the admin pages -----------------------------------------------------------------------------
@pytest.fixture
def admin(svc, fake):
    return admin_client(svc, locale="en")  # the assertions read the English pages


def test_admin_only(admin, svc):
    with svc.db.read() as s:
        worker = org.staff_by_username(s, "jiangranran").id
    session_as(admin, worker)
    assert admin.get("/admin/versions").status_code == 403
    assert admin.post("/admin/versions/dispute_case/1/retire").status_code == 403


def test_upload_refused_with_a_clear_report_and_nothing_changes(admin, svc):
    before = _counts(svc)
    files = _v2_files()
    broken = dict(files)
    broken["handle_level.bpmn"] = files["handle_level.bpmn"].replace(
        b'<bpmn:exclusiveGateway id="gw_agreement"', b'<bpmn:exclusiveGatewayy id="gw_agreement"')
    resp = admin.post("/admin/versions/upload", data={
        "files": [(io.BytesIO(_zip(broken)), "v2.zip")], "tag": "broken"}, content_type="multipart/form-data")
    assert resp.status_code == 422
    page = resp.get_data(as_text=True)
    assert "nothing was stored" in page and "handle_level.bpmn" in page and "exclusiveGatewayy" in page
    assert _counts(svc) == before

    missing = {k: v for k, v in files.items() if k != "forms/record_agreement.json"}
    resp = admin.post("/admin/versions/upload", data={
        "files": [(io.BytesIO(c), n.split("/")[-1]) for n, c in missing.items()]}, content_type="multipart/form-data")
    assert resp.status_code == 422
    page = resp.get_data(as_text=True)
    assert "forms/record_agreement.json does not exist" in page and "record_agreement" in page
    assert _counts(svc) == before


def test_admin_upload_validate_compare_activate_migrate(admin, world, svc):
    world.at_village_dispatch("a")
    world.at_township_mediation("b")
    resp = admin.get("/admin/versions")
    assert resp.status_code == 200 and "dispute_case" in resp.get_data(as_text=True)
    resp = admin.post("/admin/versions/upload", data={"files": [(io.BytesIO(_zip(_v2_files())), "v2.zip")],
                                                      "tag": "v2"}, content_type="multipart/form-data")
    page = resp.get_data(as_text=True)
    assert resp.status_code == 200 and "Validation passed" in page and "dispute_case v2" in page
    assert version_of(svc, "dispute_case", 2).deployed_by == "admin1"
    with svc.db.read() as s:
        assert s.get(ProcessDefinition, "dispute_case").active_version_id == version_of(svc, "dispute_case", 1).id
    page = admin.get("/admin/versions/dispute_case/2").get_data(as_text=True)
    assert "record_agreement" in page and "overdue_days" in page and "XML Schema" in page
    page = admin.get("/admin/versions/dispute_case/compare?a=1&b=2").get_data(as_text=True)
    assert "compare-diagrams" in page and "bpmn-navigated-viewer" in page and "记录调解协议" in page
    data = admin.get("/admin/versions/dispute_case/compare.json?a=1&b=2").get_json()
    hl = next(d for d in data["diagrams"] if d["file"] == "handle_level.bpmn")
    assert hl["markers_b"]["record_agreement"] == "added" and "<bpmn:definitions" in hl["b"]

    resp = admin.post("/admin/versions/dispute_case/2/activate")
    assert resp.status_code == 302
    with svc.db.read() as s:
        assert s.get(ProcessDefinition, "dispute_case").active_version_id == version_of(svc, "dispute_case", 2).id
    resp = admin.post("/admin/versions/dispute_case/pins", data={"unit": COUNTY_XC, "number": "1"})
    assert resp.status_code == 302
    assert "襄城区" in admin.get("/admin/versions").get_data(as_text=True)
    admin.post("/admin/versions/dispute_case/pins/delete", data={"scope": _path(svc, COUNTY_XC)})

    assert admin.get("/admin/migrations?process=dispute_case").status_code == 200
    resp = admin.post("/admin/migrations/dry-run", data={"process_id": "dispute_case", "to": "2", "from": "1",
                                                         "unit": COUNTY_XC})
    assert resp.status_code == 302
    run_url = resp.headers["Location"]
    page = admin.get(run_url).get_data(as_text=True)
    assert "1 of 2 case(s) can move" in page and "in progress" in page
    dry_id = int(run_url.rstrip("/").split("/")[-1])
    resp = admin.post(f"/admin/migrations/{dry_id}/execute")
    exec_url = resp.headers["Location"]
    exec_id = int(exec_url.rstrip("/").split("/")[-1])
    assert "migration-progress" in admin.get(exec_url).get_data(as_text=True)
    state = admin.post(f"/admin/migrations/{exec_id}/step").get_json()
    assert state["status"] == "done" and state["migrated"] == 1 and state["total"] == 1
    assert world.instance("a").version_id == version_of(svc, "dispute_case", 2).id
    page = admin.get(exec_url).get_data(as_text=True)
    assert "Revert" in page
    resp = admin.post(f"/admin/instances/{world.case('a').instance_id}/revert")
    assert resp.status_code == 302
    assert world.instance("a").version_id == version_of(svc, "dispute_case", 1).id
    page = admin.get("/admin/audit").get_data(as_text=True)
    for action in ("deploy", "activate", "pin", "unpin", "migrate", "revert"):
        assert f"<td>{action}</td>" in page, action


# ---- the CLI -------------------------------------------------------------------------------------
def test_cli_version_commands(world, svc, monkeypatch):
    from web.cli import main

    world.at_village_dispatch("a")
    world.at_township_mediation("b")
    monkeypatch.setenv("GRIDFLOW_DATABASE_URL", svc.db.url_with_password)
    monkeypatch.setenv("GRIDFLOW_WORKFLOWS", str(V2 / "workflows"))
    monkeypatch.setenv("GRIDFLOW_FORMS", str(V2 / "forms"))
    r = CliRunner()
    res = r.invoke(main, ["version", "new", "--tag", "v2", "--actor", "alice"])
    assert res.exit_code == 0, res.output
    assert "validation passed" in res.output and "record_agreement" in res.output
    assert "gridflow version activate dispute_case 2" in res.output
    res = r.invoke(main, ["version", "compare", "dispute_case", "1", "2"])
    assert "overdue_days 5 → 4" in res.output and "+ record_agreement" in res.output
    res = r.invoke(main, ["version", "migrate", "dispute_case", "--to", "2", "--dry-run"])
    assert res.exit_code == 0 and "1 can move, 1 cannot" in res.output and "in progress" in res.output
    res = r.invoke(main, ["version", "migrate", "dispute_case", "--to", "2", "--yes", "--actor", "alice"])
    assert res.exit_code == 0, res.output
    assert "migrated 1, blocked 0" in res.output
    res = r.invoke(main, ["version", "revert", world.case("a").case_no, "--actor", "alice"])
    assert res.exit_code == 0, res.output
    res = r.invoke(main, ["version", "activate", "dispute_case", "2"])
    assert res.exit_code == 0
    res = r.invoke(main, ["version", "pin", "dispute_case", "1", "--unit", COUNTY_FC])
    assert res.exit_code == 0 and "樊城区" in res.output
    res = r.invoke(main, ["version", "retire", "dispute_case", "1"])
    assert res.exit_code == 1 and "open instance" in res.output
    res = r.invoke(main, ["version", "list", "dispute_case"])
    assert "pinned: 420600000000/420606000000/" in res.output
    res = r.invoke(main, ["version", "audit", "dispute_case"])
    for action in ("deploy", "activate", "pin", "migrate", "revert"):
        assert action in res.output
    assert ROOT.exists()


def test_each_case_renders_the_forms_of_its_own_version(svc, fake_clock):
    """A form changed in a new version shows only on cases started on that version."""
    import json

    from engine.deploy import Bundle
    from engine.models import WorkItem
    from engine.versions import deploy_bundle
    from grid.cases import pages
    from grid.cases import service as cases

    gw, head = svc_id(svc, "jiangranran"), svc_id(svc, "qiuyun")
    report = {"category": "neighbour", "description": "楼上住户夜间噪音扰民", "location": {"text": "檀溪社区"},
              "settled_on_spot": False}
    old_case = cases.report(svc, gw, report)
    bundle = Bundle.from_dirs(ROOT / "workflows", ROOT / "forms")
    form = json.loads(bundle.forms["dispatch.json"])
    form["properties"]["urgency"] = {"type": "string", "title": "紧急程度", "x-title": {"en": "Urgency"}}
    bundle.forms["dispatch.json"] = json.dumps(form, ensure_ascii=False).encode("utf-8")
    report_v, _ = deploy_bundle(svc.db, bundle, actor="admin", tag="urgency", activate=True)
    assert [v.process_id for v in report_v.created] == ["dispute_case", "handle_level"]
    new_case = cases.report(svc, gw, report)

    def dispatch_schema(case) -> dict:
        with svc.db.read() as s:
            guid = s.scalar(select(WorkItem.task_guid).where(WorkItem.instance_id == case.instance_id,
                                                             WorkItem.task_spec == "dispatch"))
        return pages.task_page(svc, head, guid).schema

    assert "urgency" not in dispatch_schema(old_case)["properties"]
    assert "urgency" in dispatch_schema(new_case)["properties"]


def svc_id(svc, username: str) -> str:
    from grid.org import service as org

    with svc.db.read() as s:
        return org.staff_by_username(s, username).id
