"""Issue 17 acceptance: one route x role x jurisdiction test over every route in app.url_map.

Every endpoint must be classified in ROUTES (a route added without a class fails
`test_every_route_is_classified`). Then, with one world holding a secret case (open mediation, a
photo, a loose upload) and a registry household, resident and flag in 檀溪社区第十五网格:

- outsiders at four levels (another grid's worker in the same community, another community's
  head, another street's dispatcher, the other county's supervisor) request every route with every
  method (GET and POST, CSRF token included) against those objects: routes that name one answer
  403/404, nothing is shown (no case number, name, ID number or phone in any body) and nothing
  changes (case fingerprint, registry snapshot, staff and units);
- the people whose jurisdiction covers each object get each object's pages (200);
- administrators' routes refuse every non-administrator and serve the administrator;
- token-authenticated routes (API, Open311) give a signed-in browser session nothing;
- every write that names a second object is tried with that object outside the actor's
  jurisdiction (move-in by ID number and transfer, a reassignment to an outsider, a batch urge of
  a case outside, an administrator's handover to a person outside) and refused with nothing
  changed, and inside it succeeds.

The older, narrower walks (tests/web/test_authz*.py, tests/security/test_registry_moves.py) stay as
they are; this test is the systematic one."""
from __future__ import annotations

import re
from datetime import date

import pytest
from sqlalchemy import select

from grid.org.models import Staff, StaffRole
from grid.registry.models import Resident
from tests.registry_helpers import FAR_GRID, OTHER_GRID, first_with_role, household, make_id
from tests.security.routes import (
    IDN,
    OUTSIDERS,
    VILLAGE,
    everything,
    requests,
    secret_world,
    text_of,
    variants,
)
from tests.web_helpers import SEED_GRID, csrf, fingerprint, login, open_items, report_case, rule_url, staff_id

# endpoint -> class. public: anyone; own: any signed-in person, no object in the URL (lists
# filter by jurisdiction); case / registry / unit / staff: the URL names such an object; admin:
# administrators only; token: authenticated by an API token, not the browser session; elsewhere:
# objects this world does not hold, covered by the named test.
ROUTES = {
    "healthz": "public", "auth.login": "public", "auth.logout": "own", "api.reference": "public",
    "api.openapi": "public", "open311.discovery": "public", "open311.services_list": "public",
    "open311.service_definition": "public", "open311.token": "token", "open311.requests_list": "token",
    "open311.request_one": "token", "open311.request_create": "token",
    "inbox.index": "own", "inbox.late": "own", "inbox.late_urge": "own", "account.password": "own",
    "account.password_save": "own", "archive.index": "own", "report.new": "own", "report.create": "own",
    "intake.new": "own", "intake.create": "own", "settings.index": "own", "settings.save": "own",
    "settings.password": "own", "settings.end_session": "own", "settings.end_others": "own",
    "notifications.index": "own", "notifications.read": "own", "notifications.unread_count": "own",
    "dashboard.home": "own", "dashboard.wall": "own", "dashboard.handled": "own", "dashboard.my_reports": "own",
    "dashboard.open_cases": "own", "dashboard.export_list": "own", "maps.open_cases": "own",
    "maps.cases_json": "own", "maps.mine_json": "own", "maps.units_json": "own",
    "accountability.index": "own", "accountability.supervision": "own", "accountability.export": "own",
    "accountability.supervision_export": "own",
    "accountability.show": "elsewhere", "accountability.submit": "elsewhere",
    "cases.show": "case", "cases.urge": "case", "diagram.show": "case", "case_actions.reassign_form": "case",
    "case_actions.reassign": "case", "case_actions.departments_form": "case", "case_actions.departments": "case", "maps.case_page": "case", "maps.case_json": "case", "tasks.show": "case",
    "tasks.submit": "case", "tasks.duplicate_preview": "case", "attachments.show": "case",
    "attachments.original": "case", "attachments.thumb": "case",
    "dashboard.show": "unit", "dashboard.export_indicators": "unit", "dashboard.monthly_report": "unit",
    "maps.choropleth_json": "unit",
    "registry.index": "own", "registry.api_residents": "own", "registry.export": "own",
    "registry.import_page": "own", "registry.import_upload": "own", "registry.import_status": "own",
    "registry.grid": "registry", "registry.add_building": "registry", "registry.add_household": "registry",
    "registry.household": "registry", "registry.birth": "registry", "registry.move_in": "registry",
    "registry.resident": "registry", "registry.death": "registry", "registry.flag": "registry",
    "registry.move_out": "registry", "registry.reveal": "registry", "registry.update": "registry",
    "registry.risk": "registry", "registry.unflag": "registry",
}
ELSEWHERE = {"accountability.show": "tests/cases/test_accountability.py::test_entry_pages_review_explain_decide_and_export",
             "accountability.submit": "tests/cases/test_accountability.py::test_entry_pages_review_explain_decide_and_export"}
