"""Authorization of the registry and admin routes: walk every rule of those blueprints with real
objects (a household, a resident with a full ID number and phone, a flag) as outsiders, and check
that nothing is shown or changed. Admin routes refuse everyone who is not an administrator."""
from __future__ import annotations

from datetime import date

import pytest
from sqlalchemy import func, select

from grid.registry import visits
from grid.registry.models import Building, Household, Resident, ResidentEvent, RevealLog, SpecialFlag
from tests.registry_helpers import SEED_GRID, household, make_id, person, sid
from tests.web_helpers import csrf, login, rule_url

OUTSIDERS = ["gw.420602003005001", "head.420602003001", "disp1.420602001000", "sup.420606000000"]
IDN = make_id("420602", date(1970, 5, 1), 11)
POST = {"name": "越权", "reason": "越权", "risk_level": "high", "category": "released", "door_no": "9-9",
        "address": "越权路1号", "relation": "other", "birth_date": "2026-01-01", "sex": "M", "field": "id_number",
        "phone": "13900000000", "id_number": make_id("420602", date(1990, 1, 1), 77), "locale": "en"}


@pytest.fixture
def world(svc, fake_clock):
    gw = sid(svc, "jiangranran")
    hid = household(svc, gw, SEED_GRID, "檀溪路1号1栋", "1-101")
    rid = person(svc, gw, hid, "张建国", date(1970, 5, 1), 11, "head", phone="13812341234")
    fid = visits.flag(svc, gw, rid, "released", "low")
    with svc.db.read() as s:
        bid = s.get(Household, hid).building_id
    return {"household_id": hid, "resident_id": rid, "flag_id": fid, "building_id": bid, "code": SEED_GRID,
            "job_id": "x", "markers": ["张建国", IDN, "13812341234", "138****1234", "檀溪路1号1栋"]}


def snapshot(svc) -> tuple:
    with svc.db.read() as s:
        return tuple(s.scalar(select(func.count()).select_from(t)) for t in
                     (Building, Household, Resident, ResidentEvent, SpecialFlag)) + (
            sorted((r.id, r.name, r.status, r.phone, r.household_id) for r in s.scalars(select(Resident))),
            sorted((f.id, f.active, f.risk_level) for f in s.scalars(select(SpecialFlag))))


def _rules(app, blueprints):
    return [r for r in app.url_map.iter_rules() if r.endpoint.split(".")[0] in blueprints]


@pytest.mark.parametrize("username", OUTSIDERS)
def test_registry_routes_show_and_change_nothing_outside_jurisdiction(app, svc, world, username):
    before = snapshot(svc)
    client = login(app, username)
    walked = 0
    for rule in _rules(app, {"registry"}):
        for method in sorted(rule.methods - {"HEAD", "OPTIONS"}):
            url = rule_url(rule, world)
            if method == "GET":
                r = client.get(url, query_string={"q": "张建", "grid": SEED_GRID})
            else:
                r = client.post(url, data={**POST, "csrf_token": csrf(client)})
            where = f"{username} {method} {url} ({rule.endpoint})"
            walked += 1
            assert r.status_code < 500, where
            if set(rule.arguments) & {"household_id", "resident_id", "flag_id", "building_id", "code"}:
                assert r.status_code in (403, 404), f"{where}: {r.status_code}"
            body = r.get_data(as_text=True) if (r.mimetype or "").startswith(("text", "application/json")) else ""
            for m in world["markers"]:
                assert m not in body, f"{where}: shows {m!r}"
    assert walked >= 15
    assert snapshot(svc) == before
    with svc.db.read() as s:  # refused reveal attempts are logged, as refusals
        assert {x.granted for x in s.scalars(select(RevealLog))} <= {False}


def test_registry_routes_do_work_for_the_grid_worker(app, svc, world):
    """The control: the same URLs serve the grid's own worker."""
    client = login(app, "jiangranran")
    assert "张建国" in client.get(f"/registry/grid/{SEED_GRID}").get_data(as_text=True)
    assert client.get(f"/registry/resident/{world['resident_id']}").status_code == 200
    assert client.get(f"/registry/household/{world['household_id']}").status_code == 200


@pytest.mark.parametrize("username", OUTSIDERS + ["jiangranran", "disp1.420600000000"])
def test_admin_routes_refuse_non_administrators(app, svc, world, username):
    client = login(app, username)
    for rule in _rules(app, {"admin"}):
        for method in sorted(rule.methods - {"HEAD", "OPTIONS"}):
            url = rule_url(rule, {"process_id": "dispute_case", "number": 1, "run_id": 1, "instance_id": 1})
            r = client.get(url) if method == "GET" else client.post(url, data={"csrf_token": csrf(client)})
            assert r.status_code in (403, 404), f"{username} {method} {url}: {r.status_code}"
    assert login(app, "admin").get("/admin/versions").status_code == 200, "the control: an admin gets in"
