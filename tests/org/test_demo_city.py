"""The demo generator: shape, seed names, determinism, idempotence; the full city is marked slow."""
from __future__ import annotations

from collections import Counter
from datetime import UTC, datetime

import pytest
from sqlalchemy import func, select

from grid.org import demo
from grid.org import service as org
from grid.org.models import OrgUnit, Staff, StaffRole
from grid.org.passwords import DEMO_PASSWORD, demo_password_hash, verify_password
from tests.db_helpers import BACKENDS, fresh_db

NOW = datetime(2026, 1, 5, 8, 0, tzinfo=UTC)




@pytest.fixture(params=BACKENDS)
def empty(request, tmp_path):
    with fresh_db(request.param, tmp_path) as db:
        yield db


def test_chinese_numbers():
    assert [demo.chinese_number(n) for n in (1, 9, 10, 11, 15, 20, 21, 99)] == [
        "一", "九", "十", "十一", "十五", "二十", "二十一", "九十九"]
    assert demo.grid_name(15) == "第十五网格"


def test_small_mode(empty):
    seen = []
    counts = demo.generate(empty, "small", now=NOW, progress=lambda done, total: seen.append((done, total)))
    expected = {"city": 1, "county": 2, "township": 4, "village": 8, "grid": 16}
    staff = 16 + 8 * 4 + (1 + 2 + 4) * 5 + 1 + 3  # + the city's admin, an operator per county and the city
    assert counts == {**expected, "units": 31, "staff": staff, "roles": staff, "created": True}
    assert seen and seen[-1] == (31 + 2 * staff, 31 + 2 * staff)
    assert [d for d, _ in seen] == sorted(d for d, _ in seen)
    with empty.read() as s:
        assert demo.counts(s) == {**expected, "units": 31, "staff": staff, "roles": staff}
        names = {u.code: u.name for u in s.scalars(select(OrgUnit))}
        assert names[demo.SEED_TOWNSHIP] == "真武山街道" and names[demo.SEED_VILLAGE] == "檀溪社区"
        assert names[demo.SEED_GRID] == "第十五网格" and names[demo.SEED_VILLAGE + "001"] == "第一网格"
        assert {names["420602000000"], names["420606000000"]} == {"襄城区", "樊城区"}
        # every village has a grid head, two mediators and a supervisor; every grid one worker
        per_unit = Counter(s.execute(select(StaffRole.unit_code, StaffRole.role)).all())
        for code, name in names.items():
            level = s.get(OrgUnit, code).level
            want = {
                "grid": {"grid_worker": 1},
                "village": {"grid_head": 1, "mediator": 2, "supervisor": 1},
            }.get(level, {"dispatcher": 2, "mediator": 2, "supervisor": 1})
            if level in ("county", "city"):
                want = {**want, "operator": 1}  # the 12345 hotline / service window
            if level == "city":
                want = {**want, "admin": 1}
            got = {role: n for (c, role), n in per_unit.items() if c == code}
            assert got == want, (code, name)


def test_accepts_a_session_and_is_idempotent(empty):
    with empty.write() as s:
        assert demo.generate(s, "small", now=NOW)["created"] is True
    again = demo.generate(empty, "small", now=NOW)
    assert again["created"] is False and again["grid"] == 16 and again["staff"] == 87
    again = demo.generate(empty, "full", now=NOW)  # any size: existing units mean no-op
    assert again["created"] is False and again["county"] == 2


def test_usernames_and_accounts(empty):
    demo.generate(empty, "small", now=NOW)
    with empty.read() as s:
        rows = s.execute(
            select(Staff.username, Staff.name, Staff.phone, Staff.password_hash, StaffRole.role, StaffRole.unit_code)
            .join(StaffRole, StaffRole.staff_id == Staff.id)
        ).all()
        prefix = {"grid_worker": "gw", "grid_head": "head", "supervisor": "sup", "operator": "op"}
        for username, name, phone, pw_hash, role, unit in rows:
            assert username.isascii() and username.isprintable() and " " not in username
            assert len(phone) == 11 and phone[0] == "1" and phone.isdigit()
            assert 2 <= len(name) <= 3
            assert pw_hash == demo_password_hash()
            if username in ("jiangranran", "qiuyun", "admin"):
                continue
            if role in prefix:
                assert username == f"{prefix[role]}.{unit}"
            else:
                assert username in (f"med1.{unit}", f"med2.{unit}", f"disp1.{unit}", f"disp2.{unit}")
        assert sum(1 for r in rows if r.name in ("江冉冉", "邱云")) == 2  # the seed names are unique
        assert s.scalar(select(func.count(func.distinct(Staff.id)))) == len(rows)

        accounts = demo.demo_accounts(s)
        assert accounts[0] == ("grid", "第十五网格", "grid_worker", "jiangranran")
        assert accounts[1] == ("village", "檀溪社区", "grid_head", "qiuyun")
        assert [(lv, role) for lv, _, role, _ in accounts] == [
            ("grid", "grid_worker"),
            ("village", "grid_head"), ("village", "mediator"), ("village", "supervisor"),
            ("township", "dispatcher"), ("township", "mediator"), ("township", "supervisor"),
            ("county", "dispatcher"), ("county", "mediator"), ("county", "supervisor"), ("county", "operator"),
            ("city", "dispatcher"), ("city", "mediator"), ("city", "supervisor"), ("city", "operator"), ("city", "admin"),
        ]
        assert [name for lv, name, _, _ in accounts if lv != "grid"][-5:] == ["襄阳市"] * 5
        assert accounts[-1][3] == "admin"
    assert verify_password(demo_password_hash(), DEMO_PASSWORD)
    with empty.write() as s:
        for _, _, _, username in accounts[:2] + accounts[-5:-4] + accounts[-1:]:  # all share one hash (checked above)
            assert org.authenticate(s, username, DEMO_PASSWORD, NOW) is not None, username


