"""Issue 10 scope 7: every kind the security audit must hold is appended to the one audit table
(`security_event`) by a real request, each asserted by its own test: sign-in, sign-out, failure,
throttling, password change, password reset, role change, reveal of personal data, export,
administrator actions and access denials. Every row also joins the audit chain."""
from __future__ import annotations

import re
from datetime import date

import pytest

from grid.org import audit
from grid.org.passwords import DEMO_PASSWORD
from grid.registry import visits
from tests.registry_helpers import SEED_GRID, household, person
from tests.web_helpers import csrf, login, staff_id


@pytest.fixture
def app_svc(svc):
    visits.install(svc)
    return svc


def last(svc, kind: str, **kw) -> audit.EventView:
    page = audit.query(svc, kind=kind, **kw)
    assert page.total >= 1, f"no {kind} event"
    return page.events[0]


def post_login(client, username: str, password: str) -> int:
    return client.post("/login", data={"username": username, "password": password,
                                       "csrf_token": csrf(client, "/login")}).status_code


def test_sign_in(app, svc):
    login(app, "jiangranran")
    ev = last(svc, audit.SIGN_IN)
    sid = staff_id(svc, "jiangranran")
    assert (ev.actor, ev.subject, ev.ip) == (sid, sid, "127.0.0.1")


def test_sign_out(app, svc):
    c = login(app, "jiangranran")
    c.post("/logout", data={"csrf_token": csrf(c)})
    ev = last(svc, audit.SIGN_OUT)
    assert ev.actor == staff_id(svc, "jiangranran")


def test_sign_in_failure(app, svc):
    assert post_login(app.test_client(), "jiangranran", "not-the-password") == 401
    ev = last(svc, audit.SIGN_IN_FAILURE)
    assert ev.subject == staff_id(svc, "jiangranran") and ev.detail.get("failures") == 1
    assert "not-the-password" not in str(ev.detail)


def test_throttling(app, svc):
    c = app.test_client()
    for _ in range(5):
        post_login(c, "jiangranran", "not-the-password")
    assert post_login(c, "jiangranran", DEMO_PASSWORD) == 401
    ev = last(svc, audit.THROTTLED)
    assert ev.subject == staff_id(svc, "jiangranran")


def test_password_change(app, svc):
    c = login(app, "jiangranran")
    c.post("/settings/password", data={"csrf_token": csrf(c), "current_password": DEMO_PASSWORD,
                                       "new_password": "Another-pass-2", "confirm": "Another-pass-2"})
    ev = last(svc, audit.PASSWORD_CHANGE)
    assert ev.actor == ev.subject == staff_id(svc, "jiangranran")
    assert "Another-pass-2" not in str(ev.detail)


def test_password_reset_by_an_administrator(app, svc):
    victim = staff_id(svc, "jiangranran")
    boss = login(app, "admin")
    r = boss.post(f"/admin/org/staff/{victim}/reset-password", data={"csrf_token": csrf(boss, f"/admin/org/staff/{victim}")})
    assert r.status_code == 200
    otp = re.search(r'class="otp">([^<]+)<', r.get_data(as_text=True)).group(1)
    ev = last(svc, audit.PASSWORD_RESET)
    assert (ev.actor, ev.subject) == (staff_id(svc, "admin"), victim)
    assert otp not in str(ev.detail)


def test_role_change(app, svc):
    who = staff_id(svc, "jiangranran")
    boss = login(app, "admin")
    token = csrf(boss, f"/admin/org/staff/{who}")
    boss.post(f"/admin/org/staff/{who}/roles", data={"csrf_token": token, "unit": SEED_GRID[:12],
                                                    "role": "mediator", "title": "兼职调解员"})
    ev = last(svc, audit.ROLE_ASSIGNED)
    assert (ev.actor, ev.subject, ev.unit) == (staff_id(svc, "admin"), who, SEED_GRID[:12])
    page = boss.get(f"/admin/org/staff/{who}").get_data(as_text=True)
    role_id = max(int(x) for x in re.findall(rf"/admin/org/staff/{who}/roles/(\d+)/remove", page))
    boss.post(f"/admin/org/staff/{who}/roles/{role_id}/remove", data={"csrf_token": token})
    ev = last(svc, audit.ROLE_REMOVED)
    assert (ev.actor, ev.subject) == (staff_id(svc, "admin"), who)
    assert "before" in ev.detail


