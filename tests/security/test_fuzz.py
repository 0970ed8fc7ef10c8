"""Issue 17 acceptance: a fuzz test. A bounded, seeded random generator sends at least 2,000
malformed bodies per database across every POST route of the app (found in app.url_map, so a new
route is fuzzed too), signed in with a role that may use the route (or with an API token for the
API and Open311): wrong types, huge and NaN numbers, control characters, odd unicode, invalid
UTF-8, deep JSON, wrong multipart (parts without names, files where text belongs, hostile file
names), a missing or wrong CSRF token, oversize bodies. Not one response may be >= 500.

The seed is fixed (GRIDFLOW_FUZZ_SEED overrides it, GRIDFLOW_FUZZ_BODIES the count) so a failure
names a reproducible request."""
from __future__ import annotations

import io
import json
import os
import random
from datetime import date

import pytest

from grid.cases import attachments
from grid.org import api_clients, demo
from grid.registry import visits
from tests.registry_helpers import household, person
from tests.web_helpers import (
    SEED_GRID,
    csrf,
    dispatch,
    login,
    make_app,
    open_items,
    png,
    report_case,
    rule_url,
    staff_id,
)

BODIES = int(os.environ.get("GRIDFLOW_FUZZ_BODIES", "2000"))
SEED = int(os.environ.get("GRIDFLOW_FUZZ_SEED", "17"))

FIELDS = ["comment", "lock_version", "outcome", "notes", "action", "satisfied", "signature", "locale", "category",
          "description", "location.text", "location.lat", "location.lng", "lat", "lng", "long", "name", "reason",
          "risk_level", "door_no", "address", "relation", "birth_date", "sex", "field", "phone", "id_number", "title",
          "role", "unit", "level", "code", "to", "task", "case_id", "duplicate_of", "duplicate_confirm", "next",
          "current_password", "new_password", "confirm", "username", "password", "parties", "parties.0.name",
          "parties.0.phone", "parties.0.resident_id", "settled_on_spot", "spot_result", "assignees", "departments",
          "report_token", "service_code", "api_key", "media_url", "email", "first_name", "last_name", "note",
          "session_id", "kind", "date", "from", "to_version", "tag", "scope", "version_id", "ids", "grid",
          "destination", "household_id", "resident_id", "attachments", "photos", "deadline", "extension_days"]
WEIRD = ["", " ", "\x00", "a\x00b", "\x01\x02\x1f", "\x7f", "\u202e\u202d", "\ufeff", "\u0000" * 3, "💥" * 50,
         "𠜎𠜱", "\r\n\r\n", "\t", "NaN", "nan", "Infinity", "-Infinity", "1e309", "-1e309", "1e-400", "-0", "0x10",
         "9" * 400, "-" + "9" * 60, "3.4028236e38", "1.7976931348623157e309", "[]", "{}", "[[[[", '{"a":',
         "null", "true", "false", "undefined", "%00", "%", "_", "\\", "'", '"', "<script>alert(1)</script>",
         "../../etc/passwd", "．．／．．／", "=HYPERLINK(\"http://x\")", "@SUM(1)", "+1", "a" * 5000,
         "2026-02-30", "2026-13-01", "9999-12-31T23:59:59Z", "0000-00-00", "T", "1 OR 1=1", "' OR '1'='1",
         "00000000-0000-0000-0000-000000000000", "-1", "0", "2147483648", "18446744073709551616", "MD" + "9" * 48,
         "1" * 18, "42060219700501001X", "13800000001", "☃", "ǅ", "ﬃ", "\udcff"]


def _value(rng: random.Random):
    pick = rng.random()
    if pick < 0.6:
        v = rng.choice(WEIRD)
    elif pick < 0.75:
        v = "".join(chr(rng.randrange(0, 0x3000)) for _ in range(rng.randrange(1, 40)))
    elif pick < 0.85:
        v = str(rng.choice([rng.randrange(-10**6, 10**6), rng.random() * 10.0**rng.randrange(0, 308), 2**rng.randrange(1, 200)]))
    else:
        v = "[" * rng.randrange(50, 3000) + "]" * rng.randrange(0, 50)
    return v.encode("utf-8", "surrogatepass").decode("utf-8", "replace") if "\udcff" in v else v


