"""Moving running dispute cases from v1 to v2: dry run verdicts, execution, timers that keep their
due times, cases that continue to the archive on v2, concurrency, errors and revert."""
from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import func, select

from engine import clock
from engine.deploy import Bundle
from engine.errors import Conflict, NotFound
from engine.migration import Migrator, Selection, compare
from engine.models import Instance, InstanceEvent, WorkItem
from engine.runtime import Runtime
from engine.version_models import MigrationRecord
from engine.versions import activate, deploy_bundle
from grid.cases.models import CaseRecord
from tests.versions_helpers import (
    REPORTER,
    START,
    TOWNSHIP_DISP,
    TOWNSHIP_MED1,
    TOWNSHIP_MED2,
    V2,
    VILLAGE_HEAD,
    VILLAGE_MED,
    clocks,
    deploy_v2,
    events,
    version_of,
)

AGREEMENT = {"agreement_no": "TX-2026-001", "terms": "楼上住户加装接水管，赔偿楼下200元", "signed": True}


def _snapshot(svc, instance_id: int) -> dict:
    with svc.db.read() as s:
        inst = s.get(Instance, instance_id)
        items = [(w.id, w.task_guid, w.state, w.task_spec, w.form, w.warn_at, w.due_at, w.unit_id, w.role, w.user_id)
                 for w in s.scalars(select(WorkItem).where(WorkItem.instance_id == instance_id).order_by(WorkItem.id))]
        n_events = s.scalar(select(func.count()).select_from(InstanceEvent)
                            .where(InstanceEvent.instance_id == instance_id))
        return {"state": inst.state_json, "version": inst.version_id, "lock": inst.lock_version,
                "seq": inst.event_seq, "next": inst.next_timer_at, "status": inst.status, "items": items,
                "events": n_events}


