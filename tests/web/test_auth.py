"""Sign-in: hashed passwords with lockout, CSRF on every POST, session expiry, safe redirects, headers."""
from __future__ import annotations

from datetime import timedelta

from grid.org.passwords import DEMO_PASSWORD
from tests.web_helpers import csrf, login, rule_url


def test_pages_need_sign_in(app):
    client = app.test_client()
    r = client.get("/")
    assert r.status_code == 302 and r.headers["Location"].startswith("/login")
    r = client.get("/login")
    assert r.status_code == 200
    assert "登录" in r.get_data(as_text=True)  # Chinese by default
    assert client.get("/healthz").status_code == 200


def test_login_without_csrf_token_is_refused(app):
    client = app.test_client()
    r = client.post("/login", data={"username": "jiangranran", "password": DEMO_PASSWORD})
    assert r.status_code == 400
    assert "登录表单已失效" in r.get_data(as_text=True)
    assert client.get("/").status_code == 302  # still signed out
    client.get("/login")
    r = client.post("/login", data={"username": "jiangranran", "password": DEMO_PASSWORD, "csrf_token": "forged"})
    assert r.status_code == 400 and client.get("/").status_code == 302


def test_every_post_route_needs_the_token(app):
    client = login(app, "qiuyun")
    posts = [r for r in app.url_map.iter_rules() if "POST" in r.methods]
    assert posts
    for rule in posts:
        r = client.post(rule_url(rule), data={"comment": "x", "locale": "en"})
        if rule.endpoint.startswith(("api.", "open311.")):
            # token routes: no CSRF (no cookie is read), and a signed-in cookie opens nothing
            assert r.status_code in (400, 401, 404), (rule.rule, r.status_code)  # 404: an unknown format
        else:
            assert r.status_code == 400, (rule.rule, r.status_code)
    assert client.get("/").status_code == 200  # still signed in: nothing was done


def test_sign_in_and_out(app):
    client = login(app, "jiangranran")
    page = client.get("/").get_data(as_text=True)
    assert "我的待办" in page and "江冉冉" in page
    assert client.get("/logout").status_code == 405  # sign-out is a POST with the token
    r = client.post("/logout", data={"csrf_token": csrf(client)})
    assert r.status_code == 302
    assert client.get("/").status_code == 302


def test_wrong_password_and_lockout(app):
    client = app.test_client()
    token = csrf(client, "/login")
    for _ in range(5):
        r = client.post("/login", data={"username": "jiangranran", "password": "wrong", "csrf_token": token})
        assert r.status_code == 401
    r = client.post("/login", data={"username": "jiangranran", "password": DEMO_PASSWORD, "csrf_token": token})
    assert r.status_code == 401  # locked for a while, even with the right password
    assert "暂时锁定" in r.get_data(as_text=True)
    r = client.post("/login", data={"username": "nobody", "password": "x", "csrf_token": token})
    assert r.status_code == 401


def test_session_expires_when_idle_and_after_its_lifetime(app, fake_clock):
    client = login(app, "jiangranran")
    assert client.get("/").status_code == 200
    fake_clock.advance(timedelta(minutes=59))
    assert client.get("/").status_code == 200
    fake_clock.advance(timedelta(minutes=61))  # idle for more than an hour
    r = client.get("/")
    assert r.status_code == 302 and "/login" in r.headers["Location"]
    assert "登录已过期" in client.get("/login").get_data(as_text=True)

    client = login(app, "jiangranran")
    for _ in range(16):  # active every 30 minutes: idle never runs out, but 8 hours do
        fake_clock.advance(timedelta(minutes=30))
        assert client.get("/").status_code == 200
    fake_clock.advance(timedelta(minutes=30))
    assert client.get("/").status_code == 302


def test_next_is_local_only(app):
    client = app.test_client()
    token = csrf(client, "/login")
    for target, expected in (("/archive", "/archive"), ("//evil.example/x", "/"), ("https://evil.example/", "/"),
                             ("/\\evil.example", "/")):
        r = client.post("/login", data={"username": "jiangranran", "password": DEMO_PASSWORD, "csrf_token": token,
                                        "next": target})
        assert r.status_code == 302 and r.headers["Location"] == expected, target
        client.post("/logout", data={"csrf_token": csrf(client)})
        token = csrf(client, "/login")


def test_security_headers(app):
    client = login(app, "jiangranran")
    r = client.get("/")
    h = r.headers
    assert h["X-Frame-Options"] == "DENY"
    assert h["X-Content-Type-Options"] == "nosniff"
    assert "script-src 'self'" in h["Content-Security-Policy"] and "unsafe-inline" not in h["Content-Security-Policy"].split("style-src")[0]
    assert h["Cache-Control"] == "no-store"
    cookie = [v for k, v in r.headers.items() if k == "Set-Cookie"] or \
        [v for k, v in client.get("/login").headers.items() if k == "Set-Cookie"]
    assert all("HttpOnly" in c for c in cookie)


def test_disabled_account_is_signed_out(app, svc):
    from grid.org.models import Staff

    client = login(app, "jiangranran")
    with svc.db.write() as s:
        s.query(Staff).filter(Staff.username == "jiangranran").update({"active": False})
    assert client.get("/").status_code == 302