def _deep(n: int) -> bytes:
    return b'{"a":[' * n + b"1" + b"]}" * n


def _json_body(rng: random.Random) -> bytes:
    pick = rng.random()
    if pick < 0.25:
        return ("[" * rng.randrange(100, 20000)).encode()
    if pick < 0.4:
        return b'{"description": NaN, "location": {"lat": Infinity, "lng": -Infinity}}'
    if pick < 0.55:
        return _deep(rng.randrange(50, 5000))
    if pick < 0.65:
        return b"\xff\xfe\x00garbage\x80"
    obj = {rng.choice(FIELDS): rng.choice([_value(rng), [_value(rng)], {"x": _value(rng)}, 10**rng.randrange(1, 400),
                                           None, True, -1.5e308]) for _ in range(rng.randrange(1, 8))}
    return json.dumps(obj, ensure_ascii=rng.random() < 0.5).encode("utf-8", "surrogatepass")


def _multipart(rng: random.Random, token: str | None) -> tuple[bytes, str]:
    boundary = "----gridflowfuzz" + str(rng.randrange(10**6))
    parts = []
    if token:
        parts.append(f'Content-Disposition: form-data; name="csrf_token"\r\n\r\n{token}'.encode())
    for _ in range(rng.randrange(0, 6)):
        kind = rng.random()
        name = rng.choice(FIELDS + ["photos", "files", "file", "voice"])
        if kind < 0.2:
            parts.append(b"Content-Disposition: form-data\r\n\r\nno name at all")
        elif kind < 0.4:
            fname = rng.choice(["../../x.png", "．．／a.png", "a\x00.png", "💥.heic", "a" * 300 + ".png", "", "x.exe"])
            data = rng.choice([png(), b"GIF89a" + b"\x00" * 20, b"", os.urandom(rng.randrange(1, 2000))])
            parts.append(f'Content-Disposition: form-data; name="{name}"; filename="{fname}"\r\n'
                         f'Content-Type: {rng.choice(["image/png", "image/heic", "text/plain", "../x"])}\r\n\r\n'
                         .encode("utf-8", "replace") + data)
        elif kind < 0.5:
            parts.append(f'Content-Disposition: form-data; name="{name}"; filename*=UTF-8\'\'%FF%FE\r\n\r\nx'.encode())
        else:
            parts.append(f'Content-Disposition: form-data; name="{name}"\r\n\r\n'.encode()
                         + _value(rng).encode("utf-8", "replace"))
    body = b"".join(b"--" + boundary.encode() + b"\r\n" + p + b"\r\n" for p in parts)
    if rng.random() < 0.8:
        body += b"--" + boundary.encode() + b"--\r\n"  # else: a truncated body
    ctype = f"multipart/form-data; boundary={boundary}" if rng.random() < 0.9 else "multipart/form-data"
    return body, ctype


@pytest.fixture
def app(svc, tmp_path):
    visits.install(svc)
    return make_app(svc, tmp_path)


@pytest.fixture
def world(svc, fake_clock):
    c = report_case(svc)
    gw = staff_id(svc, "jiangranran")
    photo = attachments.store(svc, gw, "现场.png", io.BytesIO(png()))
    attachments.link(svc, gw, [photo.id], c.id)
    dispatch_guid = open_items(svc, report_case(svc).id, "dispatch")[0].task_guid
    dispatch(svc, c.id)
    mediate = open_items(svc, c.id, "mediate")[0].task_guid
    hid = household(svc, gw, SEED_GRID, "檀溪路1号1栋", "1-101")
    rid = person(svc, gw, hid, "张建国", date(1970, 5, 1), 11, "head", phone="13812341234")
    fid = visits.flag(svc, gw, rid, "released", "low")
    with svc.db.read() as s:
        from grid.registry.models import Household

        bid = s.get(Household, hid).building_id
    token = api_clients.create(svc, "fuzz", ["reports:create", "cases:read"], demo.CITY_CODE)[1]
    return {"case_id": c.id, "tasks": [mediate, dispatch_guid], "attachment_id": photo.id, "household_id": hid,
            "resident_id": rid, "flag_id": fid, "building_id": bid, "code": SEED_GRID, "unit": SEED_GRID[:12],
            "staff_id": staff_id(svc, "med2.420602003005"), "process_id": "dispute_case", "number": 1, "run_id": 1,
            "instance_id": 1, "role_id": 1, "fmt": "json", "rest": "reports", "token": token}


