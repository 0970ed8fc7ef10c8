"""API, Open311 and event feed over the app (Flask client) on both databases; a real HTTP receiver."""
from __future__ import annotations

import hashlib
import hmac
import json
import threading
from datetime import timedelta
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path

import pytest
import yaml
from lxml import etree

from engine import clock, outbox
from grid.cases.scenario import Runner
from grid.org import api_clients, demo
from tests.api.helpers import ROOT


def _token(svc, scopes, unit=demo.CITY_CODE):
    return api_clients.create(svc, "t", scopes, unit)[1]


_SHIFT = [timedelta(0)]


@pytest.fixture(autouse=True)
def _real_clock_after():
    yield
    clock.set_source(None)
    _SHIFT[0] = timedelta(0)


def _settled(by: timedelta = timedelta(seconds=5)):
    """Let the clock move past the API's settle window (changes younger than 2 s are held back)."""
    _SHIFT[0] += by
    clock.install_shift(_SHIFT[0])


def test_scopes_jurisdiction_and_revocation(app, svc):
    c = app.test_client()
    full = _token(svc, ["cases:read", "reports:create"])
    r = c.post("/api/v1/reports", json={"category": "neighbour", "description": "楼上漏水纠纷",
                                        "location": {"text": "南山家属院", "lat": 32.0213, "lng": 112.1432}},
               headers={"Authorization": f"Bearer {full}"})
    assert r.status_code == 201 and r.json["grid"] == demo.SEED_GRID
    _settled()
    no_scope = _token(svc, ["indicators:read"])
    r = c.get("/api/v1/cases", headers={"Authorization": f"Bearer {no_scope}"})
    assert r.status_code == 403 and r.content_type == "application/problem+json" and "items" not in r.json
    other = _token(svc, ["cases:read"], unit="420606000000")  # 樊城区
    r = c.get("/api/v1/cases", headers={"Authorization": f"Bearer {other}"})
    assert r.status_code == 200 and r.json["items"] == []
    r = c.get(f"/api/v1/cases?unit={demo.SEED_COUNTY}", headers={"Authorization": f"Bearer {other}"})
    assert r.status_code == 403 and "items" not in r.json
    r = c.get("/api/v1/cases", headers={"Authorization": f"Bearer {full}"})
    assert r.status_code == 200 and len(r.json["items"]) == 1 and "description" not in r.json["items"][0]
    r2 = c.get("/api/v1/cases", headers={"Authorization": f"Bearer {full}", "If-None-Match": r.headers["ETag"]})
    assert r2.status_code == 304
    api_clients.revoke(svc, full.split("_")[1])
    assert c.get("/api/v1/cases", headers={"Authorization": f"Bearer {full}"}).status_code == 401


def test_incremental_sync_sees_each_case_once(app, svc):
    c = app.test_client()
    tok = _token(svc, ["cases:read", "reports:create"])
    h = {"Authorization": f"Bearer {tok}"}
    seen: list[str] = []
    cursor = None
    for i in range(7):
        r = c.post("/api/v1/reports", json={"category": "other", "description": f"第{i}件测试纠纷",
                                            "location": {"text": "x", "lat": 32.0213, "lng": 112.1432}}, headers=h)
        assert r.status_code == 201
        _settled()
        q = "/api/v1/cases?limit=2" + (f"&cursor={cursor}" if cursor else "")
        r = c.get(q, headers=h)
        seen += [x["case_no"] for x in r.json["items"]]
        cursor = r.json["next_cursor"]
    while True:
        r = c.get(f"/api/v1/cases?limit=2&cursor={cursor}", headers=h)
        if not r.json["items"]:
            break
        seen += [x["case_no"] for x in r.json["items"]]
        cursor = r.json["next_cursor"]
    assert len(seen) == 7 and len(set(seen)) == 7