def test_migrate_running_cases_to_v2(world, svc, fake):
    rt = svc.runtime
    # w: at village dispatch, its warning timer already fired (supervise open, overdue still armed)
    world.at_village_dispatch("w")
    fake.advance(timedelta(days=3, hours=1))
    rt.sweep()
    assert world.open_tasks("w") == ["dispatch", "supervise"]
    # the points the issue names: dispatch, mediation at level 2 (township), verification
    world.at_village_dispatch("a")
    world.at_township_dispatch("a2")
    world.at_township_mediation("b")
    world.at_verification("c")
    assert world.open_tasks("b") == ["mediate", "mediate"]
    assert world.open_tasks("c") == ["verify"]

    report, checks = deploy_v2(svc, actor="admin")
    assert {v.process_id for v in report.created} == {"dispute_case", "handle_level"}
    assert checks and not report.activated
    v1, v2 = version_of(svc, "dispute_case", 1), version_of(svc, "dispute_case", 2)
    fake.advance(timedelta(hours=1))  # a timer re-armed now would move by an hour

    names = {n: world.case(n).instance_id for n in ("w", "a", "a2", "b", "c")}
    by_id = {i: n for n, i in names.items()}
    m = Migrator(rt)
    run_id, plans = m.dry_run(Selection("dispute_case", from_versions=[1]), 2, actor="admin")
    verdicts = {by_id[p.instance_id]: p for p in plans}
    assert set(verdicts) == set(names)
    assert {n for n, p in verdicts.items() if p.ok} == {"w", "a", "a2", "c"}
    why = " ".join(verdicts["b"].reasons)
    assert "mediate" in why and "in progress" in why and "记录调解协议" in why, why
    # the time-limit decision already ran in the cases inside a level: kept, with a note
    assert any("lookup_time_limits" in n for n in verdicts["a2"].notes)
    assert not verdicts["c"].notes and not verdicts["c"].reasons
    assert verdicts["a"].at == ["dispatch"] and verdicts["c"].at == ["verify"]
    # a dry run changes nothing
    assert all(world.instance(n).version_id == v1.id for n in names)
    with svc.db.read() as s:
        assert s.scalar(select(func.count()).select_from(MigrationRecord).where(
            MigrationRecord.run_id == run_id, MigrationRecord.outcome == "can_move")) == 4

    before = {n: clocks(svc, i) for n, i in names.items()}
    snap_b = _snapshot(svc, names["b"])
    seen = []
    run = m.execute(Selection("dispute_case", from_versions=[1]), 2, actor="admin",
                    progress=lambda done, total, note: seen.append((done, total)))
    assert (run.total, run.migrated, run.blocked, run.skipped, run.failed) == (5, 4, 1, 0, 0)
    assert seen[-1] == (5, 5)

    for n in ("w", "a", "a2", "c"):
        inst = world.instance(n)
        assert inst.version_id == v2.id
        after = clocks(svc, inst.id)
        assert after == before[n], n  # same next timer, same work item ids/guids, warn/due and assignment
        ev = events(svc, inst.id, "version_changed")
        assert len(ev) == 1 and ev[0].actor == "admin"
        assert ev[0].data["from"] == 1 and ev[0].data["to"] == 2 and ev[0].data["run_id"] == run.id
    assert before["a2"]["items"] and before["w"]["next_timer_at"] is not None
    assert _snapshot(svc, names["b"]) == snap_b  # the blocked case is exactly as it was

    activate(svc.db, "dispute_case", 2, actor="admin")
    activate(svc.db, "handle_level", 2, actor="admin")
    world.report("new")
    assert world.instance("new").version_id == v2.id

    # a2 kept v1's township limit (10 working days), though v2 says 8
    due_a2 = next(iter(before["a2"]["items"].values()))[3]
    assert due_a2 != rt.calendar.add_workdays(clock.now(), 8)

    # every migrated case continues to the archive on v2
    # a: escalates to the township; the new level uses v2's time limits (township neighbour: 8 days)
    world.complete("a", "dispatch", VILLAGE_HEAD, {"action": "dispatch", "assignees": [f"@{VILLAGE_MED}"]})
    world.complete("a", "mediate", VILLAGE_MED, {"outcome": "cannot_resolve", "notes": "需街道协调"})
    with svc.db.read() as s:
        wi = s.scalar(select(WorkItem).where(WorkItem.instance_id == names["a"], WorkItem.state == "open"))
    assert wi.task_spec == "dispatch" and wi.due_at == rt.calendar.add_workdays(clock.now(), 8)
    world.complete("a", "dispatch", TOWNSHIP_DISP, {"action": "dispatch", "assignees": [f"@{TOWNSHIP_MED1}"]})
    world.complete("a", "mediate", TOWNSHIP_MED1, {"outcome": "resolved", "notes": "达成协议"})
    assert world.open_tasks("a") == ["record_agreement"]
    world.complete("a", "record_agreement", TOWNSHIP_MED1, AGREEMENT)
    world.verify_satisfied("a")

    world.complete("a2", "dispatch", TOWNSHIP_DISP, {"action": "dispatch", "assignees": [f"@{TOWNSHIP_MED2}"]})
    world.complete("a2", "mediate", TOWNSHIP_MED2, {"outcome": "resolved", "notes": "达成协议"})
    assert world.open_tasks("a2") == ["record_agreement"]
    world.complete("a2", "record_agreement", TOWNSHIP_MED2, AGREEMENT)
    world.verify_satisfied("a2")

    world.complete("w", "dispatch", VILLAGE_HEAD, {"action": "dispatch", "assignees": [f"@{VILLAGE_MED}"]})
    world.complete("w", "mediate", VILLAGE_MED, {"outcome": "resolved", "notes": "达成协议"})
    assert world.open_tasks("w") == ["record_agreement", "supervise"]
    world.complete("w", "record_agreement", VILLAGE_MED, AGREEMENT)
    assert world.open_tasks("w") == ["verify"]  # the level's end cancelled the supervision
    world.verify_satisfied("w")

    world.verify_satisfied("c")
    for n in ("w", "a", "a2", "c"):
        c = world.case(n)
        assert c.status == "archived" and c.result == "satisfied", n
        assert world.instance(n).status == "completed"
    with svc.db.read() as s:
        warnings = s.scalar(select(func.count()).select_from(CaseRecord).where(
            CaseRecord.case_id == world.case("w").id, CaseRecord.kind == "warning"))
    assert warnings == 1  # the warning that had fired did not fire again

    # b finishes its mediation on v1 (no agreement step), then it can move
    world.complete("b", "mediate", TOWNSHIP_MED1, {"outcome": "resolved", "notes": "达成协议"})
    world.complete("b", "mediate", TOWNSHIP_MED2, {"outcome": "resolved", "notes": "同意"})
    assert world.open_tasks("b") == ["verify"]
    _run, plans = m.dry_run(Selection("dispute_case", instance_ids=[names["b"]]), 2)
    assert plans[0].ok, plans[0].reasons
    run = m.execute(Selection("dispute_case", instance_ids=[names["b"]]), 2, actor="admin")
    assert run.migrated == 1
    world.verify_satisfied("b")
    assert world.case("b").status == "archived"


