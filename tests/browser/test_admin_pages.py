"""Admin pages as an administrator uses them (issue 14): the landing page, the activation
confirmation for a bundle (dispute_case + handle_level deployed together) while a pilot pin
exists, and the dry-run page in zh_CN with no Latin-script words but codes and file names.
Screenshots go to test-artifacts/screenshots/."""
from __future__ import annotations

import re

import pytest

from engine import versions as v
from engine.migration import Migrator, Selection
from grid.cases.service import unit_scope
from tests.browser.test_staff_pages import DESKTOP, PHONE_390, check_phone_page, open_page
from tests.versions_helpers import deploy_v2
from tests.web_helpers import report_case

pytestmark = pytest.mark.browser

COUNTY_XC = "420602000000"  # 襄城区
LATIN = re.compile(r"(?<![\w.])[A-Za-z][A-Za-z_]+(?![\w])")
FILE = re.compile(r"\S+\.(?:bpmn|dmn|json|zip)\b")
ALLOWED = {"Gridflow", "BPMN", "DMN", "JSON", "XML", "ID"}  # "环节 ID" as Chinese UIs write it
VISIBLE_TEXT_JS = """() => {
  const out = [];
  const walk = (n) => {
    if (n.nodeType === Node.TEXT_NODE) { out.push(n.textContent); return; }
    if (n.nodeType !== Node.ELEMENT_NODE) return;
    const tag = n.tagName.toLowerCase();
    if (['script', 'style', 'code', 'noscript', 'template'].includes(tag)) return;
    const st = getComputedStyle(n);
    if (st.display === 'none' || st.visibility === 'hidden') return;
    for (const a of ['title', 'aria-label', 'placeholder', 'alt']) if (n.getAttribute(a)) out.push(n.getAttribute(a));
    if (tag === 'option' || tag === 'select') { out.push(n.innerText); return; }
    n.childNodes.forEach(walk);
  };
  walk(document.body);
  return out.join(' ');
}"""


def latin_words(page) -> list[str]:
    text = FILE.sub(" ", page.evaluate(VISIBLE_TEXT_JS))
    return sorted({w for w in LATIN.findall(text) if w not in ALLOWED})


@pytest.fixture(scope="module")
def v2(live_app):
    _base, svc = live_app
    for i in range(2):  # open cases on v1, for the dry run
        report_case(svc, {"description": f"迁移演练第{i + 1}件"})
    report, _checks = deploy_v2(svc, actor="admin")
    scope, _cond, label = unit_scope(svc, COUNTY_XC)
    v.pin_bundle(svc.db, "dispute_case", scope, 2, actor="admin", label=label)  # 襄城区 pilots v2
    return report


def test_activation_confirmation_for_a_bundle_with_a_pilot(live_app, v2, browser, shots):
    base, svc = live_app
    assert {(x.process_id, x.number) for x in v2.created} == {("dispute_case", 2), ("handle_level", 2)}
    assert [m["process_id"] for m in v.bundle_of(svc.db, "dispute_case", 2)] == ["dispute_case", "handle_level"]
    for viewport, phone, tag in ((PHONE_390, True, "390px"), (DESKTOP, False, "1366px")):
        ctx, p, errors = open_page(browser, base, "admin", viewport, phone)
        assert p.url.rstrip("/").endswith("/admin")  # an administrator lands on the admin page
        assert p.locator("#h-incidents").count() == 1 and p.locator("#h-scheduler").count() == 1
        shots(p, f"14-admin-landing-{tag}")
        p.goto(base + "/admin/versions")
        row = p.locator('section[aria-labelledby="h-dispute_case"] tr[data-version="2"]')
        row.locator('a.btn[href$="/activate"]').click()
        p.wait_for_load_state("load")
        assert "/admin/versions/dispute_case/2/activate" in p.url
        bundle = p.locator("ul.bundle > li")
        assert bundle.count() == 2
        text = p.locator(".confirm").inner_text()
        assert "矛盾纠纷" in bundle.nth(0).inner_text() and "第 2 版" in bundle.nth(0).inner_text()
        assert "第 1 版" in text and "襄城区" in p.locator(".warning-box").inner_text()
        assert "dispute_case" not in text and "handle_level" not in text
        shots(p, f"14-admin-activate-confirm-{tag}")
        if phone:
            check_phone_page(p, viewport["width"])
            assert not errors, errors
            ctx.close()
            continue
        p.locator(".confirm button[type=submit]").click()
        p.wait_for_load_state("load")
        assert p.locator(".flash .success").count() == 1
        active = {r["process_id"]: r["number"] for r in v.list_versions(svc.db) if r["active"]}
        assert active["dispute_case"] == 2 and active["handle_level"] == 2  # activated together
        shots(p, f"14-admin-activated-{tag}")
        assert not errors, errors
        ctx.close()


def test_dry_run_page_speaks_chinese(live_app, v2, browser, shots):
    base, svc = live_app
    run_id, plans = Migrator(svc.runtime).dry_run(Selection("dispute_case"), 2, actor="admin")
    assert plans
    for viewport, phone, tag in ((DESKTOP, False, "1366px"), (PHONE_390, True, "390px")):
        ctx, p, errors = open_page(browser, base, "admin", viewport, phone)
        p.goto(f"{base}/admin/migrations/{run_id}")
        assert p.locator("table.verdicts tbody tr").count() >= 2
        assert latin_words(p) == [], latin_words(p)
        if phone:  # one card per case on a phone: nothing runs off the right edge
            assert p.evaluate("document.documentElement.scrollWidth <= window.innerWidth + 1")
            assert p.locator("table.verdicts thead").is_hidden()
        shots(p, f"14-admin-dry-run-zh-{tag}")
        p.goto(f"{base}/admin/migrations")
        assert latin_words(p) == [], latin_words(p)
        shots(p, f"14-admin-migration-form-{tag}")
        assert not errors, errors
        ctx.close()