OBJECT_CLASSES = {"case", "registry", "unit"}
POST = {"comment": "越权催办", "lock_version": "0", "outcome": "resolved", "notes": "越权办理", "action": "dispatch",
        "satisfied": "true", "signature": "某某", "locale": "en", "category": "municipal",
        "description": "越权上报测试描述", "location.text": "某地", "name": "越权", "reason": "越权操作的理由",
        "risk_level": "high", "door_no": "9-9", "address": "越权路1号", "relation": "other",
        "birth_date": "2026-01-01", "sex": "M", "field": "id_number", "phone": "13900000000",
        "id_number": make_id("420602", date(1990, 1, 1), 77), "title": "越权", "role": "grid_worker",
        "unit": FAR_GRID, "level": "grid", "code": FAR_GRID + "9"}


QUERY = {"q": "雨污分流", "grid": SEED_GRID, "from": "2026-01-01", "to": "2026-12-31"}


def classify(endpoint: str) -> str | None:
    if endpoint == "static":
        return "public"
    bp = endpoint.split(".")[0]
    if bp in ("admin", "admin_org"):
        return "admin"
    if bp == "api" and endpoint not in ROUTES:
        return "token"
    return ROUTES.get(endpoint)


@pytest.fixture
def world(reg):
    w = secret_world(reg)
    outsider = first_with_role(reg, FAR_GRID, "grid_worker")
    far_household = household(reg, outsider, FAR_GRID, "樊城路1号", "1")
    return {**w, "job_id": "x", "far_household": far_household, "far_worker": outsider,
            "markers": [w["case"].case_no, "南山家属院雨污分流", "雨污分流改造施工方", "13800000001", "138****0001",
                        "张建国", IDN, "13812341234", "138****1234", "檀溪路1号1栋"]}


def _walk(app, client, w, check):
    for rule, method, url in requests(app, w):
        if method == "GET":
            r = client.get(url, query_string=QUERY)
        elif method == "POST":
            data = {**POST, "csrf_token": csrf(client), "case_id": str(w["case_id"]), "to": w["far_worker"],
                    "task": w["tasks"][0], "duplicate_of": w["case"].case_no}
            if rule.endpoint.startswith("registry."):  # valid values: the refusal, not the validation, answers
                data["category"] = "released"
            r = client.post(url, data=data)
        else:
            r = client.open(url, method=method)
        check(rule, method, url, r)


def test_every_route_is_classified(app):
    missing = sorted(r.endpoint for r in app.url_map.iter_rules() if classify(r.endpoint) is None)
    assert missing == [], f"classify these routes in ROUTES (and cover them): {missing}"
    stale = sorted(set(ROUTES) - {r.endpoint for r in app.url_map.iter_rules()})
    assert stale == [], f"routes gone from the app: {stale}"
    for endpoint in (e for e, k in ROUTES.items() if k == "elsewhere"):
        assert endpoint in ELSEWHERE


@pytest.mark.parametrize("username", OUTSIDERS)
def test_outsiders_see_and_change_nothing_on_any_route(app, svc, world, username):
    before = everything(svc, world["case_id"])
    client = login(app, username)
    walked = set()

    def check(rule, method, url, r):
        where = f"{username} {method} {url} ({rule.endpoint})"
        kind = classify(rule.endpoint)
        walked.add(rule.endpoint)
        assert r.status_code < 500, where
        if kind in OBJECT_CLASSES or kind == "admin":
            assert r.status_code in (403, 404), f"{where}: {r.status_code}"
        if kind == "token":
            assert r.status_code in (400, 401, 403, 404, 405), f"{where}: {r.status_code}"
        body = text_of(r)
        for m in world["markers"]:
            assert m not in body, f"{where}: shows {m!r}"

    _walk(app, client, world, check)
    assert everything(svc, world["case_id"]) == before
    assert walked >= {r.endpoint for r in app.url_map.iter_rules()} - {"static", "auth.login", "auth.logout"}