def test_reveal_of_personal_data(app, svc):
    gw = staff_id(svc, "jiangranran")
    hid = household(svc, gw, SEED_GRID, "檀溪路9号", "9-101")
    rid = person(svc, gw, hid, "王五", date(1980, 2, 3), 17, phone="13812345678")
    c = login(app, "jiangranran")
    r = c.post(f"/registry/resident/{rid}/reveal", data={"csrf_token": csrf(c, f"/registry/resident/{rid}"),
                                                        "field": "phone", "reason": "回访"})
    assert r.status_code == 200 and "13812345678" in r.get_data(as_text=True)
    ev = last(svc, audit.REVEAL)
    assert (ev.actor, ev.unit, ev.detail) == (gw, SEED_GRID, {"resident_id": rid, "field": "phone", "granted": True})
    # a refused reveal is recorded too
    other = login(app, "med1.420602003005")
    other.post(f"/registry/resident/{rid}/reveal", data={"csrf_token": csrf(other), "field": "id_number"})
    ev = last(svc, audit.REVEAL)
    assert ev.actor == staff_id(svc, "med1.420602003005") and ev.detail["granted"] is False


def test_export(app, svc):
    c = login(app, "jiangranran")
    r = c.get(f"/dashboard/{SEED_GRID}/export.xlsx")
    assert r.status_code == 200
    ev = last(svc, audit.EXPORT)
    assert ev.actor == staff_id(svc, "jiangranran")
    assert ev.detail["endpoint"] == "dashboard.export_indicators" and ev.detail["path"].endswith("export.xlsx")
    boss = login(app, "admin")
    assert boss.get("/admin/org/audit?kind=sign_in&format=xlsx").status_code == 200
    ev = last(svc, audit.EXPORT)
    assert ev.actor == staff_id(svc, "admin") and ev.detail["endpoint"] == "admin_org.security_audit"


def test_administrator_actions(app, svc):
    boss = login(app, "admin")
    token = csrf(boss, f"/admin/org/units/{SEED_GRID}")
    r = boss.post(f"/admin/org/units/{SEED_GRID}/staff", data={"csrf_token": token, "name": "新同事",
                  "phone": "13911112222", "role": "grid_worker", "title": "专职网格员"})
    assert r.status_code == 200
    ev = last(svc, audit.ACCOUNT_CREATED)
    assert ev.actor == staff_id(svc, "admin") and ev.unit == SEED_GRID
    assert "13911112222" not in str(ev.detail)


def test_access_denial_by_a_service(app, svc):
    worker = login(app, "jiangranran")
    assert worker.get("/admin/org/").status_code == 403
    page = audit.query(svc, kind=audit.ACCESS_DENIED, person=staff_id(svc, "jiangranran"))
    assert page.total == 1  # recorded once: by the admin service, not again by the web hook


def test_access_denial_anywhere_is_recorded_by_the_web_layer(app, svc):
    worker = login(app, "jiangranran")
    r = worker.get("/admin/versions")  # an administrator's page outside the org admin service
    assert r.status_code == 403, r.status_code
    ev = last(svc, audit.ACCESS_DENIED, person=staff_id(svc, "jiangranran"))
    assert ev.detail["path"] == "/admin/versions" and ev.detail["method"] == "GET"


def test_every_event_joins_the_chain(app, svc):
    login(app, "jiangranran")
    post_login(app.test_client(), "jiangranran", "nope")
    assert audit.verify(svc) is None
