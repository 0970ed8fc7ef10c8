"""Attachments: type by content, size limit, clean names (Chinese kept, no paths), storage outside
the static root under a random key, and reading only after the authorisation check."""
from __future__ import annotations

import io

import pytest

from engine.errors import InvalidData, NotFound
from grid.cases import attachments
from grid.cases.attachments import MAX_BYTES, UploadRefused, clean_name, sniff
from tests.web_helpers import login, png, report_case, staff_id


def test_sniff_by_content():
    assert sniff(png()) == "image/png"
    assert sniff(b"\xff\xd8\xff\xe0\x00\x10JFIF") == "image/jpeg"
    assert sniff(b"RIFF\x10\x00\x00\x00WEBPVP8 ") == "image/webp"
    assert sniff(b"\x00\x00\x00\x18ftypheic\x00\x00") == "image/heic"
    assert sniff(b"%PDF-1.7") == "application/pdf"
    assert sniff(b"<svg xmlns='http://www.w3.org/2000/svg'>") is None
    assert sniff(b"GIF89a") is None


@pytest.mark.parametrize("name, expected", [
    ("现场 照片.PNG", "现场 照片.png"),
    ("IMG_2026-01-05 (1).jpeg", "IMG_2026-01-05 (1).png"),  # the extension follows the real type
    ('a<b>c|d?"e*.png', "a_b_c_d__e.png"),
    ("\u202egnp.exe", "gnp.png"),  # bidi override dropped
    (".htaccess", "htaccess.png"),
    ("", "file.png"),
    ("名" * 200 + ".png", "名" * 80 + ".png"),
])
def test_clean_name(name, expected):
    assert clean_name(name, "image/png") == expected


@pytest.mark.parametrize("name", ["../evil.png", "..\\evil.png", "/etc/passwd", "a/b.png", "x\x00.png", "..", "a..b.png",
                                  "．．／．．／evil.png", "a／b.png", "．．＼evil.png"])  # fullwidth forms fold to ASCII
def test_names_with_paths_are_refused(name):
    with pytest.raises(UploadRefused) as e:
        clean_name(name, "image/png")
    assert e.value.code == "name"


def test_store_checks_and_keeps_bytes_outside_static(svc, tmp_path):
    svc.settings.uploads = tmp_path / "uploads"
    gw = staff_id(svc, "jiangranran")
    with pytest.raises(UploadRefused) as e:
        attachments.store(svc, gw, "big.png", io.BytesIO(png() + b"\0" * MAX_BYTES))
    assert e.value.code == "size"
    with pytest.raises(UploadRefused) as e:
        attachments.store(svc, gw, "note.pdf", io.BytesIO(b"%PDF-1.4"), images_only=True)
    assert e.value.code == "type"
    with pytest.raises(UploadRefused):
        attachments.store(svc, gw, "../../x.png", io.BytesIO(png()))
    assert not (tmp_path / "uploads").exists() or not any(p.is_file() for p in (tmp_path / "uploads").rglob("*"))
    a = attachments.store(svc, gw, "合同.pdf", io.BytesIO(b"%PDF-1.4 ..."))
    assert (a.content_type, a.filename, a.case_id) == ("application/pdf", "合同.pdf", None)
    view, content = attachments.open_for(svc, gw, a.id)
    path = content.path
    assert path.parent.parent == (tmp_path / "uploads").resolve() and path.name == a.id
    assert "static" not in path.parts and path.read_bytes() == b"%PDF-1.4 ..."


def test_who_may_read_an_attachment(svc, tmp_path):
    svc.settings.uploads = tmp_path / "uploads"
    gw = staff_id(svc, "jiangranran")
    a = attachments.store(svc, gw, "现场.png", io.BytesIO(png()))
    others = [staff_id(svc, u) for u in ("qiuyun", "gw.420602003005001", "disp1.420600000000")]
    for o in others:  # before it is on a case, only the uploader reads it
        with pytest.raises(NotFound):
            attachments.open_for(svc, o, a.id)
    with pytest.raises(InvalidData):  # nobody else may put her upload into a form
        attachments.usable(svc, others[0], [a.id])
    c = report_case(svc, {"photos": [a.id]})
    assert attachments.link(svc, staff_id(svc, "qiuyun"), [a.id], c.id) == 0  # not hers to link
    assert attachments.link(svc, gw, [a.id], c.id) == 1
    for u in ("jiangranran", "qiuyun", "med1.420602003005", "sup.420602003000", "disp1.420602000000",
              "sup.420600000000"):
        attachments.open_for(svc, staff_id(svc, u), a.id)  # the case's jurisdiction
    for u in ("gw.420602003005001", "head.420602003001", "disp1.420602001000", "sup.420606000000"):
        with pytest.raises(NotFound):
            attachments.open_for(svc, staff_id(svc, u), a.id)


def test_serving(app, svc):
    gw = staff_id(svc, "jiangranran")
    photo = attachments.store(svc, gw, "现场.png", io.BytesIO(png()))
    pdf = attachments.store(svc, gw, "材料.pdf", io.BytesIO(b"%PDF-1.4 test"))
    c = report_case(svc, {"photos": [photo.id]})
    attachments.link(svc, gw, [photo.id, pdf.id], c.id)
    client = login(app, "qiuyun")
    r = client.get(f"/attachments/{photo.id}")  # what pages link to: the screen rendition, never the original
    assert r.status_code == 200 and r.mimetype == "image/jpeg" and r.data.startswith(b"\xff\xd8")
    r = client.get(f"/attachments/{photo.id}/original")  # the original only as a download
    assert r.status_code == 200 and r.mimetype == "image/png" and r.data == png()
    assert r.headers["Content-Disposition"].startswith("attachment")
    assert r.headers["X-Content-Type-Options"] == "nosniff" and "sandbox" in r.headers["Content-Security-Policy"]
    assert r.headers["Cache-Control"].startswith("private")
    r = client.get(f"/attachments/{pdf.id}")
    assert r.mimetype == "application/pdf" and r.headers["Content-Disposition"].startswith("attachment")
    assert "filename*=UTF-8''%E6%9D%90%E6%96%99.pdf" in r.headers["Content-Disposition"]
    assert login(app, "gw.420602003005001").get(f"/attachments/{photo.id}").status_code == 404
