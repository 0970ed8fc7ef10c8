"""Organisation services over the small demo city, on SQLite and (when configured) PostgreSQL."""
from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import pytest
from sqlalchemy import func, select

from grid.org import demo
from grid.org import service as org
from grid.org.models import OrgUnit, Staff, StaffRole
from grid.org.passwords import DEMO_PASSWORD, hash_password, verify_password
from tests.db_helpers import BACKENDS, fresh_db

NOW = datetime(2026, 1, 5, 8, 0, tzinfo=UTC)

CITY = "420600000000"
XIANGCHENG = "420602000000"
ZHENWUSHAN = "420602003000"
OTHER_TOWNSHIP = "420602001000"  # the other street of 襄城区 in small mode
TANXI = "420602003005"
GRID15 = "420602003005015"
GRID1 = "420602003005001"




@pytest.fixture(scope="module", params=BACKENDS)
def city(request, tmp_path_factory):
    """The small demo, generated once per backend; tests using it must not write."""
    with fresh_db(request.param, tmp_path_factory.mktemp("org")) as db:
        demo.generate(db, "small", now=NOW)
        yield db


@pytest.fixture(params=BACKENDS)
def wcity(request, tmp_path):
    """A fresh small demo per test, for tests that change data."""
    with fresh_db(request.param, tmp_path) as db:
        demo.generate(db, "small", now=NOW)
        yield db


# --- tree ---------------------------------------------------------------------------------------


def test_tree_shape_and_codes(city):
    with city.read() as s:
        units = s.scalars(select(OrgUnit)).all()
        by_code = {u.code: u for u in units}
        for u in units:
            assert u.depth == ["city", "county", "township", "village", "grid"].index(u.level) + 1
            assert len(u.code) == (15 if u.level == "grid" else 12)
            parent = by_code.get(u.parent_code)
            if u.level == "city":
                assert parent is None and u.path == f"{u.code}/"
            else:
                assert parent.depth == u.depth - 1
                assert u.path == f"{parent.path}{u.code}/"
            if u.level == "county":
                assert u.code.endswith("000000")
            if u.level == "township":
                assert u.code.startswith(u.parent_code[:6]) and u.code.endswith("000")
            if u.level in ("village", "grid"):
                assert u.code.startswith(u.parent_code[: 9 if u.level == "village" else 12])
        assert [c.name for c in org.children(s, CITY)] == ["襄城区", "樊城区"]
        assert [c.code for c in org.children(s, TANXI)] == [GRID1, GRID15]
        assert {u.level for u in org.subtree(s, ZHENWUSHAN)} == {"township", "village", "grid"}
        assert len(org.subtree(s, ZHENWUSHAN, level="grid")) == 4


def test_seed_chain(city):
    with city.read() as s:
        grid = org.get_unit(s, GRID15)
        assert (grid.name, grid.level, grid.kind) == ("第十五网格", "grid", "网格")
        chain = org.chain_up(s, GRID15)
        assert [u.name for u in chain] == ["檀溪社区", "真武山街道", "襄城区", "襄阳市"]
        assert [u.code for u in chain] == [TANXI, ZHENWUSHAN, XIANGCHENG, CITY]
        assert [u.kind for u in chain] == ["社区", "街道", "区", "市"]
        assert [u.name for u in org.chain_up(s, ZHENWUSHAN)] == ["真武山街道", "襄城区", "襄阳市"]
        assert org.escalation_data(s, GRID15) == {
            "levels": ["village", "township", "county", "city"],
            "level_units": [TANXI, ZHENWUSHAN, XIANGCHENG, CITY],
            "grid_unit": GRID15,
        }
        assert org.get_unit(s, "999999999999") is None
        with pytest.raises(org.OrgError):
            org.chain_up(s, "999999999999")


# --- staff and roles ------------------------------------------------------------------------------


def test_staff_for_and_roles(city):
    with city.read() as s:
        worker = org.current_grid_worker(s, GRID15)
        assert (worker.name, worker.username) == ("江冉冉", "jiangranran")
        assert [p.username for p in org.staff_for(s, TANXI, "grid_head")] == ["qiuyun"]
        assert org.staff_for(s, TANXI, "grid_head")[0].name == "邱云"
        mediators = org.staff_for(s, TANXI, "mediator")
        assert len(mediators) == 2
        titles = sorted(r.title for p in mediators for r in org.roles_of(s, p.id))
        assert titles == sorted(["综治主任", "城管主任"])
        assert len(org.staff_for(s, ZHENWUSHAN, "dispatcher")) == 2
        assert len(org.staff_for(s, CITY, "supervisor")) == 1
        assert org.staff_for(s, TANXI, "dispatcher") == []
        assert org.holds_role(s, worker.id, GRID15, "grid_worker")
        assert not org.holds_role(s, worker.id, GRID1, "grid_worker")
        assert not org.holds_role(s, worker.id, GRID15, "grid_head")
        assert [(r.unit_code, r.role) for r in org.roles_of(s, worker.id)] == [(GRID15, "grid_worker")]