def test_duration_timers_keep_their_due_times(db, fake):
    """Timers armed with a duration would restart from the migration time; they must not."""
    rt = Runtime(db)
    here = V2 / "engine"
    deploy_bundle(db, Bundle(bpmn={"sla.bpmn": (here / "sla_v1.bpmn").read_bytes()}), actor="admin", activate=True)
    step = rt.start("sla_demo", {}, actor="clerk")
    iid = step.instance_id
    fake.advance(timedelta(hours=1))
    with db.read() as s:
        inst = s.get(Instance, iid)
        wi = s.scalar(select(WorkItem).where(WorkItem.instance_id == iid, WorkItem.state == "open"))
    assert wi.warn_at == START + timedelta(hours=2) and wi.due_at == START + timedelta(hours=4)
    deploy_bundle(db, Bundle(bpmn={"sla.bpmn": (here / "sla_v2.bpmn").read_bytes()}), actor="admin")
    run = Migrator(rt, verify_roundtrip=True).execute(Selection("sla_demo"), 2, actor="admin")
    assert run.migrated == 1
    with db.read() as s:
        inst2 = s.get(Instance, iid)
        wi2 = s.scalar(select(WorkItem).where(WorkItem.instance_id == iid, WorkItem.state == "open"))
    assert inst2.next_timer_at == inst.next_timer_at == START + timedelta(hours=2)
    assert (wi2.id, wi2.task_guid, wi2.warn_at, wi2.due_at) == (wi.id, wi.task_guid, wi.warn_at, wi.due_at)
    # the warning fires at its original time, and the case then follows v2 (the new 复核 step)
    fake.set(START + timedelta(hours=2, minutes=1))
    assert rt.sweep() == 1
    assert [e.kind for e in rt.history(iid)].count("timer_fired") == 1
    rt.complete(iid, wi.task_guid, {}, actor="clerk")
    with db.read() as s:
        nxt = s.scalar(select(WorkItem).where(WorkItem.instance_id == iid, WorkItem.state == "open"))
    assert nxt.task_spec == "double_check"


def test_open_task_takes_the_new_assignment_in_place(db, fake):
    """v2 gives the open task another role: the same work item (id, guid, due times) is reassigned."""
    rt = Runtime(db)
    v1 = (V2 / "engine" / "sla_v1.bpmn").read_bytes()
    deploy_bundle(db, Bundle(bpmn={"sla.bpmn": v1}), actor="admin", activate=True)
    iid = rt.start("sla_demo", {}, actor="clerk").instance_id
    with db.read() as s:
        wi = s.scalar(select(WorkItem).where(WorkItem.instance_id == iid, WorkItem.state == "open"))
    assert wi.role == "clerk"
    deploy_bundle(db, Bundle(bpmn={"sla.bpmn": v1.replace(b'value="clerk"', b'value="senior"')}), actor="admin")
    m = Migrator(rt)
    _r, plans = m.dry_run(Selection("sla_demo"), 2)
    assert plans[0].ok and any("form and assignment" in n for n in plans[0].notes), plans[0].notes
    assert m.execute(Selection("sla_demo"), 2, actor="admin").migrated == 1
    with db.read() as s:
        rows = list(s.scalars(select(WorkItem).where(WorkItem.instance_id == iid)))
    assert [(w.id, w.task_guid, w.role, w.state, w.warn_at, w.due_at) for w in rows] == [
        (wi.id, wi.task_guid, "senior", "open", wi.warn_at, wi.due_at)]
    m.revert(iid, actor="admin")
    with db.read() as s:
        assert s.get(WorkItem, wi.id).role == "clerk"


