"""Web benchmark: server time of the staff pages with 100k cases in the database (SQLite).

    .venv/bin/python -m bench.web_bench [--cases 100000] [--size full] [--hot 0.05] [--runs 60] [--db PATH]

Builds the Xiangyang-sized demo city (--size full: ~9,700 grids, ~21,000 accounts), runs a few real
cases through the service layer to get one of each stage (reported, dispatched, escalated to the
street, resolved, archived, settled on the spot), then bulk-inserts --cases copies of them spread over
every grid of the city (5% in the seed grid 檀溪社区第十五网格, so that its community head and street
centre have busy inboxes): the case row, its instance (state JSON copied), work items, audit events and
records, with units and people remapped to the copy's own grid, community and street. Then it
requests the inbox, task and case pages (and a few more) through Flask's test client as the people
who work on them, and prints the median and p95 server time of each.

--db keeps the database file (and reuses it on the next run if it is already filled).
"""
from __future__ import annotations

import argparse
import random
import re
import statistics
import sys
import tempfile
import time
import uuid
from pathlib import Path

from sqlalchemy import func, insert, select

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench._common import Relocator  # noqa: E402
from engine import clock  # noqa: E402
from engine.db import Database  # noqa: E402
from engine.deploy import Bundle, deploy  # noqa: E402
from engine.migrate import upgrade  # noqa: E402
from engine.models import Instance, InstanceEvent, WorkItem  # noqa: E402
from grid.cases import service as cases  # noqa: E402
from grid.cases.models import CaseRecord, DisputeCase  # noqa: E402
from grid.config import Settings  # noqa: E402
from grid.org import demo  # noqa: E402
from grid.org import service as org  # noqa: E402
from grid.org.models import OrgUnit, Staff  # noqa: E402
from grid.org.passwords import DEMO_PASSWORD  # noqa: E402
from grid.services import Services  # noqa: E402
from tests.web_helpers import REPORT  # noqa: E402

CHUNK = 5000
CATEGORIES = ["neighbour", "property", "municipal", "labour", "family", "land", "other"]
# stage -> share of the copies
STAGES = {"reported": 0.12, "dispatched": 0.14, "escalated": 0.07, "resolved": 0.07, "archived": 0.45, "on_spot": 0.15}


# ---- building the database -------------------------------------------------------------------
def _sid(svc, username: str) -> str:
    with svc.db.read() as s:
        return org.staff_by_username(s, username).id


def _complete(svc, case_id: int, task: str, username: str, data: dict) -> None:
    with svc.db.read() as s:
        c = s.get(DisputeCase, case_id)
        items = list(s.scalars(select(WorkItem).where(WorkItem.instance_id == c.instance_id, WorkItem.state == "open",
                                                      WorkItem.task_spec == task)))
        sid = _sid(svc, username)
        item = next(w for w in items if cases.can_act(s, sid, w))
    cases.complete_task(svc, sid, item.task_guid, data)


def templates(svc) -> dict[str, int]:
    """One real case per stage, in the seed grid (檀溪社区第十五网格)."""
    gw = _sid(svc, "jiangranran")
    out = {}
    v_meds = [_sid(svc, "med1.420602003005"), _sid(svc, "med2.420602003005")]
    t_meds = [_sid(svc, "med1.420602003000"), _sid(svc, "med2.420602003000")]
    for stage in STAGES:
        data = dict(REPORT)
        if stage == "on_spot":
            data.update(settled_on_spot=True, spot_result="当场调解成功")
        c = cases.report(svc, gw, data)
        out[stage] = c.id
        if stage in ("reported", "on_spot"):
            continue
        _complete(svc, c.id, "dispatch", "qiuyun", {"action": "dispatch", "assignees": v_meds, "dispatch_note": "请调解"})
        if stage == "dispatched":
            continue
        for m in ("med1.420602003005", "med2.420602003005"):
            _complete(svc, c.id, "mediate", m, {"outcome": "cannot_resolve", "notes": "协调无果"})
        if stage == "escalated":
            continue
        _complete(svc, c.id, "dispatch", "disp1.420602003000", {"action": "dispatch", "assignees": t_meds})
        for m in ("med1.420602003000", "med2.420602003000"):
            _complete(svc, c.id, "mediate", m, {"outcome": "resolved", "notes": "已化解"})
        if stage == "resolved":
            continue
        _complete(svc, c.id, "verify", "jiangranran", {"satisfied": True, "signature": "江冉冉", "notes": "满意"})
    return out


def _rows(s, model, col, value) -> list[dict]:
    table = model.__table__
    return [dict(r._mapping) for r in s.execute(select(table).where(col == value))]


