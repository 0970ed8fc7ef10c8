"""The organisation admin pages (web/admin_org.py) through Flask's test client: only
administrators (a denial is audited), add staff, reset, deactivate with handover, the forced
password change, the security audit page with its filters and XLSX export."""
from __future__ import annotations

import io
import re

from grid.org import accounts, audit
from tests.web_helpers import SEED_GRID, csrf, dispatch, login, open_items, report_case, staff_id


def test_only_administrators_and_denials_are_audited(app, svc):
    worker = login(app, "jiangranran")
    assert worker.get("/admin/org/").status_code == 403
    assert audit.query(svc, kind=audit.ACCESS_DENIED, person=staff_id(svc, "jiangranran")).total == 1
    boss = login(app, "admin")
    page = boss.get("/admin/org/?q=" + SEED_GRID[:12]).get_data(as_text=True)
    assert SEED_GRID[:12] in page


def test_add_staff_then_first_sign_in_forces_a_new_password(app, svc):
    boss = login(app, "admin")
    token = csrf(boss, f"/admin/org/units/{SEED_GRID}")
    r = boss.post(f"/admin/org/units/{SEED_GRID}/staff", data={"csrf_token": token, "name": "新同事",
                  "phone": "13911112222", "role": "grid_worker", "title": "专职网格员"})
    assert r.status_code == 200
    otp = re.search(r'class="otp">([^<]+)<', r.get_data(as_text=True)).group(1)
    newbie = login(app, "13911112222", otp)
    r = newbie.get("/")
    assert r.status_code == 302 and r.headers["Location"].endswith("/account/password")
    assert newbie.get("/settings").headers["Location"].endswith("/account/password")
    token = csrf(newbie, "/account/password")
    r = newbie.post("/account/password", data={"csrf_token": token, "current_password": otp,
                                               "new_password": "short", "confirm": "short"})
    assert r.status_code == 422
    r = newbie.post("/account/password", data={"csrf_token": token, "current_password": otp,
                                               "new_password": "Neue-Kollegin-2026", "confirm": "Neue-Kollegin-2026"})
    assert r.status_code == 302
    assert newbie.get("/").status_code == 200


def test_reset_signs_out_and_deactivate_hands_over(app, svc):
    case = report_case(svc)
    dispatch(svc, case.id)
    med1, med2 = (w.user_id for w in open_items(svc, case.id, "mediate"))
    victim = login(app, "med1.420602003005")
    boss = login(app, "admin")
    token = csrf(boss, f"/admin/org/staff/{med1}")
    r = boss.post(f"/admin/org/staff/{med1}/reset-password", data={"csrf_token": token})
    assert r.status_code == 200 and 'class="otp"' in r.get_data(as_text=True)
    assert victim.get("/").status_code == 302  # signed out at once
    assert "/login" in victim.get("/").headers["Location"]
    page = boss.get(f"/admin/org/staff/{med1}").get_data(as_text=True)
    assert "open-tasks" in page and f'value="{med2}"' in page
    r = boss.post(f"/admin/org/staff/{med1}/deactivate", data={"csrf_token": token, "to": med2})
    assert r.status_code == 302
    assert {w.user_id for w in open_items(svc, case.id, "mediate")} == {med2}
    assert accounts.account(svc, med1) is None


def test_security_audit_page_filters_and_exports(app, svc):
    from openpyxl import load_workbook

    login(app, "jiangranran")
    boss = login(app, "admin")
    page = boss.get("/admin/org/audit?person=jiangranran&kind=sign_in").get_data(as_text=True)
    assert page.count('<li class="item">') == 1  # her one sign-in
    r = boss.get("/admin/org/audit?kind=sign_in&format=xlsx")
    assert r.status_code == 200 and r.mimetype.endswith("spreadsheetml.sheet")
    ws = load_workbook(io.BytesIO(r.data)).active
    assert ws.max_row == 1 + audit.query(svc, kind=audit.SIGN_IN).total