def _who(endpoint: str) -> str | None:
    bp = endpoint.split(".")[0]
    if bp in ("admin", "admin_org"):
        return "admin"
    if bp in ("api", "open311"):
        return None  # a token
    if endpoint in ("tasks.submit", "case_actions.reassign", "cases.urge") or bp == "accountability":
        return "qiuyun"
    if endpoint == "inbox.late_urge":
        return "sup.420602003000"
    return "jiangranran"


SKIP = {"auth.logout"}  # every other POST route is fuzzed (a client signed out by one is signed in again)


def test_malformed_bodies_on_every_post_route_never_give_500(app, svc, world):
    rng = random.Random(SEED)
    rules = [r for r in app.url_map.iter_rules() if "POST" in r.methods and r.endpoint not in SKIP]
    assert len(rules) >= 45
    clients, tokens = {}, {}

    def client_for(who):
        if who not in clients:
            clients[who] = login(app, who) if who else app.test_client()
            tokens[who] = csrf(clients[who]) if who else None
        return clients[who], tokens[who]

    bad = []
    sent = 0
    for i in range(BODIES):
        rule = rules[i % len(rules)]
        who = _who(rule.endpoint)
        client, token = client_for(who)
        values = {**world, "task_guid": rng.choice(world["tasks"])}
        url = rule_url(rule, values)
        headers = {}
        if who is None:
            headers["Authorization"] = f"Bearer {world['token']}"
        shape = rng.random()
        use_token = token if rng.random() > 0.05 else rng.choice([None, "", "x" * 100, "\x00"])
        if shape < 0.45:
            data = {rng.choice(FIELDS): _value(rng) for _ in range(rng.randrange(0, 10))}
            if use_token is not None:
                data["csrf_token"] = use_token
            if who is None:
                data["api_key"] = world["token"] if rng.random() < 0.8 else _value(rng)
            kw = {"data": data}
        elif shape < 0.7:
            kw = {"data": _json_body(rng), "content_type": "application/json"}
            headers["X-CSRFToken"] = use_token or ""
        elif shape < 0.9:
            body, ctype = _multipart(rng, use_token)
            kw = {"data": body, "content_type": ctype}
        elif shape < 0.95:
            body = b"csrf_token=" + (use_token or "").encode() + b"&" + os.urandom(rng.randrange(1, 500))
            kw = {"data": body, "content_type": "application/x-www-form-urlencoded"}
        else:  # oversize: the per-route limits answer 413
            kw = {"data": {"csrf_token": use_token or "", "description": "长" * rng.choice([100_000, 400_000])}}
        try:
            r = client.post(url, headers=headers, **kw)
            status = r.status_code
            if status == 302 and "/login" in r.headers.get("Location", "") and who:
                clients.pop(who, None)
        except Exception as e:  # noqa: BLE001 - an exception escaping the app is a 500 too
            status = f"{type(e).__name__}: {e}"[:200]
        sent += 1
        if not isinstance(status, int) or status >= 500:
            bad.append((i, rule.endpoint, url, status, repr(kw)[:300]))
    assert sent >= 2000 or sent == BODIES
    assert bad == [], f"{len(bad)} responses >= 500 (seed {SEED}): " + "\n".join(map(str, bad[:15]))
