"""Server-side sessions: an opaque cookie, a new id at sign-in, sign-out and every other ending
take effect at once, the settings page lists and ends sessions, CSRF still guards every POST."""
from __future__ import annotations

import re

from sqlalchemy import func, select

from grid.org import sessions
from grid.org.models import WebSession
from grid.org.passwords import DEMO_PASSWORD
from tests.web_helpers import csrf, login, staff_id

COOKIE = "gridflow_session"


def cookie(client) -> str | None:
    c = client.get_cookie(COOKIE)
    return c.value if c is not None else None


def with_cookie(app, value: str):
    """A fresh client that presents only this session cookie (what a thief would have)."""
    other = app.test_client()
    other.set_cookie(COOKIE, value)
    return other


def signed_in(client) -> bool:
    r = client.get("/")
    return r.status_code == 200


def test_cookie_holds_only_an_opaque_id(app, svc):
    client = login(app, "jiangranran")
    names = {c.key for c in client._cookies.values()}
    assert names == {COOKIE}
    value = cookie(client)
    assert re.fullmatch(r"[A-Za-z0-9_-]{43}", value), value  # 32 random bytes, no payload, no signature
    assert "jiangranran" not in value and "." not in value
    with svc.db.read() as s:
        rows = s.scalars(select(WebSession).where(WebSession.staff_id == staff_id(svc, "jiangranran"))).all()
    assert [r.token_hash for r in rows] == [sessions.token_hash(value)]
    assert value not in rows[0].token_hash and value not in rows[0].data  # only a hash of the token is kept


def test_session_id_rotates_at_sign_in(app, svc):
    client = app.test_client()
    token = csrf(client, "/login")
    before = cookie(client)
    assert before
    r = client.post("/login", data={"username": "jiangranran", "password": DEMO_PASSWORD, "csrf_token": token})
    assert r.status_code == 302
    after = cookie(client)
    assert after and after != before
    assert signed_in(client)
    assert not signed_in(with_cookie(app, before))  # a planted pre-sign-in id opens nothing
    with svc.db.read() as s:
        assert s.scalar(select(func.count()).select_from(WebSession)
                        .where(WebSession.token_hash == sessions.token_hash(before))) == 0


def test_sign_out_ends_the_session(app):
    client = login(app, "jiangranran")
    copied = cookie(client)
    assert signed_in(with_cookie(app, copied))
    r = client.post("/logout", data={"csrf_token": csrf(client)})
    assert r.status_code == 302
    stolen = with_cookie(app, copied)
    r = stolen.get("/")
    assert r.status_code == 302 and r.headers["Location"].startswith("/login")
    assert not signed_in(client)


def test_csrf_still_guards_posts(app):
    client = login(app, "jiangranran")
    assert client.post("/logout").status_code == 400
    assert client.post("/settings/sessions/end-others", data={"csrf_token": "forged"}).status_code == 400
    assert signed_in(client)
    r = client.post("/settings", data={"locale": "en", "csrf_token": csrf(client)})
    assert r.status_code == 302


def test_settings_lists_sessions_and_ends_another(app, svc):
    phone = login(app, "jiangranran")
    desk = login(app, "jiangranran")
    html = desk.get("/settings", headers={"User-Agent": "DeskBrowser/1.0"}).get_data(as_text=True)
    assert "当前会话" in html and html.count("结束会话") == 1  # the other one can be ended, this one not
    mine = sessions.active(svc, staff_id(svc, "jiangranran"))
    assert len(mine) == 2 and all(v.ip == "127.0.0.1" for v in mine)
    other = [v.id for v in mine if sessions.token_hash(cookie(desk)) != _hash_of(svc, v.id)][0]
    r = desk.post("/settings/sessions/end", data={"csrf_token": csrf(desk), "session": str(other)})
    assert r.status_code == 302
    assert not signed_in(phone) and signed_in(desk)
    # someone else's session id cannot be ended from here
    third = login(app, "qiuyun")
    theirs = sessions.active(svc, staff_id(svc, "qiuyun"))[0].id
    desk.post("/settings/sessions/end", data={"csrf_token": csrf(desk), "session": str(theirs)})
    assert signed_in(third)


def _hash_of(svc, session_id: int) -> str:
    with svc.db.read() as s:
        return s.get(WebSession, session_id).token_hash


def test_end_all_and_password_change_end_sessions(app, svc):
    sid = staff_id(svc, "jiangranran")
    a, b, c = (login(app, "jiangranran") for _ in range(3))
    r = a.post("/settings/sessions/end-others", data={"csrf_token": csrf(a)})
    assert r.status_code == 302 and signed_in(a) and not signed_in(b) and not signed_in(c)

    b = login(app, "jiangranran")
    r = a.post("/settings/password", data={"csrf_token": csrf(a), "current_password": "wrong-one",
                                           "new_password": "A-new-secret-1", "confirm": "A-new-secret-1"})
    assert r.status_code == 422 and signed_in(b)
    r = a.post("/settings/password", data={"csrf_token": csrf(a), "current_password": DEMO_PASSWORD,
                                           "new_password": "A-new-secret-1", "confirm": "A-new-secret-1"})
    assert r.status_code == 302
    assert signed_in(a) and not signed_in(b)  # the one that changed it stays
    login(app, "jiangranran", "A-new-secret-1")

    assert sessions.end_all(svc, sid, "deactivated") == 2  # what the admin pages call
    assert not signed_in(a)


def test_expired_sessions_are_gone_from_the_table(app, svc, fake_clock):
    from datetime import timedelta

    client = login(app, "jiangranran")
    value = cookie(client)
    fake_clock.advance(timedelta(minutes=61))
    assert not signed_in(client)
    with svc.db.read() as s:
        assert s.scalar(select(func.count()).select_from(WebSession)
                        .where(WebSession.token_hash == sessions.token_hash(value))) == 0
    login(app, "qiuyun")  # a session nobody uses again: past its absolute lifetime it is purged
    fake_clock.advance(timedelta(hours=9))
    assert sessions.purge_expired(svc) >= 1
    with svc.db.read() as s:
        assert s.scalar(select(func.count()).select_from(WebSession)) == 0


def _rows(svc) -> int:
    with svc.db.read() as s:
        return s.scalar(select(func.count()).select_from(WebSession))


def test_visitors_who_do_not_sign_in_write_no_session_rows(app, svc):
    """Anonymous requests (the sign-in page, a redirect to it) keep what they need in a signed
    cookie: 50 of them leave the session table as it was, and the sign-in form still works."""
    before = _rows(svc)
    for _ in range(25):
        fresh = app.test_client()
        assert fresh.get("/").status_code == 302
        assert fresh.get("/login").status_code == 200
    assert _rows(svc) == before
    client = app.test_client()
    token = csrf(client, "/login")
    assert cookie(client).startswith("a.")  # signed, not a table row
    r = client.post("/login", data={"username": "jiangranran", "password": DEMO_PASSWORD, "csrf_token": token})
    assert r.status_code == 302 and signed_in(client)
    assert _rows(svc) == before + 1 and not cookie(client).startswith("a.")  # now an opaque id


def test_a_forged_anonymous_cookie_is_ignored(app):
    client = with_cookie(app, "a.eyJfdXNlcl9pZCI6ImFkbWluIn0.forged")
    assert not signed_in(client)
