"""Every page as every role, in zh_CN: no page fails, and no visible text is an untranslated
catalog entry or a raw identifier (`dispute_case`, `can_move`, `grid_worker`, English words).

What counts as visible: the text between tags and the attributes people read (title,
aria-label, placeholder, alt), with <script>, <style> and <code> taken out (codes and file names
are shown in <code> on purpose). Allowed Latin words: the product and format names below.

GRIDFLOW_TEST_TRANSLATIONS=<dir> renders with another catalog directory (to check pending
translations, e.g. a copy of web/translations with /tmp/i18n merged, before they are merged).
"""
from __future__ import annotations

import html
import os
import re

import pytest
from sqlalchemy import select

from engine.migration import Migrator, Selection
from grid.cases import service as cases
from grid.registry.models import Household, Resident
from tests.versions_helpers import deploy_v2
from tests.web_helpers import dispatch, login, open_items, report_case, rule_url

ROLES = ["jiangranran", "qiuyun", "med1.420602003005", "disp1.420602003000", "sup.420602003000",
         "sup.420600000000", "admin"]
PAGES = {"auth", "inbox", "tasks", "report", "cases", "archive", "settings", "admin", "registry"}
SKIP = {"static", "attachments.show", "diagram.show", "admin.compare_json", "registry.import_status",
        "registry.export", "registry.api_residents", "auth.login"}
ALLOWED = {"Gridflow", "BPMN", "DMN", "JSON", "XML", "Schema", "SpiffWorkflow", "KB", "MB", "GB", "io",
           "CSV", "XLSX", "zip", "IP", "ID",  # formats, "IP 地址", "环节 ID", as Chinese UIs write them
           "English",  # a language's name in its own language (the language switch)
           "Werkzeug"}  # the test client's user agent, listed on the settings page's sessions
LATIN = re.compile(r"(?<![\w.])[A-Za-z][A-Za-z_]+(?![\w])")  # not inside MD2026…, a file name or a number
FILE = re.compile(r"\S+\.(?:bpmn|dmn|json|zip|png|jpe?g|pdf|heic|csv|xlsx)\b")


@pytest.fixture
def app_config() -> dict:
    extra = os.environ.get("GRIDFLOW_TEST_TRANSLATIONS")  # pending translations, checked before a merge
    return {"BABEL_TRANSLATION_DIRECTORIES": extra} if extra else {}


@pytest.fixture
def world(svc):
    """An escalated case (street level), an open one at the community, a v2 with a dry run."""
    up = report_case(svc, {"description": "社区调解未果，已上报街道"})
    dispatch(svc, up.id)
    for item in open_items(svc, up.id, "mediate"):
        cases.complete_task(svc, item.user_id, item.task_guid, {"outcome": "cannot_resolve", "notes": "协调无果"})
    here = report_case(svc, {"description": "刚上报的纠纷"})
    deploy_v2(svc)
    run_id, _plans = Migrator(svc.runtime).dry_run(Selection("dispute_case"), 2, actor="admin")
    with svc.db.read() as s:
        household = s.scalar(select(Household.id).limit(1))
        resident = s.scalar(select(Resident.id).limit(1))
        c = s.get(type(up), up.id)
        instance_id = c.instance_id
    return {"case_id": up.id, "other": here.id, "task_guid": open_items(svc, up.id)[0].task_guid,
            "process_id": "dispute_case", "number": 2, "run_id": run_id, "instance_id": instance_id,
            "household_id": household or 1, "resident_id": resident or 1, "code": "420602003005015"}


def visible_text(body: str) -> str:
    s = re.sub(r"<(script|style|code|pre)\b.*?</\1>", " ", body, flags=re.S | re.I)
    attrs = re.findall(r'\b(?:title|aria-label|placeholder|alt)="([^"]*)"', s)
    s = re.sub(r"<!--.*?-->", " ", s, flags=re.S)
    s = re.sub(r"<[^>]+>", " ", s)
    return html.unescape(s + " " + " ".join(attrs))


def raw_words(text: str, username: str = "") -> list[str]:
    """Latin-script words in visible text, but allowed names and the signed-in person's own
    username (the settings page shows it)."""
    text = FILE.sub(" ", text)
    return sorted({w for w in LATIN.findall(text) if w not in ALLOWED and w not in username})


def test_raw_words_finds_identifiers_and_english():
    assert raw_words(visible_text("<p>可以迁移 <code>mediate</code> 调解.bpmn</p>")) == []
    assert raw_words(visible_text('<p>dispute_case v2</p><span title="Late cases">x</span>')) == [
        "Late", "cases", "dispute_case"]


@pytest.mark.parametrize("username", ROLES)
def test_every_page_in_chinese(app, svc, world, username):
    client = login(app, username)
    found: dict[str, list[str]] = {}
    for rule in app.url_map.iter_rules():
        if "GET" not in rule.methods or rule.endpoint in SKIP or rule.endpoint.split(".")[0] not in PAGES:
            continue
        url = rule_url(rule, world)
        r = client.get(url)
        assert r.status_code < 500, (url, r.status_code)
        if r.status_code != 200 or r.mimetype != "text/html":
            continue
        words = raw_words(visible_text(r.get_data(as_text=True)), username)
        if words:
            found[url] = words
            if os.environ.get("GRIDFLOW_TEST_DUMP"):
                with open(os.environ["GRIDFLOW_TEST_DUMP"], "a", encoding="utf-8") as f:
                    f.write(f"== {username} {url}\n{visible_text(r.get_data(as_text=True))}\n")
    assert not found, f"untranslated or raw words shown to {username}: {found}"
