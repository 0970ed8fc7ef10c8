"""Browser tests: Playwright's Python package driving Debian's chromium (/usr/bin/chromium), headless.

No browser is ever downloaded. Without /usr/bin/chromium the tests skip, unless
GRIDFLOW_REQUIRE_BROWSER=1 (CI), which turns the skip into a failure. The app runs in a
werkzeug server thread on 127.0.0.1 (random port) over a temporary SQLite database prepared
with grid.scenario.prepare (small demo city, ./workflows deployed).
"""
from __future__ import annotations

import os
from pathlib import Path

import pytest

from tests.server_helpers import serve_in_thread

ROOT = Path(__file__).resolve().parents[2]
CHROMIUM = os.environ.get("GRIDFLOW_CHROMIUM", "/usr/bin/chromium")
SHOTS = ROOT / "test-artifacts" / "screenshots"
ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
        "--disable-sync", "--no-first-run", "--disable-quic"]


def _require_browser() -> None:
    if not Path(CHROMIUM).exists():
        reason = f"{CHROMIUM} is missing (apt-get install -y chromium fonts-wqy-microhei)"
        if os.environ.get("GRIDFLOW_REQUIRE_BROWSER") == "1":
            pytest.fail(reason + " and GRIDFLOW_REQUIRE_BROWSER=1")
        pytest.skip(reason)


@pytest.fixture(scope="module")
def live_app(tmp_path_factory):
    """(base_url, services) of the app served from a thread."""
    from engine.db import Database
    from grid.cases.scenario import prepare
    from web import create_app

    _require_browser()
    tmp = tmp_path_factory.mktemp("live")
    db = Database(f"sqlite:///{tmp}/gridflow.sqlite")
    svc = prepare(db, ROOT / "workflows", ROOT / "forms")
    svc.settings.uploads = tmp / "uploads"
    svc.settings.secret_key = "browser-test-secret"
    extra = {"BABEL_TRANSLATION_DIRECTORIES": os.environ["GRIDFLOW_TEST_TRANSLATIONS"]} \
        if os.environ.get("GRIDFLOW_TEST_TRANSLATIONS") else {}  # pending translations, checked before a merge
    app = create_app(svc.settings, services=svc, **extra)
    try:
        with serve_in_thread(app) as port:
            yield f"http://127.0.0.1:{port}", svc
    finally:
        db.dispose()


@pytest.fixture(scope="module")
def browser():
    _require_browser()
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=ARGS)
        try:
            yield b
        finally:
            b.close()


@pytest.fixture
def shots():
    SHOTS.mkdir(parents=True, exist_ok=True)

    def save(page, name: str, full_page: bool = True) -> Path:
        path = SHOTS / f"{name}.png"
        page.screenshot(path=str(path), full_page=full_page)
        return path

    return save