def clone(svc, template_ids: dict[str, int], n: int, hot: float = 0.0, seed: int = 7) -> None:
    """Bulk-insert n copies of the template cases over every grid of the city; a `hot` share of
    them in the seed grid, so that its community head and street centre have busy inboxes."""
    rng = random.Random(seed)
    now = clock.now()
    with svc.db.read() as s:
        tpl = {}
        for stage, cid in template_ids.items():
            c = _rows(s, DisputeCase, DisputeCase.id, cid)[0]
            tpl[stage] = {"case": c, "instance": _rows(s, Instance, Instance.id, c["instance_id"])[0],
                          "items": _rows(s, WorkItem, WorkItem.instance_id, c["instance_id"]),
                          "events": _rows(s, InstanceEvent, InstanceEvent.instance_id, c["instance_id"]),
                          "records": _rows(s, CaseRecord, CaseRecord.case_id, cid)}
        grids = list(s.execute(select(OrgUnit.code, OrgUnit.path).where(OrgUnit.level == "grid")))
        relocate = Relocator(dict(s.execute(select(Staff.username, Staff.id)).all()), grids, STAGES)
        next_case = s.scalar(select(func.max(DisputeCase.id))) + 1
        next_inst = s.scalar(select(func.max(Instance.id))) + 1
    batches: dict[str, list[dict]] = {"case": [], "instance": [], "items": [], "events": [], "records": []}
    t0 = time.monotonic()

    def flush():
        with svc.db.write() as s:
            for key, model in (("instance", Instance), ("case", DisputeCase), ("items", WorkItem),
                               ("events", InstanceEvent), ("records", CaseRecord)):
                if batches[key]:
                    s.execute(insert(model), batches[key])
                batches[key] = []

    for i in range(n):
        stage, gcode, gpath, units, remap, age = relocate.draw(rng, hot)
        t = tpl[stage]
        shift = (now - age) - t["case"]["reported_at"]
        cid, iid = next_case + i, next_inst + i
        case_no = f"MB{cid:010d}"
        c = dict(t["case"], id=cid, case_no=case_no, instance_id=iid, grid_code=gcode, unit_path=gpath,
                 category=rng.choice(CATEGORIES), reporter_id=remap(t["case"]["reporter_id"]),
                 current_unit=units.get(t["case"]["current_unit"], t["case"]["current_unit"]),
                 resolved_unit=units.get(t["case"]["resolved_unit"], t["case"]["resolved_unit"]),
                 description=f"{t['case']['description']}（样本{cid}）")
        for k in ("reported_at", "resolved_at", "archived_at", "updated_at"):
            if c[k] is not None:
                c[k] = c[k] + shift
        batches["case"].append(c)
        inst = dict(t["instance"], id=iid, business_key=case_no, created_at=t["instance"]["created_at"] + shift,
                    updated_at=t["instance"]["updated_at"] + shift,
                    next_timer_at=t["instance"]["next_timer_at"] + shift if t["instance"]["next_timer_at"] else None)
        batches["instance"].append(inst)
        for w in t["items"]:
            row = {k: v for k, v in w.items() if k != "id"}
            row.update(instance_id=iid, task_guid=str(uuid.uuid4()), unit_id=units.get(w["unit_id"], w["unit_id"]),
                       user_id=remap(w["user_id"]), closed_by=remap(w["closed_by"]))
            for k in ("created_at", "warn_at", "due_at", "closed_at"):
                if row[k] is not None:
                    row[k] = row[k] + shift
            batches["items"].append(row)
        for e in t["events"]:
            row = {k: v for k, v in e.items() if k != "id"}
            row.update(instance_id=iid, at=e["at"] + shift, actor=remap(e["actor"]))
            batches["events"].append(row)
        for r in t["records"]:
            row = {k: v for k, v in r.items() if k != "id"}
            row.update(case_id=cid, at=r["at"] + shift, actor=remap(r["actor"]),
                       unit_code=units.get(r["unit_code"], r["unit_code"]))
            batches["records"].append(row)
        if (i + 1) % CHUNK == 0:
            flush()
            print(f"\r  cases {i + 1:>7}/{n} ({time.monotonic() - t0:.0f}s)", end="", file=sys.stderr, flush=True)
    flush()
    print(f"\r  cases {n:>7}/{n} ({time.monotonic() - t0:.0f}s)", file=sys.stderr)
    with svc.db.write() as s:
        s.connection().exec_driver_sql("ANALYZE")


def build(db: Database, size: str, n: int, hot: float) -> Services:
    upgrade(db)
    settings = Settings(database_url=db.url_with_password)
    svc = Services.build(settings, db=db)
    with db.read() as s:
        filled = s.scalar(select(func.count()).select_from(DisputeCase)) or 0
    if filled >= n:
        print(f"reusing the database: {filled} cases", file=sys.stderr)
        return svc
    t0 = time.monotonic()
    with db.write() as s:
        deploy(s, Bundle.from_dirs(settings.workflows, settings.forms), actor="bench")
    counts = demo.generate(db, size=size)
    print(f"demo city ({size}): {counts.get('grid')} grids, {counts.get('staff')} staff "
          f"({time.monotonic() - t0:.1f}s)", file=sys.stderr)
    tpl = templates(svc)
    clone(svc, tpl, n - len(tpl), hot)
    return svc


# ---- measuring -------------------------------------------------------------------------------
def _client(app, username: str):
    client = app.test_client()
    token = re.search(r'name="csrf_token" value="([^"]+)"', client.get("/login").get_data(as_text=True)).group(1)
    r = client.post("/login", data={"username": username, "password": DEMO_PASSWORD, "csrf_token": token})
    assert r.status_code == 302, username
    return client