@pytest.mark.parametrize("fmt", ["json", "xml"])
def test_open311_endpoints(app, svc, fmt):
    c = app.test_client()
    key = _token(svc, ["reports:create"])
    for path in ("discovery", "services", "services/municipal", "requests"):
        r = c.get(f"/open311/v2/{path}.{fmt}")
        assert r.status_code == 200, (path, r.data)
        if fmt == "xml":
            root = etree.fromstring(r.data)
            assert root.tag == {"discovery": "discovery", "services": "services",
                                "services/municipal": "service_definition", "requests": "service_requests"}[path]
    r = c.post(f"/open311/v2/requests.{fmt}", data={"api_key": key, "service_code": "municipal", "lat": "32.0213",
                                                    "long": "112.1432", "description": "路面刷黑引发纠纷"})
    assert r.status_code == 200, r.data
    rid = (json.loads(r.data)[0]["service_request_id"] if fmt == "json"
           else etree.fromstring(r.data).findtext("request/service_request_id"))
    _settled()
    r = c.get(f"/open311/v2/requests/{rid}.{fmt}")
    assert r.status_code == 200
    if fmt == "xml":
        req = etree.fromstring(r.data).find("request")
        assert req.findtext("status") == "open" and req.findtext("agency_responsible") == "檀溪社区"
        assert req.findtext("expected_datetime")
    else:
        assert json.loads(r.data)[0]["status"] == "open"
    assert c.post(f"/open311/v2/requests.{fmt}", data={"service_code": "municipal"}).status_code == 401
    r = c.get(f"/open311/v2/requests.{fmt}?start_date=2020-01-01T00:00:00Z&end_date=2020-06-01T00:00:00Z")
    assert r.status_code == 400


class _Receiver(BaseHTTPRequestHandler):
    got: list[dict] = []
    secret = ""

    def do_POST(self):  # noqa: N802
        body = self.rfile.read(int(self.headers["Content-Length"]))
        ok = hmac.compare_digest(self.headers["X-Gridflow-Signature"], outbox.sign(self.secret, body))
        if ok:
            self.got.append(json.loads(body))
        self.send_response(204 if ok else 401)
        self.end_headers()

    def log_message(self, *a):
        pass


def test_seed_story_feed_push_and_pull_agree_after_receiver_downtime(svc):
    srv = HTTPServer(("127.0.0.1", 0), _Receiver)
    port = srv.server_address[1]
    srv.server_close()  # down at first: nothing listens on the port
    with svc.db.write() as s:
        hook = outbox.add_webhook(s, "dc", f"http://127.0.0.1:{port}/hook")
        _Receiver.secret = hook.secret
    _Receiver.got = []
    path = ROOT / "workflows" / "scenarios" / "03_seed_story.yaml"
    result = Runner(svc, yaml.safe_load(Path(path).read_text(encoding="utf-8")), str(path)).run()
    assert result.passed, str(result)
    d = outbox.deliver_due(svc.db)
    assert d.sent == 0 and d.failed >= 1
    srv = HTTPServer(("127.0.0.1", port), _Receiver)
    t = threading.Thread(target=srv.serve_forever, daemon=True)
    t.start()
    try:
        for _ in range(50):
            _settled(timedelta(hours=2))  # past any back-off
            outbox.deliver_due(svc.db)
            with svc.db.read() as s:
                pending = [r for r in outbox.dead_letters(s)]
            with svc.db.read() as s:
                feed = outbox.feed(s, 0, 1000)
            if len(_Receiver.got) >= len(feed):
                break
    finally:
        srv.shutdown()
        srv.server_close()
    pulled = [r.payload["id"] for r in feed]
    pushed = [e["id"] for e in _Receiver.got]
    assert not pending
    assert pushed == pulled and len(set(pushed)) == len(pushed)
    kinds = [r.payload["type"].rsplit(".", 1)[1] for r in feed]
    assert kinds[0] == "reported" and "escalated" in kinds and kinds[-1] == "archived"
    assert all("description" not in e["data"] and "parties" not in e["data"] for e in _Receiver.got)
    assert hashlib  # signatures were checked by the receiver