def test_pool_names_match_staff_for_in_one_read(city):
    """The list pages name every pool's holders with one statement; each pool's names and their
    order are those of staff_for, an empty pool is named as empty, not left out."""
    pairs = {(TANXI, "mediator"), (TANXI, "grid_head"), (ZHENWUSHAN, "dispatcher"), (TANXI, "dispatcher"),
             (CITY, "supervisor")}
    with city.read() as s:
        got = org.pool_names(s, pairs)
        assert got == {(u, r): [p.name for p in org.staff_for(s, u, r)] for u, r in pairs}
        assert len(got[(TANXI, "mediator")]) == 2 and got[(TANXI, "dispatcher")] == []
        assert org.pool_names(s, set()) == {}


def test_roles_sit_on_their_levels(city):
    with city.read() as s:
        rows = s.execute(select(StaffRole.role, OrgUnit.level).join(OrgUnit, OrgUnit.code == StaffRole.unit_code))
        for role, level in rows:
            assert level in org.ROLE_LEVELS[role], (role, level)


def test_assign_role_checks_level(wcity):
    with wcity.write() as s:
        p = org.create_staff(s, "New.Person", "新人", password="pw-123456", now=NOW)
        assert p.username == "new.person" and p.id.startswith("u")
        with pytest.raises(org.OrgError):
            org.assign_role(s, p.id, TANXI, "grid_worker")
        with pytest.raises(org.OrgError):
            org.assign_role(s, p.id, GRID15, "dispatcher")
        with pytest.raises(org.OrgError):
            org.assign_role(s, p.id, TANXI, "nonsense")
        r = org.assign_role(s, p.id, ZHENWUSHAN, "mediator", title="司法所长", since=date(2026, 1, 1))
        assert r.active and r.until is None
        assert org.holds_role(s, p.id, ZHENWUSHAN, "mediator")


def test_move_grid_worker(wcity):
    with wcity.write() as s:
        old = org.current_grid_worker(s, GRID15)
        newcomer = org.create_staff(s, "newgw", "新网格员", password="pw-123456", now=NOW)
        org.move_grid_worker(s, GRID15, newcomer.id, on=date(2026, 2, 1))
    with wcity.read() as s:
        assert org.current_grid_worker(s, GRID15).id == newcomer.id
        assert not org.holds_role(s, old.id, GRID15, "grid_worker")  # the reporter has left the grid
        assert org.roles_of(s, old.id) == []
        history = org.roles_of(s, old.id, active_only=False)
        assert [(h.active, h.until) for h in history] == [(False, date(2026, 2, 1))]
        assert not org.in_jurisdiction(s, old.id, GRID15)
        assert org.in_jurisdiction(s, newcomer.id, GRID15)


# --- jurisdiction ---------------------------------------------------------------------------------


def _visible(s, staff_id: str) -> set[str]:
    q = select(OrgUnit.code).where(org.jurisdiction_filter(s, staff_id, OrgUnit.code))
    return set(s.scalars(q))


def test_jurisdiction(city):
    with city.read() as s:
        all_units = {u.code: u for u in s.scalars(select(OrgUnit))}
        worker = org.current_grid_worker(s, GRID15)
        assert org.jurisdiction_paths(s, worker.id) == [f"{CITY}/{XIANGCHENG}/{ZHENWUSHAN}/{TANXI}/{GRID15}/"]
        assert _visible(s, worker.id) == {GRID15}
        assert org.in_jurisdiction(s, worker.id, GRID15)
        assert not org.in_jurisdiction(s, worker.id, GRID1)
        assert not org.in_jurisdiction(s, worker.id, TANXI)

        disp = org.staff_for(s, ZHENWUSHAN, "dispatcher")[0]
        expected = {c for c, u in all_units.items() if f"/{ZHENWUSHAN}/" in f"/{u.path}"}
        assert _visible(s, disp.id) == expected and len(expected) == 1 + 2 + 4
        assert org.in_jurisdiction(s, disp.id, GRID15)
        assert org.in_jurisdiction(s, disp.id, ZHENWUSHAN)
        assert not org.in_jurisdiction(s, disp.id, OTHER_TOWNSHIP)  # sibling township
        assert not any(org.in_jurisdiction(s, disp.id, c.code) for c in org.children(s, OTHER_TOWNSHIP))
        assert not org.in_jurisdiction(s, disp.id, XIANGCHENG)
        assert not org.in_jurisdiction(s, disp.id, "999999999999")

        head = org.staff_for(s, TANXI, "grid_head")[0]
        assert _visible(s, head.id) == {TANXI, GRID1, GRID15}

        sup = org.staff_for(s, CITY, "supervisor")[0]
        assert _visible(s, sup.id) == set(all_units)