def measure(client, urls: list[str], runs: int) -> list[float]:
    for u in urls[:3]:  # warm caches (parsed specs, templates)
        client.get(u)
    times = []
    for i in range(runs):
        u = urls[i % len(urls)]
        t0 = time.perf_counter()
        r = client.get(u)
        times.append((time.perf_counter() - t0) * 1000)
        assert r.status_code == 200, (u, r.status_code)
    return times


def pick(svc, q, k: int, seed: int = 3) -> list:
    with svc.db.read() as s:
        rows = list(s.execute(q).all())
    random.Random(seed).shuffle(rows)
    return rows[:k]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--cases", type=int, default=100_000)
    ap.add_argument("--size", choices=["full", "small"], default="full")
    ap.add_argument("--runs", type=int, default=60)
    ap.add_argument("--hot", type=float, default=0.05,
                    help="share of the cases placed in the seed grid (busy inboxes); the rest spread over the city")
    ap.add_argument("--db", type=Path, help="keep (and reuse) the SQLite file here")
    args = ap.parse_args()
    tmp = None
    if args.db is None:
        tmp = tempfile.TemporaryDirectory()
        path = Path(tmp.name) / "bench.sqlite"
    else:
        path = args.db
    db = Database(f"sqlite:///{path}")
    svc = build(db, args.size, args.cases, args.hot)
    from web import create_app

    svc.settings.uploads = path.parent / "uploads"
    svc.settings.secret_key = "bench"
    app = create_app(svc.settings, services=svc, TESTING=True)

    with svc.db.read() as s:
        n_cases = s.scalar(select(func.count()).select_from(DisputeCase))
        n_open = s.scalar(select(func.count()).select_from(WorkItem).where(WorkItem.state == "open"))
        n_events = s.scalar(select(func.count()).select_from(InstanceEvent))
    print(f"database: {n_cases} cases, {n_open} open work items, {n_events} audit events ({path.stat().st_size >> 20} MB)")

    # the people: the seed community's grid head and the seed street's dispatcher (busy: the hot
    # share of the cases is theirs), and the county supervisor
    street = "420602003000"
    dispatch_items = pick(svc, select(WorkItem.task_guid).where(WorkItem.state == "open", WorkItem.unit_id == street,
                                                                WorkItem.task_spec == "dispatch"), 30)
    busy_cases = pick(svc, select(DisputeCase.id).where(DisputeCase.unit_path.like(f"%/{street}/%"),
                                                        DisputeCase.escalations > 0), 30)
    results = []

    def run(label: str, username: str, urls: list[str], size: str) -> None:
        t = measure(_client(app, username), urls, args.runs)
        t.sort()
        results.append((label, username, size, statistics.median(t), t[max(0, int(len(t) * 0.95) - 1)]))
        print(f"  {label:<34} median {results[-1][3]:7.1f} ms   p95 {results[-1][4]:7.1f} ms", file=sys.stderr)

    def inbox_size(username: str) -> str:
        return f"{cases.inbox(svc, _sid(svc, username), limit=1)['total']} open items"

    with svc.db.read() as s:
        events = s.scalar(select(func.count()).select_from(InstanceEvent).join(
            DisputeCase, DisputeCase.instance_id == InstanceEvent.instance_id).where(DisputeCase.id == busy_cases[0][0]))
    late = len(cases.late_in_jurisdiction(svc, _sid(svc, "sup.420602000000"), limit=200))

    run("inbox (community grid head)", "qiuyun", ["/", "/?state=overdue", "/?category=municipal", "/?page=2"],
        inbox_size("qiuyun"))
    run("inbox (street dispatcher)", f"disp1.{street}", ["/", "/?state=warning", "/?category=labour"],
        inbox_size(f"disp1.{street}"))
    run("task page (street dispatch)", f"disp1.{street}", [f"/tasks/{g}" for (g,) in dispatch_items],
        f"{len(dispatch_items)} tasks")
    run("case page (escalated case)", f"disp1.{street}", [f"/cases/{c}" for (c,) in busy_cases],
        f"{events} audit events each")
    run("late list (county supervisor)", "sup.420602000000", ["/late", "/late?page=2"],
        f"{late}{'+' if late == 200 else ''} late, 40 a page")
    run("archive search (street)", f"disp1.{street}", ["/archive?q=雨污", "/archive?category=land", "/archive?page=3"],
        "20 per page")
    run("diagram data (escalated case)", f"disp1.{street}", [f"/cases/{c}/diagram.json" for (c,) in busy_cases],
        "2 diagrams")

    print(f"\nserver time per request, {args.runs} requests each, {n_cases} cases (SQLite):")
    print(f"{'page':<32} {'as':<20} {'size':<24} {'median ms':>9} {'p95 ms':>8}")
    for label, user, size, med, p95 in results:
        print(f"{label:<32} {user:<20} {size:<24} {med:>9.1f} {p95:>8.1f}")
    db.dispose()
    if tmp:
        tmp.cleanup()


if __name__ == "__main__":
    main()
