"""Administrators' verbs (grid.org.admin): jurisdiction (a county administrator manages the county,
nothing else), every change audited with before and after, sessions ended on deactivation, reset
and role removal, open tasks handed over in one action."""
from __future__ import annotations

import pytest

from engine.errors import InvalidData
from grid.errors import Forbidden
from grid.org import accounts, admin, audit, sessions
from grid.org import admin_pages as pages
from grid.org import service as org
from grid.org.service import OrgError
from tests.web_helpers import SEED_GRID, dispatch, open_items, report_case, staff_id

COUNTY = "420602000000"
OTHER_COUNTY_GRID = "420607"  # prefix of a unit outside the county (Fancheng / other district)


@pytest.fixture
def county_admin(svc):
    with svc.db.write() as s:
        st = org.create_staff(s, "county.admin", "区管理员", password="Admin-pass-2026!")
        org.assign_role(s, st.id, COUNTY, "admin")
        return st.id


def _outside_unit(svc) -> str:
    with svc.db.read() as s:
        return next(u.code for u in org.children(s, org.chain_up(s, SEED_GRID)[-1].code) if u.code != COUNTY)


def test_county_admin_manages_the_county_only_and_denials_are_audited(svc, county_admin):
    page = pages.unit_page(svc, county_admin, COUNTY)
    assert page["unit"].code == COUNTY and page["children"]
    outside = _outside_unit(svc)
    with pytest.raises(Forbidden):
        pages.unit_page(svc, county_admin, outside)
    with pytest.raises(Forbidden):
        admin.reset_password(svc, county_admin, staff_id(svc, "admin"))  # the city's admin is not hers
    denied = audit.query(svc, kind=audit.ACCESS_DENIED, person=county_admin)
    assert denied.total == 2 and {e.detail["action"] for e in denied.events} == {"view_unit", "reset_password"}
    found = pages.search(svc, county_admin, "jiang")
    assert all(u.code.startswith(COUNTY[:6]) for u in found["units"])


def test_add_staff_forces_a_policy_password_at_first_sign_in(svc, county_admin):
    acc = admin.add_staff(svc, county_admin, name="新网格员", unit_code=SEED_GRID, role="grid_worker",
                          phone="13912345678", title="专职网格员")
    assert acc.username == "13912345678"
    sid = accounts.sign_in(svc, acc.username, acc.initial_password)
    assert sid == acc.staff_id and accounts.account(svc, sid).must_change_password
    for bad, reason in (("short1A!", "too_short"), ("alllowercase1", "classes"),
                        (f"X{acc.username}x!", "username"), (acc.initial_password, "reused")):
        with pytest.raises(InvalidData) as e:
            accounts.change_password(svc, sid, acc.initial_password, bad, bad)
        assert e.value.errors[0].get("reason") == reason, (bad, e.value.errors)
    accounts.change_password(svc, sid, acc.initial_password, "Grid-worker-2026", "Grid-worker-2026")
    assert not accounts.must_change_password(svc, sid)
    created = audit.query(svc, kind=audit.ACCOUNT_CREATED, person=sid).events[0]
    assert created.actor == county_admin and created.detail["after"]["role"] == "grid_worker"
    assert "13912345678" not in str(created.detail)


def test_last_five_passwords_are_refused(svc, county_admin):
    acc = admin.add_staff(svc, county_admin, name="轮换", unit_code=SEED_GRID, role="grid_worker", username="rot.user")
    current = acc.initial_password
    used = [f"Rotation-{i}-pass" for i in range(6)]
    for pw in used:
        accounts.change_password(svc, acc.staff_id, current, pw, pw)
        current = pw
    for old in used[-5:]:
        with pytest.raises(InvalidData):
            accounts.change_password(svc, acc.staff_id, current, old, old)
    accounts.change_password(svc, acc.staff_id, current, used[0], used[0])  # six back: allowed again


def test_reset_unlock_and_role_removal_end_sessions_and_are_audited(svc, county_admin):
    worker = staff_id(svc, "jiangranran")
    sessions.create(svc, worker)
    pw = admin.reset_password(svc, county_admin, worker)
    assert sessions.active(svc, worker) == [] and accounts.must_change_password(svc, worker)
    assert accounts.sign_in(svc, "jiangranran", pw) == worker
    for _ in range(5):
        accounts.sign_in(svc, "jiangranran", "wrong")
    admin.unlock(svc, county_admin, worker)
    assert accounts.sign_in(svc, "jiangranran", pw) == worker
    sessions.create(svc, worker)
    role_id = pages.staff_page(svc, county_admin, worker)["staff"].roles[0][0]
    assert admin.remove_role(svc, county_admin, worker, role_id) == 1
    admin.assign_role(svc, county_admin, worker, SEED_GRID, "grid_worker")
    kinds = {e.kind for e in audit.query(svc, person=worker, per_page=200).events}
    assert {audit.PASSWORD_RESET, audit.UNLOCKED, audit.ROLE_REMOVED, audit.ROLE_ASSIGNED, audit.SESSION_ENDED} <= kinds
    unlocked = audit.query(svc, kind=audit.UNLOCKED).events[0]
    assert unlocked.detail["before"]["failed_logins"] == 5 and unlocked.detail["after"]["failed_logins"] == 0


