"""Issue 17, defect 1: a registry move must be allowed at both ends. A move-in by ID number of a
person registered in a grid the actor may not change is refused, and the refusal (like the import's
answer) says nothing about that person: living, moved out, deceased and unknown-but-refused read
the same. SQLite and PostgreSQL."""
from __future__ import annotations

import csv
from datetime import date

import pytest
from sqlalchemy import func, select

from engine.errors import Conflict
from grid.registry import households, visits, writer
from grid.registry.models import Resident, ResidentEvent, SpecialFlag
from tests.registry_helpers import (
    FAR_GRID,
    OTHER_GRID,
    SEED_GRID,
    first_with_role,
    household,
    make_id,
    person,
    seed_family,
    sid,
)
from tests.web_helpers import csrf, login, make_app


@pytest.fixture
def world(reg):
    gw, hid, living, dead = seed_family(reg)
    gone = person(reg, gw, hid, "张小明", date(1995, 6, 1), 33, "child", phone="13912345678")
    households.register_death(reg, gw, dead)
    households.move_out(reg, gw, gone, destination="武汉")
    visits.flag(reg, gw, living, "released", "low")
    outsider = first_with_role(reg, FAR_GRID, "grid_worker")
    target = household(reg, outsider, FAR_GRID, "樊城路1号", "1")
    return {"gw": gw, "hid": hid, "living": living, "dead": dead, "gone": gone, "outsider": outsider,
            "target": target, "ids": {"living": make_id("420602", date(1970, 5, 1), 11),
                                      "dead": make_id("420602", date(1972, 3, 8), 22),
                                      "gone": make_id("420602", date(1995, 6, 1), 33)}}


def _state(svc) -> tuple:
    with svc.db.read() as s:
        people = sorted((r.id, r.name, r.phone, r.household_id, r.grid_code, r.status)
                        for r in s.scalars(select(Resident)))
        return (people, s.scalar(select(func.count()).select_from(ResidentEvent)),
                sorted((f.id, f.grid_code, f.active) for f in s.scalars(select(SpecialFlag))))


def _refusal(svc, who: str, hid: int, idn: str, **kw) -> str:
    with pytest.raises(Conflict) as e:
        households.move_in(svc, who, hid, name="冒名", id_number=idn, relation="other", phone="13700000000", **kw)
    return str(e.value)


def test_move_in_cannot_take_over_a_resident_of_another_county(reg, world):
    before = _state(reg)
    msg = _refusal(reg, world["outsider"], world["target"], world["ids"]["living"])
    assert _state(reg) == before  # nothing moved, renamed or re-phoned; no event, the flag stays
    with reg.db.read() as s:
        r = s.get(Resident, world["living"])
        assert (r.name, r.phone, r.grid_code, r.household_id) == ("张建国", "13812341234", SEED_GRID, world["hid"])
    assert "张建国" not in msg and SEED_GRID not in msg


def test_the_refusal_is_the_same_whatever_the_other_person_is(reg, world):
    msgs = {k: _refusal(reg, world["outsider"], world["target"], idn) for k, idn in world["ids"].items()}
    assert len(set(msgs.values())) == 1, msgs
    assert "deceased" not in msgs["dead"] and "死亡" not in msgs["dead"]


def test_the_owner_still_learns_of_a_death_in_their_own_grid(reg, world):
    assert "deceased" in _refusal(reg, world["gw"], world["hid"], world["ids"]["dead"])


def test_a_move_in_from_a_grid_the_actor_may_change_is_a_transfer(reg, world):
    head = sid(reg, "qiuyun")  # grid head of the village: may change both grids
    target = household(reg, head, OTHER_GRID, "檀溪路9号", "1")
    rid = households.move_in(reg, head, target, name="张建国", id_number=world["ids"]["living"], relation="head")
    assert rid == world["living"]
    with reg.db.read() as s:
        r = s.get(Resident, rid)
        assert (r.household_id, r.grid_code) == (target, OTHER_GRID)
    # ... but the grid worker of the other grid may not pull the person out of the seed grid
    other_worker = first_with_role(reg, OTHER_GRID, "grid_worker")
    before = _state(reg)
    _refusal(reg, other_worker, target, world["ids"]["gone"])
    assert _state(reg) == before


def test_a_person_who_moved_out_elsewhere_is_not_pulled_in_by_an_outsider(reg, world):
    before = _state(reg)
    _refusal(reg, world["outsider"], world["target"], world["ids"]["gone"])
    assert _state(reg) == before


def _file(tmp_path, name: str, idn: str) -> str:
    path = tmp_path / f"{name}.csv"
    with open(path, "w", encoding="utf-8", newline="") as f:
        w = csv.writer(f)
        w.writerow(["网格编码", "楼栋地址", "门牌号", "姓名", "身份证号", "联系电话", "与户主关系"])
        w.writerow([FAR_GRID, "樊城路1号", "1", "冒名", idn, "13700000000", "户主"])
    return str(path)


def test_the_import_dry_run_is_no_existence_oracle(reg, world, tmp_path):
    fresh = make_id("420602", date(1980, 1, 1), 55)
    answers = {}
    for k, idn in {**world["ids"], "fresh": fresh}.items():
        res = writer.import_file(reg, _file(tmp_path, k, idn), staff_id=world["outsider"], dry_run=True)
        answers[k] = (res.ok, res.rows, dict(res.counts), [str(e) for e in res.errors])
    assert answers["living"] == answers["dead"] == answers["gone"] == answers["fresh"], answers


def test_the_import_cannot_take_over_a_resident_either(reg, world, tmp_path):
    before = _state(reg)
    res = writer.import_file(reg, _file(tmp_path, "living", world["ids"]["living"]), staff_id=world["outsider"])
    assert not res.ok
    assert _state(reg)[0] == before[0]
    text = " ".join(str(e) for e in res.errors)
    assert "张建国" not in text and "may not change" not in text and SEED_GRID not in text


def test_the_web_move_in_cannot_take_over_a_resident(reg, world, tmp_path):
    app = make_app(reg, tmp_path)
    with reg.db.read() as s:
        from grid.org.models import Staff
        username = s.get(Staff, world["outsider"]).username
    client = login(app, username)
    before = _state(reg)
    r = client.post(f"/registry/household/{world['target']}/move-in", data={
        "csrf_token": csrf(client, f"/registry/household/{world['target']}"), "name": "冒名",
        "id_number": world["ids"]["living"], "relation": "other", "phone": "13700000000"})
    assert r.status_code in (302, 303)
    assert _state(reg) == before
