"""Issue 14, scope 3: the engine stores migration verdicts, notes and validation checks as codes
with arguments (no English sentence in the database), reads them back with their English text
for the CLI, and revision 0017 converts rows written before as English text."""
from __future__ import annotations

import json

from alembic import command
from sqlalchemy import select, text

from engine.db import Database
from engine.migrate import _config, upgrade
from engine.migration import Migrator, Selection
from engine.migration.labels import MESSAGES, Msg, load, msg
from engine.version_models import MigrationRecord, VersionEvent
from tests.versions_helpers import deploy_v2


def _raw(db, sql: str) -> list:
    with db.engine.connect() as c:
        return [json.loads(v) if isinstance(v, str) else v for (v,) in c.exec_driver_sql(sql)]


def test_a_dry_run_stores_codes_and_reads_back_its_english(world, svc):
    world.at_township_mediation("b")  # cannot move: mediation is in progress and v2 changes it
    world.at_village_dispatch("a")  # moves, with notes
    report, checks = deploy_v2(svc)
    run_id, plans = Migrator(svc.runtime).dry_run(Selection("dispute_case"), 2, actor="admin")
    stored = _raw(svc.db, f"SELECT reasons FROM migration_record WHERE run_id = {run_id}") + \
        _raw(svc.db, f"SELECT notes FROM migration_record WHERE run_id = {run_id}")
    flat = [m for ms in stored for m in ms]
    assert flat and all(set(m) == {"code", "args"} and m["code"] in MESSAGES for m in flat), flat
    english = {str(m) for p in plans for m in p.reasons + p.notes}
    assert english and not any(e in json.dumps(stored, ensure_ascii=False) for e in english)
    with svc.db.read() as s:
        back = {m for r in s.scalars(select(MigrationRecord).where(MigrationRecord.run_id == run_id))
                for m in r.reasons + r.notes}
        deploys = [e.data for e in s.scalars(select(VersionEvent).where(VersionEvent.action == "deploy"))]
    assert back == english and all(isinstance(m, Msg) and m.code for m in back)
    assert deploys and all(d["checks"] == [c.as_dict() for c in checks] for d in deploys)
    assert all("check_codes" not in d for d in deploys)


def test_messages_load_whatever_was_stored():
    m = msg("already_on", version="v2")
    assert load(m.as_dict()) == m == "already on v2" and load(m.as_dict()).args == {"version": "v2"}
    assert load("some old text").code == "text" and load("some old text") == "some old text"
    assert load({"code": "no_such_code", "args": {}}).code == "text"
    assert load({"code": "already_on", "args": {}}).code == "text"  # an argument missing: kept, not raised


def test_revision_0017_converts_english_rows_and_back(tmp_path):
    db = Database(f"sqlite:///{tmp_path / 'old.sqlite'}")
    upgrade(db, "0001_baseline")
    old_reasons = ["the instance is at 结案 (close) (READY), which v2 removes",
                   "someone worked on the instance while it was being migrated; it was left as it was "
                   "(run the migration again to move it)",
                   "something nobody templated"]
    old_notes = ["the open task 派件 (dispatch) takes v2's form and assignment settings"]
    checks = ["XML Schema (BPMN 2.0 + SpiffWorkflow extensions): 3 BPMN file(s) valid",
              "domain checks passed (e.g. time limits cover every level and category)"]
    now = "'2026-01-01 00:00:00.000000'"
    with db.engine.begin() as c:
        c.exec_driver_sql("INSERT INTO process_version (id, process_id, number, sha256, spec_json, files, forms, "
                          f"deployed_at, state) VALUES (1, 'p', 1, 'x', '{{}}', '{{}}', '{{}}', {now}, 'active')")
        c.exec_driver_sql("INSERT INTO instance (id, process_id, version_id, status, state_json, lock_version, "
                          f"event_seq, created_at, updated_at) VALUES (1, 'p', 1, 'running', '{{}}', 1, 1, {now}, "
                          f"{now})")
        c.exec_driver_sql("INSERT INTO migration_run (id, process_id, to_version_id, dry_run, selection, status, "
                          "created_at, total, done, migrated, blocked, skipped, failed) VALUES (1, 'p', 1, 1, '{}', "
                          f"'done', {now}, 1, 1, 0, 1, 0, 0)")
        c.exec_driver_sql("INSERT INTO migration_record (run_id, instance_id, outcome, reasons, notes) "
                          "VALUES (1, 1, 'blocked', ?, ?)", (json.dumps(old_reasons), json.dumps(old_notes)))
        c.exec_driver_sql("INSERT INTO instance_event (instance_id, seq, at, kind, data) VALUES "
                          f"(1, 1, {now}, 'version_changed', ?)", (json.dumps({"to": 2, "notes": old_notes}),))
        c.exec_driver_sql(f"INSERT INTO version_event (at, action, process_id, data) VALUES ({now}, 'deploy', 'p', ?)",
                          (json.dumps({"checks": checks}),))
    upgrade(db, "0017_verdict_codes")
    reasons, notes = _raw(db, "SELECT reasons FROM migration_record")[0], _raw(db, "SELECT notes FROM migration_record")[0]
    assert reasons == [
        {"code": "removed_here", "args": {"element": "结案 (close)", "state": "READY", "version": "v2"}},
        {"code": "worked_meanwhile", "args": {}},
        {"code": "text", "args": {"text": "something nobody templated"}}]
    assert notes == [{"code": "form_adopted", "args": {"element": "派件 (dispatch)", "version": "v2"}}]
    assert _raw(db, "SELECT data FROM instance_event")[0] == {"to": 2, "notes": notes}
    assert _raw(db, "SELECT data FROM version_event")[0] == {"checks": [
        {"code": "xml_schema", "args": {"bpmn": "3"}}, {"code": "domain", "args": {}}]}
    cfg = _config()
    with db.engine.begin() as conn:
        cfg.attributes["connection"] = conn
        command.downgrade(cfg, "0001_baseline")
    assert _raw(db, "SELECT reasons FROM migration_record")[0] == old_reasons
    assert _raw(db, "SELECT notes FROM migration_record")[0] == old_notes
    assert _raw(db, "SELECT data FROM version_event")[0]["checks"] == checks
    db.dispose()
    with db.engine.connect() as c:
        assert c.execute(text("SELECT count(*) FROM migration_record")).scalar() == 1