INSIDE_GETS = {  # endpoint -> who sees the world's object there
    "cases.show": ["qiuyun", "sup.420602003000", "med1.420602003005", "jiangranran"],
    "diagram.show": ["qiuyun", "med1.420602003005"], "maps.case_page": ["qiuyun", "jiangranran"],
    "maps.case_json": ["qiuyun"], "tasks.show": ["qiuyun", "med1.420602003005", "jiangranran"],
    "attachments.show": ["qiuyun", "jiangranran"], "attachments.thumb": ["qiuyun"],
    "registry.grid": ["jiangranran", "qiuyun"], "registry.household": ["jiangranran", "qiuyun"],
    "registry.resident": ["jiangranran", "qiuyun"],
    "dashboard.show": ["qiuyun", "sup.420602003000"], "dashboard.export_indicators": ["qiuyun"],
    "dashboard.monthly_report": ["qiuyun"], "maps.choropleth_json": ["qiuyun"],
}


def test_insiders_get_every_object_page(app, svc, world):
    by_endpoint = {r.endpoint: r for r in app.url_map.iter_rules()}
    for endpoint, people in INSIDE_GETS.items():
        rule = by_endpoint[endpoint]
        values = {**variants(rule, world)[0], "task_guid": world["tasks"][0], "attachment_id": world["photo"]}
        url = rule_url(rule, values)
        for username in people:
            r = login(app, username).get(url, query_string=QUERY)
            assert r.status_code == 200, f"{username} GET {url} ({endpoint}): {r.status_code}"
    # every object GET route in the app has its insiders listed
    object_gets = {r.endpoint for r in app.url_map.iter_rules() if classify(r.endpoint) in OBJECT_CLASSES
                   and "GET" in r.methods}
    unlisted = object_gets - set(INSIDE_GETS) - {"case_actions.reassign_form", "case_actions.departments_form",
                                                 "tasks.duplicate_preview",
                                                 "attachments.original"}
    assert unlisted == set(), unlisted
    gw = login(app, "jiangranran")
    assert gw.get(f"/attachments/{world['loose']}").status_code == 200  # her own upload, before linking


@pytest.mark.parametrize("username", OUTSIDERS + ["jiangranran", "qiuyun", "disp1.420600000000"])
def test_administrators_routes_refuse_everyone_else(app, svc, world, username):
    client = login(app, username)
    before = everything(svc, world["case_id"])
    sid = staff_id(svc, "med1.420602003005")
    for rule in app.url_map.iter_rules():
        if classify(rule.endpoint) != "admin":
            continue
        url = rule_url(rule, {"process_id": "dispute_case", "number": 1, "run_id": 1, "instance_id": 1,
                              "staff_id": sid, "code": SEED_GRID, "role_id": 1})
        for method in sorted(rule.methods - {"HEAD", "OPTIONS"}):
            r = client.get(url) if method == "GET" else client.post(url, data={**POST, "csrf_token": csrf(client)})
            assert r.status_code in (403, 404), f"{username} {method} {url}: {r.status_code}"
    assert everything(svc, world["case_id"]) == before
    boss = login(app, "admin")
    for url in ("/admin/versions", "/admin/org/", f"/admin/org/staff/{sid}", f"/admin/org/units/{SEED_GRID}",
                "/admin/org/audit"):
        assert boss.get(url).status_code == 200, url


# ---- writes that name a second object: both ends ---------------------------------------------------------
def _post(client, url: str, data: dict, page: str | None = None):
    return client.post(url, data={**data, "csrf_token": csrf(client, page or "/settings")})


def test_move_in_is_checked_at_both_ends(app, svc, world):
    before = everything(svc, world["case_id"])
    far = login(app, "sup.420606000000")
    # destination inside the secret grid, named by an outsider: refused
    r = _post(far, f"/registry/household/{world['household_id']}/move-in",
              {"name": "某人", "id_number": make_id("420606", date(1991, 1, 1), 12), "relation": "other"})
    assert r.status_code in (403, 404)
    # source (the resident, by ID number) inside the secret grid, destination the outsider's own: refused
    with svc.db.read() as s:
        far_worker = s.get(Staff, world["far_worker"]).username
    worker = login(app, far_worker)
    r = _post(worker, f"/registry/household/{world['far_household']}/move-in",
              {"name": "冒名", "id_number": IDN, "relation": "other", "phone": "13700000000"},
              f"/registry/household/{world['far_household']}")
    assert r.status_code in (302, 303, 403, 404, 409, 422)
    assert everything(svc, world["case_id"]) == before
    # inside at both ends (the village's grid head may change both grids): the transfer happens
    head = login(app, "qiuyun")
    target = household(svc, staff_id(svc, "qiuyun"), OTHER_GRID, "檀溪路9号", "1")
    r = _post(head, f"/registry/household/{target}/move-in", {"name": "张建国", "id_number": IDN, "relation": "head"},
              f"/registry/household/{target}")
    assert r.status_code in (302, 303)
    with svc.db.read() as s:
        moved = s.get(Resident, world["resident_id"])
        assert (moved.household_id, moved.grid_code) == (target, OTHER_GRID)


