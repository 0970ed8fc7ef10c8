"""Reporting from a phone: the report form, photos, location; refused uploads (path traversal,
wrong type) save nothing."""
from __future__ import annotations

from sqlalchemy import func, select

from grid.cases.models import Attachment, DisputeCase
from tests.web_helpers import csrf, login, upload

FORM = {"grid": "420602003005015", "category": "municipal",
        "description": "南山家属院雨污分流改造，居民担心雨水倒灌。", "location.text": "襄城区檀溪社区南山家属院",
        "location.lat": "32.0213", "location.lng": "112.1432",
        "parties.0.name": "南山家属院居民代表", "parties.0.phone": "13800000001",
        "parties.1.name": "", "parties.1.phone": "",
        "parties.2.name": "雨污分流改造施工方", "parties.2.phone": "13800000002"}

def _count(svc, model) -> int:
    with svc.db.read() as s:
        return s.scalar(select(func.count()).select_from(model))


def test_report_form_renders_every_report_widget(app):
    client = login(app, "jiangranran")
    html = client.get("/report").get_data(as_text=True)
    for needle in ('<select id="f-category" name="category"', '<textarea id="f-description"',
                   'name="location.text"', 'name="location.lat"', 'data-geo="location"', 'name="parties.0.name"',
                   'type="tel" id="f-parties-0-phone"', 'data-add-row="parties"', 'type="file" id="f-photos"',
                   'role="switch" id="f-settled_on_spot"', 'data-required-when="{&#34;settled_on_spot&#34;: &#34;true&#34;}"',
                   'enctype="multipart/form-data"', 'name="viewport" content="width=device-width'):
        assert needle in html, needle
    assert "市政施工" in html and "矛盾纠纷上报" in html


def test_only_grid_workers_report(app):
    assert login(app, "qiuyun").get("/report").status_code == 403


def test_report_with_photos_and_location(app, svc):
    client = login(app, "jiangranran")
    data = {**FORM, "csrf_token": csrf(client, "/report"),
            "photos": [upload("现场 照片.PNG"), upload("第二张.png")]}
    r = client.post("/report", data=data, content_type="multipart/form-data")
    assert r.status_code == 302, r.get_data(as_text=True)[:2000]
    case_id = int(r.headers["Location"].rsplit("/", 1)[1])
    with svc.db.read() as s:
        c = s.get(DisputeCase, case_id)
        files = list(s.scalars(select(Attachment).where(Attachment.case_id == case_id)))
    assert (c.lat, c.lng, c.location_text) == (32.0213, 112.1432, "襄城区檀溪社区南山家属院")
    assert [p["name"] for p in c.parties] == ["南山家属院居民代表", "雨污分流改造施工方"]  # the empty row is dropped
    assert sorted(a.filename for a in files) == ["现场 照片.png", "第二张.png"]
    assert sorted(c.photos) == sorted(a.id for a in files)
    for a in files:
        path = svc.settings.uploads / a.storage_key
        assert path.is_file() and path.read_bytes()[:4] == b"\x89PNG"
    page = client.get(f"/cases/{case_id}").get_data(as_text=True)
    assert "已上报，案件编号" in page and c.case_no in page


def test_invalid_report_saves_nothing_but_keeps_the_input_and_names_the_photos(app, svc):
    client = login(app, "jiangranran")
    n_cases, n_files = _count(svc, DisputeCase), _count(svc, Attachment)
    data = {**FORM, "description": "", "settled_on_spot": "on", "csrf_token": csrf(client, "/report"),
            "photos": [upload("现场.png")]}
    r = client.post("/report", data=data, content_type="multipart/form-data")
    assert r.status_code == 422
    html = r.get_data(as_text=True)
    assert _count(svc, DisputeCase) == n_cases
    assert '<div id="f-description-err">' in html and '<div id="f-spot_result-err">' in html
    assert 'value="襄城区檀溪社区南山家属院"' in html and 'value="13800000001"' in html
    assert 'id="f-settled_on_spot" name="settled_on_spot" value="on" checked' in html
    # a refused form stores no upload (issue 17, defect 6): the page names the photo to choose again
    assert _count(svc, Attachment) == n_files and 'name="photos.keep"' not in html
    assert "现场.png" in html and "notice-unsaved" in html
    r = client.post("/report", data={**FORM, "csrf_token": csrf(client, "/report"), "photos": [upload("现场.png")]},
                    content_type="multipart/form-data")
    assert r.status_code == 302
    with svc.db.read() as s:
        (a,) = s.scalars(select(Attachment).where(Attachment.filename == "现场.png"))
        assert a.case_id is not None and not a.pending


def test_path_traversal_upload_is_refused(app, svc, tmp_path):
    client = login(app, "jiangranran")
    n_files, n_cases = _count(svc, Attachment), _count(svc, DisputeCase)
    for name in ("../../evil.png", "..\\..\\evil.png", "/etc/cron.d/evil.png", "a/../../b.png"):
        data = {**FORM, "csrf_token": csrf(client, "/report"), "photos": [upload(name)]}
        r = client.post("/report", data=data, content_type="multipart/form-data")
        assert r.status_code == 422, name
        assert "文件名不能包含路径" in r.get_data(as_text=True), name
    assert _count(svc, Attachment) == n_files and _count(svc, DisputeCase) == n_cases
    uploads = svc.settings.uploads
    assert not uploads.exists() or not any(p.is_file() for p in uploads.rglob("*"))
    assert not any(p.name == "evil.png" for p in tmp_path.rglob("*"))


def test_wrong_type_and_empty_uploads_are_refused(app, svc):
    client = login(app, "jiangranran")
    n_files = _count(svc, Attachment)
    for name, content, message in (("照片.png", b"<html><script>alert(1)</script></html>", "只接受"),
                                   ("空.png", b"", "文件为空"),
                                   ("文档.pdf", b"%PDF-1.7\n...", "只接受")):  # a PDF is no photo
        data = {**FORM, "csrf_token": csrf(client, "/report"), "photos": [upload(name, content)]}
        r = client.post("/report", data=data, content_type="multipart/form-data")
        assert r.status_code == 422 and message in r.get_data(as_text=True), name
    assert _count(svc, Attachment) == n_files