def _fingerprint(size: str, seed: int) -> tuple:
    b = demo.build(size, seed, NOW)
    return (
        [(u["code"], u["name"], u["lat"], u["lng"]) for u in b.units],
        [(p["id"], p["username"], p["name"], p["phone"]) for p in b.staff],
        [(r["staff_id"], r["unit_code"], r["role"], r["title"]) for r in b.roles],
    )


def test_deterministic():
    assert _fingerprint("small", 42) == _fingerprint("small", 42)
    full = _fingerprint("full", 42)
    assert full == _fingerprint("full", 42)
    other = _fingerprint("full", 7)
    assert other[1] != full[1]  # other names
    assert len(other[0]) != len(full[0]) or other[0] != full[0]
    # the seed chain is the same for every seed
    for fp in (full, other):
        units = {code: name for code, name, _, _ in fp[0]}
        assert units[demo.SEED_GRID] == "第十五网格" and units[demo.SEED_VILLAGE] == "檀溪社区"
        assert ("jiangranran", "江冉冉") in {(u, n) for _, u, n, _ in fp[1]}


def test_same_seed_same_rows_in_the_database(tmp_path):
    def dump(path):
        with fresh_db("sqlite", path) as db:
            demo.generate(db, "small", seed=3, now=NOW)
            with db.read() as s:
                return (s.execute(select(OrgUnit.code, OrgUnit.name, OrgUnit.path).order_by(OrgUnit.code)).all(),
                        s.execute(select(Staff.id, Staff.username, Staff.name).order_by(Staff.id)).all())
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    assert dump(tmp_path / "a") == dump(tmp_path / "b")


@pytest.mark.slow
def test_full_city(empty):
    """Counts and shape of the full city; how long it takes is bench/demo_bench.py's business."""
    calls = []
    counts = demo.generate(empty, "full", now=NOW, progress=lambda d, t: calls.append((d, t)))
    assert counts["city"] == 1 and counts["county"] == 12
    assert counts["township"] >= 100 and counts["village"] >= 2700
    assert counts["staff"] == counts["grid"] + 4 * counts["village"] + 5 * (1 + 12 + counts["township"]) + 1 + 13  # + admin, + an operator per county and the city
    assert calls[-1][0] == calls[-1][1] == counts["units"] + counts["staff"] + counts["roles"]
    with empty.read() as s:
        assert demo.counts(s) == {k: v for k, v in counts.items() if k != "created"}
        counties = {u.code[:6]: u.name for u in org.children(s, demo.CITY_CODE)}
        assert counties == {
            "420602": "襄城区", "420606": "樊城区", "420607": "襄州区", "420624": "南漳县",
            "420625": "谷城县", "420626": "保康县", "420682": "老河口市", "420683": "枣阳市",
            "420684": "宜城市", "420671": "襄阳高新技术产业开发区", "420672": "襄阳经济技术开发区",
            "420673": "鱼梁洲经济开发区",
        }
        grids_per_village = dict(s.execute(
            select(OrgUnit.parent_code, func.count()).where(OrgUnit.level == "grid").group_by(OrgUnit.parent_code)
        ).all())
        assert len(grids_per_village) == counts["village"]
        assert grids_per_village.pop(demo.SEED_VILLAGE) >= 15
        assert set(grids_per_village.values()) <= {2, 3, 4, 5}
        assert [u.name for u in org.chain_up(s, demo.SEED_GRID)] == ["檀溪社区", "真武山街道", "襄城区", "襄阳市"]
        # names are unique among siblings
        dupes = s.execute(
            select(OrgUnit.parent_code, OrgUnit.name).group_by(OrgUnit.parent_code, OrgUnit.name)
            .having(func.count() > 1)
        ).all()
        assert dupes == []
        assert s.scalar(select(func.count()).where(OrgUnit.name.in_(["檀溪社区", "真武山街道"]))) == 2
        disp = org.staff_for(s, demo.SEED_TOWNSHIP, "dispatcher")[0]
        assert org.in_jurisdiction(s, disp.id, demo.SEED_GRID)
        assert not org.in_jurisdiction(s, disp.id, "420602001000")
