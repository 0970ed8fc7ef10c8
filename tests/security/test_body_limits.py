"""Per-route body limits (issue 17, defect 12): a big body is refused with 413 before it is read,
except where a form takes files; nothing is stored either way."""
from __future__ import annotations

import pytest
from sqlalchemy import func, select

from grid.cases.models import DisputeCase
from grid.org.passwords import DEMO_PASSWORD
from tests.web_helpers import csrf, login, png, report_case, upload
from web import TEXT_FORM_LIMIT, UPLOAD_ENDPOINTS

FORM = {"grid": "420602003005015", "category": "municipal", "description": "楼道堆物引发邻里纠纷，双方争执。",
        "location.text": "襄城区檀溪社区", "parties.0.name": "王某"}


def _cases(svc) -> int:
    with svc.db.read() as s:
        return s.scalar(select(func.count()).select_from(DisputeCase))


def test_every_upload_endpoint_exists(app):
    """A renamed route would silently fall back to the small limit: the list must name real endpoints."""
    assert UPLOAD_ENDPOINTS <= set(app.view_functions)


def test_a_big_sign_in_body_is_refused_unread(app):
    client = app.test_client()
    token = csrf(client, "/login")
    r = client.post("/login", data={"username": "jiangranran", "password": "x" * (TEXT_FORM_LIMIT + 1),
                                    "csrf_token": token})
    assert r.status_code == 413
    ok = client.post("/login", data={"username": "jiangranran", "password": DEMO_PASSWORD, "csrf_token": token})
    assert ok.status_code == 302  # an ordinary sign-in still works


def test_a_megabyte_urge_comment_is_refused(app, svc):
    c = report_case(svc)
    client = login(app, "sup.420602003005")
    r = client.post(f"/cases/{c.id}/urge", data={"csrf_token": csrf(client, f"/cases/{c.id}"), "comment": "急" * 400_000})
    assert r.status_code == 413
    with svc.db.read() as s:
        assert s.get(DisputeCase, c.id).status == "open"


def test_a_report_with_a_two_megabyte_photo_is_accepted(app, svc):
    client = login(app, "jiangranran")
    big = png(1200, 1200) + b"\0" * (2 * 1024 * 1024)  # a PNG header and 2 MB more: over the text limit
    before = _cases(svc)
    r = client.post("/report", data={**FORM, "csrf_token": csrf(client, "/report"), "photos": [upload("大图.png", big)]},
                    content_type="multipart/form-data")
    assert r.status_code == 302, r.status_code
    assert _cases(svc) == before + 1


NAMELESS = (b'--XX\r\nContent-Disposition: form-data\r\n\r\nvalue\r\n'
            b'--XX\r\nContent-Disposition: form-data; name="username"\r\n\r\nx\r\n--XX--\r\n')


@pytest.mark.parametrize("who, path", [(None, "/login"), ("jiangranran", "/report"), ("qiuyun", "/archive")])
def test_a_multipart_part_without_a_name_is_a_400_not_a_500(app, svc, who, path):
    """Defect 10: it crashed Flask-WTF's CSRF lookup on any POST, before sign-in."""
    client = login(app, who) if who else app.test_client()
    before = _cases(svc)
    r = client.post(path, data=NAMELESS, content_type="multipart/form-data; boundary=XX")
    assert r.status_code == 400
    assert _cases(svc) == before
