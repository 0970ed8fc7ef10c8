"""The security audit log: every kind is written by a real request, with the client address and
without secrets; the query filters and pages; retention cannot go under 180 days."""
from __future__ import annotations

import json
from datetime import timedelta

import pytest

from engine import clock
from grid.org import audit
from grid.org.passwords import DEMO_PASSWORD
from tests.web_helpers import csrf, login, staff_id


def kinds(svc, **kw) -> list[str]:
    return [e.kind for e in reversed(audit.query(svc, per_page=200, **kw).events)]


def test_each_kind_is_recorded_by_a_request(app, svc):
    sid = staff_id(svc, "jiangranran")
    client = app.test_client()
    token = csrf(client, "/login")

    def post_login(username: str, password: str) -> int:
        return client.post("/login", data={"username": username, "password": password,
                                           "csrf_token": token}).status_code

    assert post_login("nobody-here", "13800000001") == 401
    assert post_login("jiangranran", "wrong-password") == 401
    for _ in range(4):
        post_login("jiangranran", "wrong-password")  # the fifth failure throttles the account
    assert post_login("jiangranran", DEMO_PASSWORD) == 401
    assert kinds(svc) == ["sign_in_failure"] * 6 + ["sign_in_throttled"]
    first = audit.query(svc, kind="sign_in_failure", per_page=200).events[-1]
    assert first.subject is None and first.detail == {"reason": "unknown_user"} and first.ip == "127.0.0.1"
    last_failure = audit.query(svc, kind="sign_in_failure", person=sid).events[0]
    assert last_failure.detail["failures"] == 5 and "throttled_until" in last_failure.detail

    with svc.db.write() as s:  # an administrator lifts the throttle
        from grid.org import service as org

        org.unlock(s, sid)
    a = login(app, "jiangranran")
    b = login(app, "jiangranran")
    assert kinds(svc, person=sid)[-2:] == ["sign_in", "sign_in"]
    a.post("/settings/password", data={"csrf_token": csrf(a), "current_password": DEMO_PASSWORD,
                                       "new_password": "Another-pass-2", "confirm": "Another-pass-2"})
    a.post("/logout", data={"csrf_token": csrf(a)})
    assert kinds(svc, person=sid)[-3:] == ["password_change", "session_ended", "sign_out"]
    ended = audit.query(svc, kind="session_ended").events[0]
    assert (ended.actor, ended.subject, ended.detail) == (sid, sid, {"reason": "password_change", "count": 1})
    assert b.get("/").status_code == 302

    everything = json.dumps([e.detail for e in audit.query(svc, per_page=200).events], ensure_ascii=False)
    for secret in (DEMO_PASSWORD, "wrong-password", "Another-pass-2", "13800000001"):
        assert secret not in everything
    assert {e.ip for e in audit.query(svc, per_page=200).events} == {"127.0.0.1"}


def test_detail_is_scrubbed_and_query_filters_and_pages(svc):
    sid, other = staff_id(svc, "jiangranran"), staff_id(svc, "qiuyun")
    t0 = clock.now()
    with svc.db.write() as s:
        audit.record(s, audit.SIGN_IN, actor=sid, subject=sid, ip="10.0.0.1",
                     detail={"password": "x", "phone": "13900000000", "note": "call 13900000000 or 420602199001011234",
                             "nested": {"id_number": "420602199001011234", "ok": 1}})
        for i in range(5):
            audit.record(s, audit.SIGN_OUT, actor=other, subject=other, at=t0 + timedelta(minutes=i + 1))
    ev = audit.query(svc, kind=audit.SIGN_IN).events[0]
    assert ev.detail == {"note": "call 1********** or ******************", "nested": {"ok": 1}}
    assert ev.unit is not None and ev.ip == "10.0.0.1"

    assert audit.query(svc, person=sid).total == 1
    page = audit.query(svc, person=other, per_page=2, page=2)
    assert (page.total, page.pages, len(page.events)) == (5, 3, 2)
    assert page.events[0].at == t0 + timedelta(minutes=3)  # newest first
    assert audit.query(svc, since=t0 + timedelta(minutes=2), until=t0 + timedelta(minutes=4)).total == 2
    assert audit.query(svc, unit=ev.unit, within=False).total >= 1
    assert audit.query(svc, unit="420600000000", person=sid).total == 1  # the city holds every unit
    assert audit.query(svc, paths=[]).total == 0
    with pytest.raises(ValueError), svc.db.write() as s:
        audit.record(s, "made_up")


def test_retention_and_purge(svc, monkeypatch):
    now = clock.now()
    with svc.db.write() as s:
        audit.record(s, audit.SIGN_OUT, at=now - timedelta(days=400))
        audit.record(s, audit.SIGN_OUT, at=now - timedelta(days=200))
        audit.record(s, audit.SIGN_OUT, at=now)
    assert audit.retention_days() == 365
    with pytest.raises(ValueError):
        audit.purge(svc, days=90)
    monkeypatch.setenv("GRIDFLOW_AUDIT_RETENTION_DAYS", "100")
    with pytest.raises(ValueError):
        audit.retention_days()
    monkeypatch.setenv("GRIDFLOW_AUDIT_RETENTION_DAYS", "180")
    assert audit.purge(svc, now=now) == 2
    # what is left, and the purge itself (the audit chain's new anchor, grid.org.audit.purge)
    assert [e.kind for e in audit.query(svc).events] == [audit.AUDIT_PURGED, audit.SIGN_OUT]


def test_the_schedulers_housekeeping_purges_old_events_and_dead_sessions(svc):
    """What `gridflow scheduler` runs beside the sweep: events past the retention period and
    sessions past their lifetime go; recent ones stay."""
    from sqlalchemy import func, select

    from grid.org import sessions
    from grid.org.models import SecurityEvent, WebSession

    now = clock.now()
    with svc.db.write() as s:
        audit.record(s, audit.SIGN_IN, actor="x", at=now - timedelta(days=400))
        audit.record(s, audit.SIGN_IN, actor="y", at=now - timedelta(days=10))
    sessions.create(svc, staff_id(svc, "jiangranran"), data="{}", user_agent="t", ip="127.0.0.1",
                    limits=sessions.Limits(timedelta(minutes=60), timedelta(hours=8)), now=now - timedelta(days=2))
    ((_name, _every, job),) = [j for j in svc.periodic_jobs() if j[0] == "gridflow-retention"]
    job()
    with svc.db.read() as s:
        assert sorted(s.scalars(select(SecurityEvent.actor_staff_id)
                                .where(SecurityEvent.kind != audit.AUDIT_PURGED))) == ["y"]
        assert s.scalar(select(func.count()).select_from(WebSession)) == 0