def test_a_removed_task_blocks_only_the_cases_standing_on_it(db, fake):
    rt = Runtime(db)
    v1 = (V2 / "engine" / "sla_v1.bpmn").read_text()
    deploy_bundle(db, Bundle(bpmn={"sla.bpmn": v1.encode()}), actor="admin", activate=True)
    at_work = rt.start("sla_demo", {}, actor="clerk").instance_id
    at_close = rt.start("sla_demo", {}, actor="clerk").instance_id
    with db.read() as s:
        guid = s.scalar(select(WorkItem.task_guid).where(WorkItem.instance_id == at_close, WorkItem.state == "open"))
    rt.complete(at_close, guid, {}, actor="clerk")
    close = ('    <bpmn:userTask id="close" name="结案">\n      <bpmn:incoming>f2</bpmn:incoming>\n'
             '      <bpmn:outgoing>f3</bpmn:outgoing>\n    </bpmn:userTask>\n')
    assert close in v1
    v2 = (v1.replace(close, "").replace('<bpmn:incoming>f3</bpmn:incoming>', '<bpmn:incoming>f2</bpmn:incoming>')
          .replace('targetRef="close"', 'targetRef="end"')
          .replace('    <bpmn:sequenceFlow id="f3" sourceRef="close" targetRef="end" />\n', ""))
    deploy_bundle(db, Bundle(bpmn={"sla.bpmn": v2.encode()}), actor="admin")
    c = compare(rt, "sla_demo", 1, 2)
    assert [t["id"] for t in c["processes"][0]["removed"]] == ["close"]
    _r, plans = Migrator(rt).dry_run(Selection("sla_demo"), 2)
    verdict = {p.instance_id: p for p in plans}
    assert verdict[at_work].ok, verdict[at_work].reasons
    assert not verdict[at_close].ok
    assert verdict[at_close].reasons == ["the instance is at 结案 (close) (READY), which v2 removes"]
    run = Migrator(rt).execute(Selection("sla_demo"), 2, actor="admin")
    assert (run.migrated, run.blocked) == (1, 1)
    with db.read() as s:
        guid = s.scalar(select(WorkItem.task_guid).where(WorkItem.instance_id == at_work, WorkItem.state == "open"))
    rt.complete(at_work, guid, {}, actor="clerk")
    assert rt.instance(at_work).status == "completed"  # v2: straight to the end


def test_a_due_timer_not_yet_fired_stays_due(world, svc, fake):
    """The sweep is late: the warning is due but has not fired when the case moves. It keeps its
    time and fires once, on the next sweep."""
    world.at_village_dispatch("a")
    iid = world.case("a").instance_id
    before = clocks(svc, iid)
    fake.advance(timedelta(days=4))  # past warn_at, no sweep
    assert before["next_timer_at"] < clock.now()
    deploy_v2(svc)
    _r, plans = Migrator(svc.runtime).dry_run(Selection("dispute_case"), 2)
    assert plans[0].ok, plans[0].reasons
    run = Migrator(svc.runtime).execute(Selection("dispute_case"), 2, actor="admin")
    assert run.migrated == 1
    assert clocks(svc, iid) == before
    assert svc.runtime.sweep() == 1
    assert world.open_tasks("a") == ["dispatch", "supervise"]
    assert [e.kind for e in events(svc, iid)].count("timer_fired") == 1


def test_case_worked_on_during_migration_is_skipped(world, svc, fake):
    world.at_village_dispatch("a")
    world.at_verification("c")
    deploy_v2(svc)
    ids = {n: world.case(n).instance_id for n in ("a", "c")}
    m = Migrator(svc.runtime)

    def meanwhile(plans):  # someone dispatches case a after it was read, before it is saved
        world.complete("a", "dispatch", VILLAGE_HEAD, {"action": "dispatch", "assignees": [f"@{VILLAGE_MED}"]})

    m.before_save = meanwhile
    run = m.execute(Selection("dispute_case"), 2, actor="admin")
    assert (run.migrated, run.skipped) == (1, 1)
    rec = m.records(run.id, "skipped")[0]
    assert rec.instance_id == ids["a"] and "while it was being migrated" in rec.reasons[0]
    inst = world.instance("a")
    assert inst.version_id == version_of(svc, "dispute_case", 1).id
    assert world.open_tasks("a") == ["mediate"]  # the dispatch went through on v1, nothing lost
    assert not events(svc, ids["a"], "version_changed")
    m.before_save = None
    world.complete("a", "mediate", VILLAGE_MED, {"outcome": "resolved", "notes": "ok"})
    run = m.execute(Selection("dispute_case", instance_ids=[ids["a"]]), 2, actor="admin")  # now at verify
    assert run.migrated == 1


def test_error_leaves_the_case_exactly_as_it_was(world, svc, fake):
    world.at_village_dispatch("a")
    world.at_verification("c")
    deploy_v2(svc)
    bad = world.case("a").instance_id
    before = _snapshot(svc, bad)

    def boom(s, step):
        if step.instance_id == bad and any(e["kind"] == "version_changed" for e in step.events):
            raise RuntimeError("disk on fire")

    svc.runtime.listeners.append(boom)
    try:
        run = Migrator(svc.runtime).execute(Selection("dispute_case"), 2, actor="admin")
    finally:
        svc.runtime.listeners.remove(boom)
    assert (run.migrated, run.failed) == (1, 1)
    assert _snapshot(svc, bad) == before
    rec = [r for r in Migrator(svc.runtime).records(run.id) if r.instance_id == bad][0]
    assert rec.outcome == "failed" and "disk on fire" in rec.reasons[0] and rec.state_before is None
    # the case still works on v1
    world.complete("a", "dispatch", VILLAGE_HEAD, {"action": "dispatch", "assignees": [f"@{VILLAGE_MED}"]})
    assert world.open_tasks("a") == ["mediate"]


