"""Issue 17 F: the admin pages' `next` only goes back to a page of this site, and CR/LF in it is
refused instead of breaking the Location header (a 500). A literal '%0d%0a' in a path is just an
(encoded, harmless) local path."""
from __future__ import annotations

from urllib.parse import urlsplit

import pytest

from tests.web_helpers import admin_client

TARGETS = ["https://evil.example/", "//evil.example/x", "/\\evil.example", "/admin/versions\r\nSet-Cookie: owned=1",
           "/admin/versions%0d%0aSet-Cookie:%20owned=1", "javascript:alert(1)"]


@pytest.fixture
def admin(svc):
    return admin_client(svc)


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
