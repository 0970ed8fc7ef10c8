"""/api/v1 over real HTTP against gunicorn (two worker processes), on SQLite and on PostgreSQL:
incremental sync while other threads create cases, scopes, jurisdiction, revocation and the
rate limit, each answered with RFC 9457 problem details."""
from __future__ import annotations

import threading
from datetime import datetime

from engine import clock
from grid.org import api_clients, demo
from tests.api.http_helpers import Server, until

SEED_POINT = {"text": "檀溪路南山家属院", "lat": 32.0213, "lng": 112.1432}  # in the seed grid
PROBLEM = "application/problem+json"


def _client(svc, scopes: list[str], unit: str = demo.CITY_CODE, rate: int = 100_000) -> str:
    return api_clients.create(svc, "http test", scopes, unit, rate_per_minute=rate)[1]


def _report(server: Server, token: str, text: str) -> str:
    r = server.call("POST", "/api/v1/reports", token=token,
                    json_body={"category": "neighbour", "description": text, "location": SEED_POINT})
    assert r.status == 201, (r.status, r.body, server.log()[-3000:])
    assert r.json["grid"] == demo.SEED_GRID
    return r.json["case_no"]


def _assert_problem(r, status: int) -> dict:
    """An RFC 9457 body: type/title/status/detail, as application/problem+json, and no data."""
    assert r.status == status, (r.status, r.body)
    assert r.header("Content-Type").startswith(PROBLEM)
    body = r.json
    assert body["status"] == status and body["type"] == "about:blank" and body["title"] and body["detail"]
    assert not {"items", "case_no", "description", "next_cursor"} & set(body)
    return body


def test_incremental_sync_while_cases_are_created_sees_every_case_once(server, svc):
    writer = _client(svc, ["reports:create"])
    reader = _client(svc, ["cases:read"])
    before = _report(server, writer, "同步开始之前的纠纷")
    since = clock.now()  # the report above committed before its answer: it is older than this
    made: list[str] = []
    errors: list[BaseException] = []
    lock = threading.Lock()

    def write(n: int, who: int) -> None:
        try:
            for i in range(n):
                no = _report(server, writer, f"并发上报的第{who}-{i}件纠纷")
                with lock:
                    made.append(no)
        except BaseException as e:  # noqa: BLE001 - surfaced by the main thread
            errors.append(e)

    threads = [threading.Thread(target=write, args=(10, w)) for w in range(2)]
    for t in threads:
        t.start()
    seen: list[str] = []
    params = {"updated_since": since.isoformat(), "limit": "3"}
    pages = 0

    def sync_page() -> bool:
        """Read one page; True once the writers are done and every case they made was seen."""
        nonlocal pages
        r = server.call("GET", "/api/v1/cases", token=reader, params=params)
        assert r.status == 200, (r.status, r.body)
        body = r.json
        assert len(body["items"]) <= 3 and body["has_more"] == (len(body["items"]) == 3)
        seen.extend(x["case_no"] for x in body["items"])
        params["cursor"] = body["next_cursor"] or params.get("cursor", "")
        pages += 1
        done = not any(t.is_alive() for t in threads)
        return done and not body["items"] and set(made) <= set(seen)

    try:
        until(sync_page, "the reader catches up with the writers", server, seconds=180, pause=0.1)
    finally:
        for t in threads:
            t.join(120)
    assert not errors, errors
    assert len(made) == 20 and pages > 1
    # nothing more arrives later: the held-back window has passed for every case
    for _ in range(3):
        until(lambda: clock.now() > max(_updated(svc, made)) + api_reads_settle(), "the settle window passes")
        r = server.call("GET", "/api/v1/cases", token=reader, params=params)
        assert r.status == 200 and r.json["items"] == []
    assert sorted(seen) == sorted(made), "every case exactly once"
    assert before not in seen, "updated_since leaves the older case out"


def api_reads_settle():
    from grid.cases.api_reads import SETTLE

    return SETTLE


def _updated(svc, case_nos: list[str]) -> list[datetime]:
    from sqlalchemy import select

    from grid.cases.models import DisputeCase

    with svc.db.read() as s:
        return [clock.to_utc(v) for v in s.scalars(select(DisputeCase.updated_at)
                                                   .where(DisputeCase.case_no.in_(case_nos)))]


def test_scopes_jurisdiction_revocation_and_rate_limit(server, svc):
    writer = _client(svc, ["reports:create"])
    reader = _client(svc, ["cases:read"])
    case_no = _report(server, writer, "楼上漏水引发的邻里纠纷")
    listed = until(lambda: (lambda r: r if r.status == 200 and r.json["items"] else None)(
        server.call("GET", "/api/v1/cases", token=reader)), "the case is listed", server)
    assert [x["case_no"] for x in listed.json["items"]] == [case_no]
    assert "description" not in listed.json["items"][0], "no personal data without personal:read"
    etag = listed.header("ETag")
    assert etag and server.call("GET", "/api/v1/cases", token=reader, headers={"If-None-Match": etag}).status == 304

    # a client without the scope: 403, no data
    no_scope = _client(svc, ["indicators:read"])
    for path in ("/api/v1/cases", f"/api/v1/cases/{case_no}", f"/api/v1/cases/{case_no}/records",
                 "/api/v1/events"):
        _assert_problem(server.call("GET", path, token=no_scope), 403)
    _assert_problem(server.call("POST", "/api/v1/reports", token=reader,
                                json_body={"category": "other", "description": "x", "location": SEED_POINT}), 403)

    # a client of another district (樊城区): 403 when it names a unit outside, nothing otherwise
    other = _client(svc, ["cases:read", "indicators:read", "registry:aggregates"], unit="420606000000")
    for path in (f"/api/v1/cases?unit={demo.SEED_COUNTY}", f"/api/v1/units/{demo.SEED_GRID}",
                 f"/api/v1/staff?unit={demo.SEED_VILLAGE}", f"/api/v1/indicators?unit={demo.SEED_COUNTY}",
                 f"/api/v1/registry/aggregates?unit={demo.SEED_VILLAGE}"):
        _assert_problem(server.call("GET", path, token=other), 403)
    r = server.call("GET", "/api/v1/cases", token=other)
    assert r.status == 200 and r.json["items"] == []
    # one case outside the jurisdiction looks like a missing one (its existence is not disclosed)
    _assert_problem(server.call("GET", f"/api/v1/cases/{case_no}", token=other), 404)

    # revoked: 401 on every worker at once
    assert api_clients.revoke(svc, reader.split("_")[1])
    for _ in range(4):
        r = server.call("GET", "/api/v1/cases", token=reader)
        _assert_problem(r, 401)
        assert r.header("WWW-Authenticate").startswith("Bearer")
    _assert_problem(server.call("GET", "/api/v1/cases"), 401)
    _assert_problem(server.call("GET", "/api/v1/cases", token=reader + "x"), 401)

    # rate limited: 3 calls a minute; 7 calls cannot all fall in windows of at most 3
    limited = _client(svc, ["cases:read"], rate=3)
    answers = [server.call("GET", "/api/v1/cases", token=limited) for _ in range(7)]
    codes = [a.status for a in answers]
    assert 429 in codes and set(codes) <= {200, 429}, codes
    assert codes[:3] == [200, 200, 200], "the first calls of a window pass"
    refused = answers[codes.index(429)]
    body = _assert_problem(refused, 429)
    assert body["title"] == "Too Many Requests" and "3" in body["detail"]
    assert 1 <= int(refused.header("Retry-After")) <= 60