def test_reassignment_to_a_person_outside_is_refused(app, svc, world):
    before = fingerprint(svc, world["case_id"])
    head = login(app, "qiuyun")
    page = f"/cases/{world['case_id']}/reassign"
    r = _post(head, page, {"task": world["tasks"][0], "to": world["far_worker"], "reason": "换人办理这项任务"}, page)
    assert r.status_code in (400, 403, 404)
    assert fingerprint(svc, world["case_id"]) == before
    # the control: to a mediator of the task's own unit it works
    holder = {w.task_guid: w.user_id for w in open_items(svc, world["case_id"], "mediate")}[world["tasks"][0]]
    other = next(s for s in (staff_id(svc, "med1.420602003005"), staff_id(svc, "med2.420602003005")) if s != holder)
    mediators = {w.user_id for w in open_items(svc, world["case_id"], "mediate")}
    if other in mediators:  # both already hold a copy: pick another mediator of the village
        with svc.db.read() as s:
            other = s.scalar(select(StaffRole.staff_id).where(StaffRole.unit_code == VILLAGE,
                                                              StaffRole.role == "mediator",
                                                              StaffRole.staff_id.not_in(mediators)))
    if other is not None:
        r = _post(head, page, {"task": world["tasks"][0], "to": other, "reason": "换人办理这项任务"}, page)
        assert r.status_code in (302, 303), r.status_code


def test_a_batch_urge_skips_cases_outside(app, svc, world):
    before = fingerprint(svc, world["case_id"])
    far = login(app, "sup.420606000000")
    r = _post(far, "/late/urge", {"case_id": str(world["case_id"]), "comment": "越权催办"}, "/late")
    assert r.status_code in (302, 303, 403)
    assert fingerprint(svc, world["case_id"]) == before
    inside = login(app, "sup.420602003000")
    _post(inside, "/late/urge", {"case_id": str(world["case_id"]), "comment": "请尽快办理"}, "/late")
    assert fingerprint(svc, world["case_id"])["events"] == before["events"] + 1


def test_a_duplicate_reference_outside_the_jurisdiction_closes_nothing(app, svc, world):
    """重复件: the case number named (the second object) must exist inside the person's jurisdiction."""
    far_case = report_case(svc, {"description": "樊城区的另一件纠纷，作为越权引用的目标"},
                           username=_username(svc, world["far_worker"]))
    fresh = report_case(svc, {"description": "檀溪社区又一件同样的雨污分流纠纷"})
    before = fingerprint(svc, fresh.id)
    head = login(app, "qiuyun")
    task = open_items(svc, fresh.id, "dispatch")[0].task_guid
    html = head.get(f"/tasks/{task}").get_data(as_text=True)
    lock = re.search(r'name="lock_version" value="(\d+)"', html).group(1)
    for target in (far_case.case_no, "MD00000000000000"):  # confirmed, as the second round trip would be
        r = _post(head, f"/tasks/{task}", {"action": "duplicate", "duplicate_of": target, "lock_version": lock,
                                           "duplicate_confirm": target}, f"/tasks/{task}")
        assert r.status_code in (400, 403, 404, 409, 422), (target, r.status_code)
        assert fingerprint(svc, fresh.id) == before
    # the control: naming the open case of the same community works
    r = _post(head, f"/tasks/{task}", {"action": "duplicate", "duplicate_of": world["case"].case_no,
                                       "duplicate_confirm": world["case"].case_no, "lock_version": lock},
              f"/tasks/{task}")
    assert r.status_code in (302, 303), r.status_code
    assert fingerprint(svc, fresh.id) != before


def _username(svc, sid: str) -> str:
    with svc.db.read() as s:
        return s.get(Staff, sid).username


def test_the_admin_pages_name_only_people_and_units_that_exist(app, svc, world):
    before = everything(svc, world["case_id"])
    boss = login(app, "admin")
    med1 = staff_id(svc, "med1.420602003005")
    page = f"/admin/org/staff/{med1}"
    for url, data in ((f"/admin/org/staff/{med1}/handover", {"to": "nobody-such"}),
                      (f"/admin/org/staff/{med1}/move", {"unit": "999999999999999"}),
                      (f"/admin/org/staff/{med1}/roles", {"unit": "999999999999", "role": "mediator"})):
        r = _post(boss, url, data, page)
        assert r.status_code in (302, 303, 400, 404, 409, 422), (url, r.status_code)
        if r.status_code in (302, 303):
            follow = boss.get(r.headers["Location"]).get_data(as_text=True)
            assert re.search(r'class="flash[^"]*error', follow) or "error" in follow, url
    assert everything(svc, world["case_id"]) == before
