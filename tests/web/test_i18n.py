"""Language: every UI string lives in the catalogs and is translated (zh_CN, and en); the compiled
catalogs match their sources; templates carry no untranslated text of their own."""
from __future__ import annotations

import re
from pathlib import Path

import pytest

from web.ui import catalog

TEMPLATES = Path(catalog.ROOT) / "web" / "templates"
MINE = [p for p in TEMPLATES.rglob("*.html") if p.relative_to(TEMPLATES).parts[0] != "registry"]  # registry: tests/test_registry_web.py
AUTONYMS = {"English", "中文", "简体中文"}  # language names are written in their own language


@pytest.fixture(scope="module")
def template():
    return catalog.extract()


def test_messages_are_extracted(template):
    ids = {m.id for m in template if m.id}
    assert len(ids) > 150
    assert {"My tasks", "Sign in", "This field is required.", "Case reported", "Urge"} <= ids


@pytest.mark.parametrize("locale", catalog.LOCALES)
def test_every_message_is_translated(template, locale):
    assert catalog.missing(template, locale) == [], "run: .venv/bin/python -m web.ui.catalog update"


@pytest.mark.parametrize("locale", catalog.LOCALES)
def test_compiled_catalogs_match_their_sources(locale):
    po = {m.id: m.string for m in catalog.read(locale) if m.id and m.string}
    mo = {m.id: m.string for m in catalog.read_compiled(locale) if m.id}
    assert po == mo, "run: .venv/bin/python -m web.ui.catalog update"


@pytest.mark.parametrize("locale", catalog.LOCALES)
def test_placeholders_survive_translation(locale):
    for m in catalog.read(locale):
        if m.id and m.string:
            assert set(re.findall(r"%\((\w+)\)s", m.id)) == set(re.findall(r"%\((\w+)\)s", m.string)), m.id


def test_zh_cn_is_chinese(template):
    cat = catalog.read("zh_CN")
    words = [m for m in cat if m.id and re.search(r"[A-Za-z]{3}", m.id) and m.id not in ("Gridflow",)]
    untouched = [m.id for m in words if m.string == m.id]
    assert not untouched, untouched


def _visible_text(source: str) -> str:
    s = re.sub(r"\{#.*?#\}", " ", source, flags=re.S)
    s = re.sub(r"\{%.*?%\}", " ", s, flags=re.S)
    s = re.sub(r"\{\{.*?\}\}", " ", s, flags=re.S)
    s = re.sub(r"<(script|style)\b.*?</\1>", " ", s, flags=re.S)
    s = re.sub(r"<[^>]+>", " ", s)  # tags and their attributes
    s = re.sub(r'\b[\w-]+="[^"]*"', " ", s)  # attributes a macro writes outside a tag
    s = re.sub(r"&\w+;|&#\d+;", " ", s)
    return s


@pytest.mark.parametrize("path", MINE, ids=[str(p.relative_to(TEMPLATES)) for p in MINE])
def test_templates_have_no_literal_text(path):
    """Words a person reads must come from the catalogs: text between tags, and the attributes
    people read (title, aria-label, placeholder, alt, data-msg-*)."""
    source = path.read_text(encoding="utf-8")
    words = [w for w in re.findall(r"[A-Za-z]{2,}|[\u4e00-\u9fff]+", _visible_text(source)) if w not in AUTONYMS]
    assert not words, words
    for attr in re.findall(r'\b(?:title|aria-label|placeholder|alt|data-msg-[\w-]+|data-busy)="([^"]*)"', source):
        literal = re.sub(r"\{\{.*?\}\}", "", attr)
        assert not re.search(r"[A-Za-z]{2,}|[\u4e00-\u9fff]", literal), attr


def test_both_languages_render(tmp_path, sqlite_db):
    from grid.config import Settings
    from grid.services import Services
    from web import create_app

    svc = Services.build(Settings(database_url=str(sqlite_db.url), uploads=tmp_path, secret_key="t"), db=sqlite_db)
    client = create_app(svc.settings, services=svc, TESTING=True).test_client()
    zh = client.get("/login").get_data(as_text=True)
    assert '<html lang="zh-CN">' in zh and "用户名" in zh and "密码" in zh and "Username" not in zh
    en = client.get("/login?lang=en").get_data(as_text=True)
    assert '<html lang="en">' in en and "Username" in en and "用户名" not in en