def test_deactivate_hands_open_tasks_over_in_one_action(svc, county_admin):
    case = report_case(svc)
    dispatch(svc, case.id)
    items = open_items(svc, case.id, "mediate")
    med1, med2 = items[0].user_id, items[1].user_id
    assert [t.task_guid for t in admin.open_tasks(svc, county_admin, med1)] == [items[0].task_guid]
    assert med2 in dict(admin.handover_candidates(svc, med1))
    sessions.create(svc, med1)
    assert admin.deactivate(svc, county_admin, med1, hand_over_to=med2) == 1
    assert {w.user_id for w in open_items(svc, case.id, "mediate")} == {med2}
    assert accounts.account(svc, med1) is None and sessions.active(svc, med1) == []
    assert accounts.sign_in(svc, "med1.420602003005", "gridflow-demo") is None
    ev = audit.query(svc, kind=audit.ACCOUNT_DEACTIVATED).events[0]
    assert ev.detail["before"]["active"] and ev.detail["after"] == {"active": False} and ev.detail["handed_over"] == 1
    assert audit.query(svc, kind=audit.TASKS_HANDED_OVER).total == 1


def test_handover_to_someone_without_the_role_is_refused(svc, county_admin):
    case = report_case(svc)
    dispatch(svc, case.id)
    med1 = open_items(svc, case.id, "mediate")[0].user_id
    with pytest.raises(OrgError, match="does not hold the role"):
        admin.hand_over(svc, county_admin, med1, staff_id(svc, "jiangranran"))
    assert admin.open_tasks(svc, county_admin, med1)


def test_units_add_rename_retire_and_move_a_grid_worker(svc, county_admin):
    village = SEED_GRID[:12]
    new = admin.add_unit(svc, county_admin, village, village + "901", "新建网格")
    assert new.level == "grid"
    with pytest.raises(OrgError):
        admin.add_unit(svc, county_admin, village, "420602003099901", "错误代码")
    admin.rename_unit(svc, county_admin, new.code, "新建第一网格")
    worker = staff_id(svc, "jiangranran")
    admin.move_grid_worker(svc, county_admin, worker, new.code)
    with svc.db.read() as s:
        assert [(r.unit_code, r.role) for r in org.roles_of(s, worker)] == [(new.code, "grid_worker")]
    with pytest.raises(OrgError):  # someone works it
        admin.retire_unit(svc, county_admin, village)
    admin.move_grid_worker(svc, county_admin, worker, SEED_GRID)
    retired = admin.retire_unit(svc, county_admin, new.code)
    assert retired.retired
    with pytest.raises(OrgError):
        admin.add_staff(svc, county_admin, name="x", unit_code=new.code, role="grid_worker", username="x.user")
    kinds = [e.kind for e in audit.query(svc, unit=new.code, within=False, per_page=100).events]
    assert {audit.UNIT_ADDED, audit.UNIT_RENAMED, audit.UNIT_RETIRED, audit.ACCOUNT_MOVED} <= set(kinds)
    renamed = audit.query(svc, kind=audit.UNIT_RENAMED).events[0]
    assert renamed.detail == {"before": {"name": "新建网格"}, "after": {"name": "新建第一网格"}}


def test_retire_refuses_a_unit_with_open_cases(svc, county_admin):
    case = report_case(svc)
    assert open_items(svc, case.id)
    with pytest.raises(OrgError):
        admin.retire_unit(svc, county_admin, SEED_GRID[:12])


def test_every_administrator_kind_is_recorded(svc, county_admin, tmp_path):
    from grid.org import importer

    village = SEED_GRID[:12]
    units = tmp_path / "units.csv"
    units.write_text(f"code,parent_code,name,level\n{village}902,{village},导入网格,grid\n", encoding="utf-8")
    importer.import_org(svc, units, actor=county_admin)
    acc = admin.add_staff(svc, county_admin, name="全流程", unit_code=SEED_GRID, role="grid_worker",
                          username="all.kinds")
    admin.edit_staff(svc, county_admin, acc.staff_id, title="兼职网格员")
    admin.assign_role(svc, county_admin, acc.staff_id, village, "mediator")
    role_id = [r for r in pages.staff_page(svc, county_admin, acc.staff_id)["staff"].roles if r[3] == "mediator"][0][0]
    admin.remove_role(svc, county_admin, acc.staff_id, role_id)
    admin.reset_password(svc, county_admin, acc.staff_id)
    admin.unlock(svc, county_admin, acc.staff_id)
    admin.move_grid_worker(svc, county_admin, acc.staff_id, f"{village}902")
    case = report_case(svc)
    dispatch(svc, case.id)
    med1, med2 = (w.user_id for w in open_items(svc, case.id, "mediate"))
    admin.hand_over(svc, county_admin, med1, med2)
    admin.deactivate(svc, county_admin, acc.staff_id)
    added = admin.add_unit(svc, county_admin, village, f"{village}903", "临时网格")
    admin.rename_unit(svc, county_admin, added.code, "临时网格二")
    admin.retire_unit(svc, county_admin, added.code)
    with pytest.raises(Forbidden):
        admin.unlock(svc, county_admin, staff_id(svc, "admin"))
    recorded = {e.kind for e in audit.query(svc, per_page=200).events}
    assert set(audit.ADMIN_KINDS) <= recorded, set(audit.ADMIN_KINDS) - recorded
    for e in audit.query(svc, kind=list(audit.ADMIN_KINDS), per_page=200).events:
        assert e.actor == county_admin and e.at is not None
        if e.kind not in (audit.ACCESS_DENIED, audit.ORG_IMPORT):
            assert "before" in e.detail and "after" in e.detail, e
