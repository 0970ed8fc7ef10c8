"""Helpers for the version and migration tests: drive dispute cases to known points, deploy v2/v3."""
from __future__ import annotations

from datetime import datetime
from pathlib import Path

from sqlalchemy import select

from engine import clock
from engine.deploy import Bundle
from engine.models import Instance, InstanceEvent, ProcessVersion, WorkItem
from engine.versions import deploy_bundle
from grid.cases.models import DisputeCase
from grid.cases.scenario import Runner
from tests.query_helpers import rows

ROOT = Path(__file__).resolve().parent.parent
V2 = Path(__file__).resolve().parent / "fixtures" / "v2"
START = datetime(2026, 3, 2, 10, 0, tzinfo=clock.SHANGHAI)  # a Monday

VILLAGE_HEAD = "qiuyun"  # 檀溪社区 grid head (dispatches at the village level)
VILLAGE_MED = "med1.420602003005"
TOWNSHIP_DISP = "disp2.420602003000"  # 真武山街道
TOWNSHIP_MED1 = "med1.420602003000"
TOWNSHIP_MED2 = "med2.420602003000"
REPORTER = "jiangranran"


def v2_bundle() -> Bundle:
    return Bundle.from_dirs(V2 / "workflows", V2 / "forms")


def deploy_v2(svc, actor: str = "admin", activate: bool = False, tag: str = "v2"):
    return deploy_bundle(svc.db, v2_bundle(), actor=actor, tag=tag, activate=activate)


def v3_bundle() -> Bundle:
    """v2 with one more time-limit change (村·物业 warn 3 → 2): a distinct version for pilots."""
    b = v2_bundle()
    dmn = b.dmn["time_limits.dmn"].decode("utf-8")
    old = '<outputEntry id="rule_village_property_warn">\n          <text>3</text>'
    assert old in dmn
    b.dmn["time_limits.dmn"] = dmn.replace(old, old.replace("<text>3</text>", "<text>2</text>")).encode("utf-8")
    return b


class Cases:
    """Reports dispute cases and completes their tasks through grid.cases (the scenario runner's steps)."""

    def __init__(self, svc, fake):
        self.svc = svc
        self.r = Runner(svc, {})
        self.r.fake = fake

    def report(self, name: str, who: str = REPORTER, grid: str | None = None, category: str = "neighbour"):
        self.r.do_report({"as": who, "case": name, "grid": grid, "data": {
            "category": category, "description": "楼上漏水，邻里纠纷", "location": {"text": "檀溪社区"},
            "settled_on_spot": False}})
        return self.case(name)

    def complete(self, name: str, task: str, who: str, data: dict) -> None:
        self.r.do_complete({"case": name, "task": task, "as": who, "data": data})

    def case(self, name: str) -> DisputeCase:
        return self.r.case(name)

    def instance(self, name: str) -> Instance:
        with self.svc.db.read() as s:
            return s.get(Instance, self.case(name).instance_id)

    def open_tasks(self, name: str) -> list[str]:
        return sorted(w.task_spec for w in self.r._open_items(self.case(name)))

    # -- the points the acceptance test starts from -------------------------------------------
    def at_village_dispatch(self, name: str):
        return self.report(name)

    def at_township_dispatch(self, name: str):
        self.report(name)
        self.complete(name, "dispatch", VILLAGE_HEAD, {"action": "dispatch", "assignees": [f"@{VILLAGE_MED}"]})
        self.complete(name, "mediate", VILLAGE_MED, {"outcome": "cannot_resolve", "notes": "需街道协调"})

    def at_township_mediation(self, name: str):
        self.at_township_dispatch(name)
        self.complete(name, "dispatch", TOWNSHIP_DISP,
                      {"action": "dispatch", "assignees": [f"@{TOWNSHIP_MED1}", f"@{TOWNSHIP_MED2}"]})

    def at_verification(self, name: str):
        self.report(name)
        self.complete(name, "dispatch", VILLAGE_HEAD, {"action": "dispatch", "assignees": [f"@{VILLAGE_MED}"]})
        self.complete(name, "mediate", VILLAGE_MED, {"outcome": "resolved", "notes": "双方达成一致"})

    def verify_satisfied(self, name: str) -> None:
        self.complete(name, "verify", REPORTER, {"satisfied": True, "signature": "江冉冉"})


def version_of(svc, process_id: str, number: int) -> ProcessVersion:
    with svc.db.read() as s:
        return s.scalar(select(ProcessVersion).where(ProcessVersion.process_id == process_id,
                                                     ProcessVersion.number == number))


def clocks(svc, instance_id: int) -> dict:
    """Everything time-related that must survive a migration: next timer and open items' warn/due."""
    with svc.db.read() as s:
        inst = s.get(Instance, instance_id)
        items = {w.id: (w.task_guid, w.task_spec, w.warn_at, w.due_at, w.unit_id, w.role, w.user_id)
                 for w in s.scalars(select(WorkItem).where(WorkItem.instance_id == instance_id,
                                                           WorkItem.state == "open"))}
        return {"next_timer_at": inst.next_timer_at, "items": items}


def events(svc, instance_id: int, kind: str | None = None) -> list[InstanceEvent]:
    return rows(svc, InstanceEvent, InstanceEvent.seq, kind, instance_id=instance_id)
