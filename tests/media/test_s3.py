"""Attachments in an S3-compatible object store (GRIDFLOW_STORAGE=s3://bucket/prefix), against a
real S3 server (moto's server mode): the store itself, uploads and renditions through it, the
cleanup, and backup/restore that include the bucket's objects."""
from __future__ import annotations

import io
from datetime import timedelta
from pathlib import Path

import pytest

from engine import backup
from engine.db import Database
from grid import storage
from grid.cases import attachments
from tests.media import helpers as h
from tests.media.s3_helpers import prefix as new_prefix
from tests.media.s3_helpers import s3_server
from tests.web_helpers import login, make_app, report_case, staff_id


@pytest.fixture(scope="module")
def endpoint():
    with s3_server() as url:
        yield url


@pytest.fixture
def on_s3(svc, endpoint, tmp_path):
    """`svc` with its attachments in a fresh prefix of the bucket (and a local directory that must stay empty)."""
    svc.settings.storage = f"s3://gridflow/{new_prefix()}"
    svc.settings.s3_endpoint = endpoint
    svc.settings.uploads = tmp_path / "uploads-unused"
    return svc


def test_s3_store_round_trip(endpoint):
    st = storage.S3Store("gridflow", new_prefix(), endpoint=endpoint)
    st.put("ab/one", b"first", "text/plain")
    st.put("ab/one.thumb", b"\xff\xd8thumb", "image/jpeg")
    assert st.get("ab/one") == b"first" and st.exists("ab/one") and not st.exists("ab/two")
    assert sorted(k for k, _m in st.keys()) == ["ab/one", "ab/one.thumb"]
    assert all(m.tzinfo is not None for _k, m in st.keys())
    st.put("ab/one", b"second")
    assert st.get("ab/one") == b"second"
    st.delete("ab/one")
    with pytest.raises(storage.Missing):
        st.get("ab/one")
    with pytest.raises(storage.Missing):
        st.put("../escape", b"x")
    assert st.local_path("ab/one.thumb") is None


def test_configuration_selects_the_store(monkeypatch, tmp_path):
    from grid.config import ConfigError, Settings

    monkeypatch.setenv("GRIDFLOW_UPLOADS", str(tmp_path))
    assert isinstance(storage.from_settings(Settings()), storage.LocalStore)
    monkeypatch.setenv("GRIDFLOW_STORAGE", "s3://gridflow/city-a/attachments")
    monkeypatch.setenv("GRIDFLOW_S3_ENDPOINT", "http://127.0.0.1:9")
    st = storage.from_settings(Settings())
    assert isinstance(st, storage.S3Store) and (st.bucket, st.prefix) == ("gridflow", "city-a/attachments/")
    assert storage.from_settings(Settings()) is st  # one client per configuration and process
    monkeypatch.setenv("GRIDFLOW_STORAGE", "/mnt/share")
    with pytest.raises(ConfigError):
        storage.from_settings(Settings())


def test_uploads_renditions_and_cleanup_through_s3(on_s3, tmp_path):
    svc = on_s3
    app = make_app(svc, tmp_path)
    svc.settings.uploads = tmp_path / "uploads-unused"  # make_app set it; nothing may land there
    gw = staff_id(svc, "jiangranran")
    photo = h.noisy_jpeg(1600, 1200, 90)
    a = attachments.store(svc, gw, "现场.jpg", io.BytesIO(photo))
    c = report_case(svc, {"photos": [a.id]})
    attachments.link(svc, gw, [a.id], c.id)
    st = storage.from_settings(svc.settings)
    key = f"{a.id[:2]}/{a.id}"
    assert sorted(k for k, _m in st.keys()) == [key, f"{key}.screen", f"{key}.thumb"]
    client = login(app, "qiuyun")
    r = client.get(f"/attachments/{a.id}/original")
    assert r.status_code == 200 and r.data == photo
    r = client.get(f"/attachments/{a.id}/thumb")
    assert r.status_code == 200 and r.mimetype == "image/jpeg" and b"Exif" not in r.data
    r = client.get(f"/attachments/{a.id}", headers={"Range": "bytes=0-9"})
    assert r.status_code == 206 and len(r.data) == 10
    # a rendition lost (or never made): made again on first use, once, and stored
    st.delete(f"{key}.thumb")
    assert client.get(f"/attachments/{a.id}/thumb").status_code == 200 and st.exists(f"{key}.thumb")
    # cleanup on the bucket: a pending upload and a stray object go, the linked photo stays
    (pending,) = attachments.save(svc, gw, [attachments.check(svc, "p.jpg", io.BytesIO(h.small_jpeg()))])
    st.put("zz/stray", b"orphan")
    done = attachments.cleanup(svc, grace=timedelta(0))
    assert done == {"pending": 1, "stray": 1}
    assert sorted(k for k, _m in st.keys()) == [key, f"{key}.screen", f"{key}.thumb"]
    assert not (tmp_path / "uploads-unused").exists()


def test_backup_and_restore_include_the_bucket(sqlite_db, endpoint, tmp_path):
    from grid.cases.scenario import prepare

    root = Path(__file__).resolve().parents[2]
    svc = prepare(sqlite_db, root / "workflows", root / "forms")
    svc.settings.storage, svc.settings.s3_endpoint = f"s3://gridflow/{new_prefix()}", endpoint
    gw = staff_id(svc, "jiangranran")
    a = attachments.store(svc, gw, "现场.jpg", io.BytesIO(h.small_jpeg()))
    c = report_case(svc, {"photos": [a.id]})
    attachments.link(svc, gw, [a.id], c.id)
    source = storage.from_settings(svc.settings)
    objects = {k: source.get(k) for k, _m in source.keys()}
    assert len(objects) == 3

    archive = tmp_path / "backup.tar.gz"
    manifest = backup.backup(svc.db, archive, source)
    assert sorted(f["path"] for f in manifest["uploads"]) == sorted("uploads/" + k for k in objects)

    target = storage.S3Store("gridflow", new_prefix(), endpoint=endpoint)  # an empty place, as after a loss
    url = f"sqlite:///{tmp_path / 'restored.sqlite'}"
    backup.restore(archive, url, target)
    assert {k: target.get(k) for k, _m in target.keys()} == objects
    restored = Database(url)
    try:
        with restored.read() as s:
            from grid.cases.models import Attachment

            assert s.get(Attachment, a.id).case_id == c.id
    finally:
        restored.dispose()
