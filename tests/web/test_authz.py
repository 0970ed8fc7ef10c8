"""Authorization: walk every route of the app (app.url_map) as people of different roles and places,
and check that nothing outside their jurisdiction is shown or changed.

The secret case lies in 檀溪社区第十五网格 (襄城区 / 真武山街道). It has an open mediation at the
community, a completed dispatch, a linked photo, and its reporter has a photo not yet linked to
any case. Outsiders: another grid's worker in the same community, another community's head,
another street's dispatcher, the other county's supervisor. The city dispatcher may see the case
(it is in the city) but may change nothing. Anonymous visitors are sent to sign in.
"""
from __future__ import annotations

import re

import pytest

from tests.security.routes import OUTSIDERS, READ_ONLY, requests, secret_case
from tests.web_helpers import csrf, fingerprint, login, report_case

OBJECT_ARGS = {"case_id", "task_guid", "attachment_id"}
MY_BLUEPRINTS = {"auth", "inbox", "tasks", "report", "cases", "archive", "attachments", "settings", "diagram"}
POST_DATA = {"comment": "越权催办", "lock_version": "0", "outcome": "resolved", "notes": "越权办理",
             "action": "dispatch", "satisfied": "true", "signature": "某某", "locale": "en", "category": "municipal",
             "description": "越权上报测试描述", "location.text": "某地", "settled_on_spot": "on"}

@pytest.fixture
def world(svc):
    w = secret_case(svc)
    closed = report_case(svc, {"settled_on_spot": True, "spot_result": "当场调解成功",
                               "description": "雨污分流现场化解的纠纷案例"})
    assert closed.status == "archived" or fingerprint(svc, closed.id)["status"][1] == "archived"
    w["markers"] = [w["case"].case_no, closed.case_no, "南山家属院雨污分流", "现场化解的纠纷案例", "雨污分流改造施工方",
                    "13800000001", "138****0001"]
    return w


def _walk(app, client, w, check):
    """Request every rule with every method, as `client`; `check(rule, method, url, response)`.
    Signing out/in again is not an access to anything."""
    query = "雨污分流"  # finds both secret cases; its echo in a search box is not a marker
    for rule, method, url in requests(app, w, skip=()):
        if method == "GET":
            r = client.get(url, query_string={"q": query})
        elif rule.endpoint in ("auth.logout", "auth.login"):
            continue
        else:
            r = client.post(url, data={**POST_DATA, "csrf_token": csrf(client)})
        check(rule, method, url, r)


def _no_secrets(w, r, where, ids: bool = True):
    body = r.get_data(as_text=True) if r.mimetype and (r.mimetype.startswith("text") or "json" in r.mimetype) \
        else r.get_data().decode("latin-1")
    for m in w["markers"]:
        assert m not in body, f"{where}: shows {m!r}"
    if ids:
        assert w["photo"] not in body and w["loose"] not in body, f"{where}: shows an attachment id"


@pytest.mark.parametrize("username", OUTSIDERS)
def test_outsiders_see_and_change_nothing(app, svc, world, username):
    before = fingerprint(svc, world["case"].id)
    client = login(app, username)
    seen = []

    def check(rule, method, url, r):
        where = f"{username} {method} {url} ({rule.endpoint})"
        seen.append(rule.endpoint)
        assert r.status_code < 500, where
        if OBJECT_ARGS & set(rule.arguments):
            assert r.status_code in (403, 404), f"{where}: {r.status_code}"
        _no_secrets(world, r, where)

    _walk(app, client, world, check)
    assert fingerprint(svc, world["case"].id) == before
    mine = {e.split(".")[0] for e in seen}
    assert MY_BLUEPRINTS <= mine, MY_BLUEPRINTS - mine
    for rule in app.url_map.iter_rules():  # my routes only take arguments the walk fills with real objects
        if rule.endpoint.split(".")[0] in MY_BLUEPRINTS:
            assert set(rule.arguments) <= OBJECT_ARGS, rule


@pytest.mark.parametrize("username", READ_ONLY)
def test_the_city_may_look_but_not_act(app, svc, world, username):
    before = fingerprint(svc, world["case"].id)
    client = login(app, username)

    def check(rule, method, url, r):
        where = f"{username} {method} {url} ({rule.endpoint})"
        assert r.status_code < 500, where
        if method == "POST" and OBJECT_ARGS & set(rule.arguments):
            assert r.status_code in (403, 404, 409), f"{where}: {r.status_code}"  # 409: a task already done
        if world["loose"] in url:
            assert r.status_code == 404, where  # someone else's upload, not yet on any case

    _walk(app, client, world, check)
    assert fingerprint(svc, world["case"].id) == before
    page = client.get(f"/cases/{world['case'].id}").get_data(as_text=True)
    assert world["case"].case_no in page and "138****0001" in page and "13800000001" not in page


def test_anonymous_is_sent_to_sign_in(app, svc, world):
    before = fingerprint(svc, world["case"].id)
    client = app.test_client()

    def check(rule, method, url, r):
        where = f"anonymous {method} {url} ({rule.endpoint})"
        if rule.endpoint in ("auth.login", "healthz", "api.openapi", "api.reference"):  # public: the API's own documentation
            return
        assert r.status_code in (302, 401, 403, 404), where
        if r.status_code == 302:
            assert re.match(r"^/login", r.headers["Location"]), where
        _no_secrets(world, r, where, ids=r.status_code != 302)  # a redirect to sign in repeats the URL asked for

    _walk(app, client, world, check)
    assert fingerprint(svc, world["case"].id) == before


def test_insiders_do_see_it(app, world):
    """The controls: the same pages do show the case to people whose jurisdiction covers it."""
    c = world["case"]
    for username in ("qiuyun", "sup.420602003000", "med1.420602003005", "jiangranran"):
        client = login(app, username)
        assert c.case_no in client.get(f"/cases/{c.id}").get_data(as_text=True), username
        assert client.get(f"/tasks/{world['tasks'][0]}").status_code == 200, username
        assert client.get(f"/attachments/{world['photo']}").status_code == 200, username
        assert client.get(f"/cases/{c.id}/diagram.json").status_code == 200, username
    gw = login(app, "jiangranran")
    assert gw.get(f"/attachments/{world['loose']}").status_code == 200  # her own upload, before linking


def test_a_grid_worker_cannot_act_on_a_task_she_may_see(app, svc, world):
    """The reporter sees the mediation task of her case but may not complete it."""
    before = fingerprint(svc, world["case"].id)
    client = login(app, "jiangranran")
    html = client.get(f"/tasks/{world['tasks'][0]}").get_data(as_text=True)
    assert 'name="lock_version"' not in html
    r = client.post(f"/tasks/{world['tasks'][0]}", data={**POST_DATA, "csrf_token": csrf(client)})
    assert r.status_code == 403
    assert fingerprint(svc, world["case"].id) == before
