"""部门协同 picker in the browser (issue 12, scope 2): the street's dispatcher opens the picker from
the case page, ticks departments (each one's part and limit appear once ticked), is refused with
the error at the department when the part is missing, and sends; on a phone (390 px, touch) and a
desktop (1366 px). Screenshots: test-artifacts/screenshots/12-departments-*.png."""
from __future__ import annotations

import pytest

from grid.cases import service as cases
from tests.browser.test_staff_pages import DESKTOP, PHONE_390, check_phone_page, open_page
from tests.web_helpers import dispatch, open_items, report_case

pytestmark = pytest.mark.browser

DISPATCHER = "disp1.420602003000"
CHENGGUAN, POLICE = "4206020030009901", "4206020030009903"


def at_street(svc, description: str):
    c = report_case(svc, {"description": description})
    dispatch(svc, c.id)
    for w in open_items(svc, c.id, "mediate"):
        cases.complete_task(svc, w.user_id, w.task_guid, {"outcome": "cannot_resolve", "notes": "社区无法化解"})
    return c


@pytest.mark.parametrize("viewport, phone, tag", [(PHONE_390, True, "390px"), (DESKTOP, False, "1366px")])
def test_the_dispatcher_picks_departments(live_app, browser, shots, viewport, phone, tag):
    base, svc = live_app
    c = at_street(svc, f"小区违建加层引发邻里冲突，需城管与派出所协同（{tag}）")
    ctx, p, errors = open_page(browser, base, DISPATCHER, viewport, phone)
    p.goto(f"{base}/cases/{c.id}")
    link = p.locator(f'a[href$="/cases/{c.id}/departments"]')
    assert link.is_visible()
    link.click()
    p.wait_for_load_state("load")
    picker = p.locator(".dept-picker")
    assert picker.is_visible()
    cg, police = p.locator(f'[data-dept="{CHENGGUAN}"]'), p.locator(f'[data-dept="{POLICE}"]')
    assert cg.locator("[data-dept-detail]").is_hidden(), "a department's fields show once it is ticked"
    shots(p, f"12-departments-picker-{tag}")
    cg.locator("label.choice").click()
    assert cg.locator("textarea").is_visible()
    cg.locator("textarea").fill("核查并拆除违建加层部分")
    police.locator("label.choice").click()  # ticked, but its part left empty: the server refuses
    p.locator(".dept-form button[type=submit]").click()
    p.wait_for_load_state("load")
    assert p.locator(".error-summary").is_visible()
    err = police.locator(".error-text")
    assert err.count() >= 1 and err.first.is_visible(), "the error is shown at the department"
    assert cg.locator("textarea").input_value() == "核查并拆除违建加层部分", "what was typed stays"
    assert police.locator("input[type=checkbox]").is_checked()
    assert [w.task_spec for w in open_items(svc, c.id)] == ["dispatch"], "nothing was sent"
    shots(p, f"12-departments-refused-{tag}")
    if phone:
        check_phone_page(p, viewport["width"])
    police.locator("textarea").fill("调查当事人威胁邻居的情况")
    police.locator("input[type=number]").fill("2")
    p.locator(".dept-form button[type=submit]").click()
    p.wait_for_load_state("load")
    assert p.url.endswith(f"/cases/{c.id}")
    units = sorted(w.unit_id for w in open_items(svc, c.id) if w.task_spec == "department_handle")
    assert units == [CHENGGUAN, POLICE]
    shots(p, f"12-departments-sent-{tag}")
    # the refused submit's 422 is logged by the browser as a failed load; nothing else may fail
    assert [e for e in errors if "status of 422" not in e] == [], errors
    ctx.close()


@pytest.mark.parametrize("viewport, phone, tag", [(PHONE_390, True, "390px"), (DESKTOP, False, "1366px")])
def test_the_dispatch_form_picks_a_department_from_a_list(live_app, browser, shots, viewport, phone, tag):
    """On the dispatch task itself: 转部门协同办理 shows the department rows, each a list of the
    level's departments, and sending one opens that department's task."""
    base, svc = live_app
    c = at_street(svc, f"占道经营引发纠纷，需城管协同（{tag}）")
    guid = open_items(svc, c.id, "dispatch")[0].task_guid
    ctx, p, errors = open_page(browser, base, DISPATCHER, viewport, phone)
    p.goto(f"{base}/tasks/{guid}")
    p.locator('input[name="action"][value="transfer"]').check(force=True)
    cell = p.locator('select[name="departments.0.unit"]')
    assert cell.is_visible()
    cell.select_option(CHENGGUAN)
    p.locator('[name="departments.0.part"]').fill("清理占道经营摊点")
    shots(p, f"12-dispatch-form-departments-{tag}")
    if phone:
        check_phone_page(p, viewport["width"])
    p.locator("form[data-once] button[type=submit]").click()
    p.wait_for_load_state("load")
    assert [w.unit_id for w in open_items(svc, c.id) if w.task_spec != "dispatch"] == [CHENGGUAN]
    assert not errors, errors
    ctx.close()
