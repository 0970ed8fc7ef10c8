"""Issue 17 F: the admin pages' `next` only goes back to a page of this site, and CR/LF in it is
refused instead of breaking the Location header (a 500). A literal '%0d%0a' in a path is just an
(encoded, harmless) local path."""
from __future__ import annotations

from datetime import date
from urllib.parse import urlsplit

import pytest

from engine import clock
from grid.org import service as org
from grid.org.models import StaffRole

TARGETS = ["https://evil.example/", "//evil.example/x", "/\\evil.example", "/admin/versions\r\nSet-Cookie: owned=1",
           "/admin/versions%0d%0aSet-Cookie:%20owned=1", "javascript:alert(1)"]


@pytest.fixture
def admin(svc):
    from grid.config import Settings
    from web import create_app

    app = create_app(Settings(database_url=svc.db.url_with_password, secret_key="test-secret"), services=svc,
                     TESTING=True, WTF_CSRF_ENABLED=False)
    with svc.db.write() as s:
        st = org.create_staff(s, "admin1", "管理员", password_hash="!")
        s.add(StaffRole(staff_id=st.id, unit_code="420600000000", role="admin", active=True, since=date(2026, 1, 1)))
        sid = st.id
    client = app.test_client()
    with client.session_transaction() as sess:
        now = clock.now().timestamp()
        sess.update({"_user_id": sid, "_fresh": True, "t0": now, "seen": now})
    return client


def _stays_here(resp) -> None:
    assert resp.status_code == 302
    loc = resp.headers["Location"]
    parts = urlsplit(loc)
    assert parts.netloc in ("", "localhost") and parts.scheme in ("", "http"), loc
    assert loc.startswith(("/admin/", "http://localhost/admin/")) and not set(loc) & {"\r", "\n"}, loc
    assert "owned" not in resp.headers.get("Set-Cookie", "")  # no header smuggled in


@pytest.mark.parametrize("target", TARGETS)
def test_activate_and_revert_go_back_only_to_this_site(admin, target):
    _stays_here(admin.post("/admin/versions/dispute_case/1/activate", data={"next": target}))
    _stays_here(admin.post("/admin/instances/999999/revert", data={"next": target}))


def test_a_local_next_is_still_followed(admin):
    resp = admin.post("/admin/versions/dispute_case/1/activate", data={"next": "/admin/versions/dispute_case/1"})
    assert resp.status_code == 302 and resp.headers["Location"].endswith("/admin/versions/dispute_case/1")