def test_no_roles_no_jurisdiction(wcity):
    with wcity.write() as s:
        nobody = org.create_staff(s, "nobody", "无角色", password_hash="x", now=NOW)
        assert org.jurisdiction_paths(s, nobody.id) == []
        assert _visible(s, nobody.id) == set()
        assert not org.in_jurisdiction(s, nobody.id, GRID15)


def test_jurisdiction_filter_on_other_tables(city):
    """The condition works on any table's unit column, e.g. roles by unit."""
    with city.read() as s:
        disp = org.staff_for(s, ZHENWUSHAN, "dispatcher")[0]
        q = select(func.count()).select_from(StaffRole).where(org.jurisdiction_filter(s, disp.id, StaffRole.unit_code))
        # township centre 5 + 2 villages x 4 + 4 grids x 1
        assert s.scalar(q) == 5 + 8 + 4


def test_jurisdiction_paths_keep_outermost(wcity):
    with wcity.write() as s:
        disp = org.staff_for(s, ZHENWUSHAN, "dispatcher")[0]
        org.assign_role(s, disp.id, TANXI, "mediator")
        org.assign_role(s, disp.id, XIANGCHENG, "supervisor")
        assert org.jurisdiction_paths(s, disp.id) == [f"{CITY}/{XIANGCHENG}/"]


def test_path_under_rejects_non_paths():
    for bad in ["4206", "4206/%", "", "a/", "4206//"]:
        with pytest.raises(org.OrgError):
            org.path_under(OrgUnit.path, bad)


# --- login ----------------------------------------------------------------------------------------


def test_demo_login(wcity):
    with wcity.write() as s:
        assert org.authenticate(s, "jiangranran", DEMO_PASSWORD, NOW).name == "江冉冉"
        assert org.authenticate(s, " JiangRanRan ", DEMO_PASSWORD, NOW) is not None
        assert org.authenticate(s, "jiangranran", "wrong", NOW) is None
        assert org.authenticate(s, "no.such.user", DEMO_PASSWORD, NOW) is None


def test_lockout(wcity):
    with wcity.write() as s:
        p = org.create_staff(s, "lockme", "锁定", password="right-pw", now=NOW)
        sid = p.id
        for _ in range(4):
            assert org.authenticate(s, "lockme", "wrong", NOW) is None
        assert org.authenticate(s, "lockme", "right-pw", NOW) is not None
        assert p.failed_logins == 0  # success resets the counter

        for _ in range(5):
            assert org.authenticate(s, "lockme", "wrong", NOW) is None
        assert p.locked_until == NOW + timedelta(minutes=15)
        assert org.locked_for(p, NOW + timedelta(minutes=1)) == timedelta(minutes=14)
    with wcity.write() as s:  # survives a round trip through the database
        p = s.get(Staff, sid)
        assert p.failed_logins == 5 and org.locked_for(p, NOW) == timedelta(minutes=15)
        later = NOW + timedelta(minutes=14)
        assert org.authenticate(s, "lockme", "right-pw", later) is None  # locked: even the right password
        assert p.failed_logins == 5  # attempts while locked are not counted
        later = NOW + timedelta(minutes=15, seconds=1)
        for _ in range(5):
            assert org.authenticate(s, "lockme", "wrong", later) is None
        assert p.locked_until == later + timedelta(minutes=30)  # the lock grows
        assert org.locked_for(p, later + timedelta(minutes=31)) is None
        assert org.authenticate(s, "lockme", "right-pw", later + timedelta(minutes=31)) is not None
        assert p.failed_logins == 0 and p.locked_until is None


def test_set_password_and_inactive(wcity):
    with wcity.write() as s:
        p = org.create_staff(s, "pwuser", "改密", password="old-pw", now=NOW)
        for _ in range(5):
            org.authenticate(s, "pwuser", "wrong", NOW)
        assert org.locked_for(p, NOW)
        org.set_password(s, p.id, "new-pw")
        assert org.locked_for(p, NOW) is None
        assert org.authenticate(s, "pwuser", "old-pw", NOW) is None
        assert org.authenticate(s, "pwuser", "new-pw", NOW) is not None
        p.active = False
        assert org.authenticate(s, "pwuser", "new-pw", NOW) is None
        assert p.id not in {x.id for x in org.staff_for(s, GRID15, "grid_worker")}


def test_passwords():
    h = hash_password("秘密-123")
    assert h.startswith("scrypt:") and verify_password(h, "秘密-123")
    assert not verify_password(h, "秘密-124")
    assert not verify_password("garbage", "x") and not verify_password(h, "")
    with pytest.raises(ValueError):
        hash_password("")
