"""Issue 17 A: sign-in cannot be turned into a weapon or an oracle.

Every failed attempt costs the same work (one hash verification, counted by wrapping werkzeug's
check in `grid.org.passwords`: counting our own calls, not timing them) and gives the same
answer; the per-account throttle is short and bounded, and an administrator can lift it.
"""
from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from grid.org import passwords
from grid.org import service as org
from tests.web_helpers import csrf

NOW = datetime(2026, 1, 5, 8, 0, tzinfo=UTC)
WRONG_MESSAGE = "用户名或密码错误"


@pytest.fixture
def hashes(monkeypatch):
    """A counter of password-hash verifications (werkzeug's check, called through)."""
    calls = []
    real = passwords.check_password_hash

    def counting(pwhash: str, password: str) -> bool:
        calls.append(pwhash)
        return real(pwhash, password)

    monkeypatch.setattr(passwords, "check_password_hash", counting)
    return calls


def _people(db) -> None:
    with db.write() as s:
        org.create_staff(s, "alice", "爱丽丝", password="right-pw", now=NOW)
        org.create_staff(s, "carol", "卡罗尔", password="right-pw", now=NOW)
        org.create_staff(s, "gone", "离职", password="right-pw", now=NOW).active = False
        for _ in range(org.LOCK_AFTER):
            org.authenticate(s, "carol", "wrong", NOW)


def test_every_login_attempt_costs_exactly_one_hash_verification(db, hashes):
    _people(db)
    attempts = {
        "unknown user": ("nobody", "right-pw"),
        "wrong password": ("alice", "wrong"),
        "empty password": ("alice", ""),
        "empty username": ("", "right-pw"),
        "throttled, right password": ("carol", "right-pw"),
        "throttled, wrong password": ("carol", "wrong"),
        "disabled account": ("gone", "right-pw"),
        "NUL in username": ("ali\x00ce", "right-pw"),
    }
    for what, (username, password) in attempts.items():
        hashes.clear()
        with db.write() as s:
            assert org.authenticate(s, username, password, NOW + timedelta(minutes=1)) is None, what
        assert len(hashes) == 1, what
    hashes.clear()
    with db.write() as s:
        assert org.authenticate(s, "alice", "right-pw", NOW) is not None
    assert len(hashes) == 1


def test_verify_password_does_the_work_even_without_a_usable_hash(hashes):
    for stored, given in [(None, "x"), ("", "x"), ("!", "x"), ("garbage", "x"), (passwords.demo_password_hash(), "")]:
        hashes.clear()
        assert passwords.verify_password(stored, given) is False
        assert len(hashes) == 1, (stored, given)


def test_the_throttle_never_shuts_the_owner_out_for_more_than_an_hour(db):
    with db.write() as s:
        p = org.create_staff(s, "target", "目标", password="right-pw", now=NOW)
        t = NOW
        for _ in range(20):  # an attacker keeps sending wrong passwords as soon as the window ends
            for _ in range(org.LOCK_AFTER):
                assert org.authenticate(s, "target", "wrong", t) is None
            assert timedelta(0) < p.locked_until - t <= timedelta(hours=1)
            t = p.locked_until + timedelta(seconds=1)
        assert org.authenticate(s, "target", "right-pw", t) is not None


def test_an_administrator_can_unlock(db):
    with db.write() as s:
        p = org.create_staff(s, "locked", "锁住", password="right-pw", now=NOW)
        for _ in range(org.LOCK_AFTER):
            org.authenticate(s, "locked", "wrong", NOW)
        assert org.authenticate(s, "locked", "right-pw", NOW) is None
        org.unlock(s, p.id)
        assert p.failed_logins == 0 and org.locked_for(p, NOW) is None
        assert org.authenticate(s, "locked", "right-pw", NOW) is not None
        with pytest.raises(org.OrgError):
            org.unlock(s, "u999999")


# ---- the sign-in page ----------------------------------------------------------------------------
def _post(client, username: str, password: str, **extra):
    return client.post("/login", data={"username": username, "password": password,
                                       "csrf_token": csrf(client, "/login"), **extra})


def test_the_page_answers_alike_for_unknown_wrong_empty_and_throttled(app, svc):
    with svc.db.write() as s:
        org.create_staff(s, "dora", "多拉", password="right-pw")
    client = app.test_client()
    for _ in range(org.LOCK_AFTER):
        _post(client, "dora", "wrong")
    answers = set()
    for username, password in [("nobody", "x"), ("jiangranran", "wrong"), ("jiangranran", ""), ("dora", "right-pw")]:
        r = _post(client, username, password)
        html = r.get_data(as_text=True)
        answers.add((r.status_code, WRONG_MESSAGE in html))
    assert answers == {(401, True)}


def test_nul_in_the_login_form_is_refused_not_a_500(app, svc):
    from grid.org.models import Staff

    with svc.db.read() as s:
        before = {(x.id, x.failed_logins, x.locked_until) for x in s.query(Staff).all()}
    client = app.test_client()
    for username, password in [("jiangranran\x00", "gridflow-demo"), ("\x00", "x"), ("jiangranran", "pw\x00")]:
        r = _post(client, username, password)
        assert r.status_code == 422, (username, r.status_code)
        assert "\x00" not in r.get_data(as_text=True)
    with svc.db.read() as s:
        assert {(x.id, x.failed_logins, x.locked_until) for x in s.query(Staff).all()} == before


def test_login_next_with_cr_lf_or_another_site_stays_here(app):
    for target in ["/inbox\r\nSet-Cookie: owned=1", "https://evil.example/", "//evil.example/x"]:
        client = app.test_client()
        r = _post(client, "jiangranran", "gridflow-demo", next=target)
        assert r.status_code == 302, target
        assert "evil" not in r.headers["Location"] and "owned" not in r.headers["Location"]
        assert "Set-Cookie" not in r.headers or "owned" not in r.headers["Set-Cookie"]