def test_revert_puts_the_case_back(world, svc, fake):
    world.at_village_dispatch("a")
    world.at_verification("c")
    deploy_v2(svc)
    iid = world.case("a").instance_id
    before = _snapshot(svc, iid)
    m = Migrator(svc.runtime)
    run = m.execute(Selection("dispute_case"), 2, actor="admin")
    assert run.migrated == 2
    assert world.instance("a").version_id == version_of(svc, "dispute_case", 2).id

    rec = m.revert(iid, actor="admin2")
    assert rec.outcome == "reverted" and rec.reverted_by == "admin2"
    after = _snapshot(svc, iid)
    for key in ("state", "version", "next", "status", "items"):
        assert after[key] == before[key], key
    assert after["lock"] == before["lock"] + 2 and after["events"] == before["events"] + 2
    kinds = [e.kind for e in events(svc, iid)][-2:]
    assert kinds == ["version_changed", "version_reverted"]
    with pytest.raises(NotFound):
        m.revert(iid)  # nothing left to revert
    # it continues on v1: mediation is followed directly by verification
    world.complete("a", "dispatch", VILLAGE_HEAD, {"action": "dispatch", "assignees": [f"@{VILLAGE_MED}"]})
    world.complete("a", "mediate", VILLAGE_MED, {"outcome": "resolved", "notes": "ok"})
    assert world.open_tasks("a") == ["verify"]

    # once a migrated case has moved on, reverting would lose work: refused
    cid = world.case("c").instance_id
    world.verify_satisfied("c")
    with pytest.raises(Conflict):
        m.revert(cid)
    assert world.instance("c").status == "completed"


def test_selection_by_task_and_ids_and_compare(world, svc, fake):
    world.at_village_dispatch("a")
    world.at_verification("c")
    deploy_v2(svc)
    m = Migrator(svc.runtime)
    _r, plans = m.dry_run(Selection("dispute_case", at_tasks=["verify"]), 2)
    assert [p.instance_id for p in plans] == [world.case("c").instance_id]
    _r, plans = m.dry_run(Selection("dispute_case", instance_ids=[world.case("a").instance_id]), 2)
    assert [p.instance_id for p in plans] == [world.case("a").instance_id]
    _r, plans = m.dry_run(Selection("dispute_case", where=Instance.id < 0, label="nobody"), 2)
    assert plans == []

    c = compare(svc.runtime, "dispute_case", 1, 2)
    lw = next(p for p in c["processes"] if p["name"] == "level_work")
    assert {t["id"] for t in lw["added"]} == {"record_agreement", "gw_agreement", "gw_agreement_done"}
    assert {t["id"] for t in lw["changed"]} == {"mediate", "collect_mediation"}
    limits = {(r["rule"], r["output"]): (r["before"], r["after"]) for r in c["time_limits"]}
    assert limits == {("rule_village_neighbour", "overdue_days"): ("5", "4"),
                      ("rule_township_neighbour", "overdue_days"): ("10", "8")}
    assert c["forms"]["added"] == ["record_agreement.json"] and not c["forms"]["changed"]
    hl = next(d for d in c["diagrams"] if d["file"] == "handle_level.bpmn")
    assert hl["markers_b"]["record_agreement"] == "added" and hl["markers_b"]["mediate"] == "changed"
    assert hl["markers_b"]["flow_agreement_yes"] == "added" and hl["markers_a"]["flow_mediated"] == "changed"
    assert hl["markers_b"]["lookup_time_limits"] == "changed"
    dc = next(d for d in c["diagrams"] if d["file"] == "dispute_case.bpmn")
    assert dc["same"]


def test_fixture_v2_is_the_workflows_plus_the_documented_changes():
    """Guard: tests/fixtures/v2 must stay a copy of workflows/ with only the v2 edits."""
    root = Path(__file__).resolve().parents[2]
    assert (V2 / "workflows" / "dispute_case.bpmn").read_bytes() == (root / "workflows" / "dispute_case.bpmn").read_bytes()
    for f in (root / "forms").glob("*.json"):
        if (V2 / "forms" / f.name).exists():
            assert (V2 / "forms" / f.name).read_bytes() == f.read_bytes(), f.name
    assert REPORTER  # keep the helper import used
