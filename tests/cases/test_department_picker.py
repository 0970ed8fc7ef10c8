"""部门协同 picker (issue 12, scope 2), over HTTP on SQLite and PostgreSQL: the level's dispatcher
picks departments from the staffed ones of that level (not typed codes); the server checks each
picked code again (another level's, unknown, unstaffed, twice: 422, nothing changed), and a good
pick completes the dispatch task with the transfer, one department task each."""
from __future__ import annotations

import re

import pytest

from grid.cases import service as cases
from grid.org import service as org
from tests.web_helpers import csrf, dispatch, fingerprint, login, open_items, report_case, staff_id

STREET, DISPATCHER = "420602003000", "disp1.420602003000"
CHENGGUAN, POLICE = "4206020030009901", "4206020030009903"
COUNTY_DEPT = "4206020000009901"


@pytest.fixture
def at_street(svc):
    """A case the community could not resolve: the street's dispatch task is open."""
    c = report_case(svc)
    dispatch(svc, c.id)
    for w in open_items(svc, c.id, "mediate"):
        cases.complete_task(svc, w.user_id, w.task_guid, {"outcome": "cannot_resolve", "notes": "无法化解"})
    assert open_items(svc, c.id, "dispatch")[0].unit_id == STREET
    return c


def _offered(html: str) -> list[str]:
    return re.findall(r'name="departments\.\d+\.unit" value="(\d+)"', html)


def _index(html: str, code: str) -> int:
    return int(re.search(rf'name="departments\.(\d+)\.unit" value="{code}"', html).group(1))


def test_the_picker_offers_the_levels_staffed_departments_only(svc, app, at_street):
    c = at_street
    client = login(app, DISPATCHER)
    assert f"/cases/{c.id}/departments" in client.get(f"/cases/{c.id}").get_data(as_text=True)
    task = open_items(svc, c.id, "dispatch")[0]
    assert f"/cases/{c.id}/departments" in client.get(f"/tasks/{task.task_guid}").get_data(as_text=True), \
        "the dispatch task page leads to the picker"
    r = client.get(f"/cases/{c.id}/departments")
    assert r.status_code == 200
    html = r.get_data(as_text=True)
    with svc.db.read() as s:
        from grid.cases import departments

        expected = [code for code, _ in departments.choices(s, STREET)]
        names = {u.code: u.name for u in departments.departments_of(s, STREET)}
    assert CHENGGUAN in expected and POLICE in expected
    assert _offered(html) == expected
    assert all(names[code] in html for code in expected)
    assert COUNTY_DEPT not in html, "a department of another level is not offered"
    # only the one who may complete the dispatch task gets the picker
    assert login(app, "qiuyun").get(f"/cases/{c.id}/departments").status_code == 403
    assert f"/cases/{c.id}/departments" not in login(app, "qiuyun").get(f"/cases/{c.id}").get_data(as_text=True)
    assert login(app, "disp1.420606000000").get(f"/cases/{c.id}/departments").status_code == 404


def test_an_unstaffed_department_is_not_offered_and_refused_if_posted(svc, app, at_street):
    c = at_street
    with svc.db.write() as s:  # a new department nobody staffs yet
        org.add_unit(s, "4206020030009977", "檀溪街道测试部门", "department", "部门", parent_code=STREET)
    client = login(app, DISPATCHER)
    html = client.get(f"/cases/{c.id}/departments").get_data(as_text=True)
    assert "4206020030009977" not in _offered(html)
    token, guid = csrf(client, f"/cases/{c.id}/departments"), open_items(svc, c.id, "dispatch")[0].task_guid
    before = fingerprint(svc, c.id)
    r = client.post(f"/cases/{c.id}/departments", data={"csrf_token": token, "task": guid,
                                                        "departments.0.unit": "4206020030009977",
                                                        "departments.0.part": "核查"})
    assert r.status_code == 422
    assert re.search(r'id="f-departments-0-unit-err"', r.get_data(as_text=True))
    assert fingerprint(svc, c.id) == before


@pytest.mark.parametrize("code", [COUNTY_DEPT, "9999999999999999", STREET, ""])
def test_a_department_not_offered_is_refused_and_nothing_changes(svc, app, at_street, code):
    c = at_street
    client = login(app, DISPATCHER)
    html = client.get(f"/cases/{c.id}/departments").get_data(as_text=True)
    token, guid = csrf(client, f"/cases/{c.id}/departments"), open_items(svc, c.id, "dispatch")[0].task_guid
    i = _index(html, CHENGGUAN)
    before = fingerprint(svc, c.id)
    # a hand-made post: the tick box of an offered department carries another code
    r = client.post(f"/cases/{c.id}/departments", data={"csrf_token": token, "task": guid,
                                                        f"departments.{i}.unit": code,
                                                        f"departments.{i}.part": "核查违建情况"})
    assert r.status_code == 422, code
    page = r.get_data(as_text=True)
    assert 'class="error-summary"' in page
    assert re.search(rf'id="f-departments-{i}-unit-err"', page), "the error is shown at the department"
    assert fingerprint(svc, c.id) == before
    assert [w.task_spec for w in open_items(svc, c.id)] == ["dispatch"]


def test_the_same_department_twice_and_a_missing_part_are_refused(svc, app, at_street):
    c = at_street
    client = login(app, DISPATCHER)
    html = client.get(f"/cases/{c.id}/departments").get_data(as_text=True)
    token, guid = csrf(client, f"/cases/{c.id}/departments"), open_items(svc, c.id, "dispatch")[0].task_guid
    i, j = _index(html, CHENGGUAN), _index(html, POLICE)
    before = fingerprint(svc, c.id)
    twice = client.post(f"/cases/{c.id}/departments", data={
        "csrf_token": token, "task": guid, f"departments.{i}.unit": CHENGGUAN, f"departments.{i}.part": "核查违建",
        f"departments.{j}.unit": CHENGGUAN, f"departments.{j}.part": "再查一次"})
    assert twice.status_code == 422
    nothing = client.post(f"/cases/{c.id}/departments", data={"csrf_token": token, "task": guid})
    assert nothing.status_code == 422
    no_part = client.post(f"/cases/{c.id}/departments", data={"csrf_token": token, "task": guid,
                                                              f"departments.{j}.unit": POLICE})
    assert no_part.status_code == 422
    assert re.search(rf'id="f-departments-{j}-part-err"', no_part.get_data(as_text=True))
    assert f'value="{POLICE}" checked' in no_part.get_data(as_text=True), "the pick is kept"
    too_long = client.post(f"/cases/{c.id}/departments", data={"csrf_token": token, "task": guid,
                                                               f"departments.{j}.unit": POLICE,
                                                               f"departments.{j}.part": "调查", f"departments.{j}.days": "99"})
    assert too_long.status_code == 422
    assert fingerprint(svc, c.id) == before
    assert client.post(f"/cases/{c.id}/departments", data={
        f"departments.{j}.unit": POLICE, f"departments.{j}.part": "调查", "task": guid}).status_code == 400  # no CSRF


def test_picked_departments_get_their_tasks(svc, app, at_street):
    c = at_street
    client = login(app, DISPATCHER)
    html = client.get(f"/cases/{c.id}/departments").get_data(as_text=True)
    token, guid = csrf(client, f"/cases/{c.id}/departments"), open_items(svc, c.id, "dispatch")[0].task_guid
    i, j = _index(html, CHENGGUAN), _index(html, POLICE)
    r = client.post(f"/cases/{c.id}/departments", data={
        "csrf_token": token, "task": guid, f"departments.{i}.unit": CHENGGUAN, f"departments.{i}.part": "核查违建",
        f"departments.{j}.unit": POLICE, f"departments.{j}.part": "调查威胁", f"departments.{j}.days": "2",
        "dispatch_note": "请两个部门配合"})
    assert r.status_code == 302, r.get_data(as_text=True)[-2000:]
    assert r.headers["Location"].endswith(f"/cases/{c.id}")
    items = open_items(svc, c.id)
    assert sorted(w.unit_id for w in items if w.task_spec == "department_handle") == [CHENGGUAN, POLICE]
    assert not [w for w in items if w.task_spec == "dispatch"]
    handler = staff_id(svc, "dept1.4206020030009901")
    assert [row.case_id for row in cases.inbox(svc, handler)["items"]] == [c.id]
    # the dispatch task is done: the picker is gone
    assert client.get(f"/cases/{c.id}/departments").status_code == 403


def test_the_dispatch_form_itself_offers_the_departments_as_a_choice(svc, app, at_street):
    """The dispatch task's own form: each department row picks from the level's staffed
    departments (no typed codes); another level's department posted there is refused by the
    server and nothing changes; a pick from the list sends the case to that department."""
    c = at_street
    client = login(app, DISPATCHER)
    guid = open_items(svc, c.id, "dispatch")[0].task_guid
    html = client.get(f"/tasks/{guid}").get_data(as_text=True)
    select = re.search(r'<select id="f-departments-0-unit" name="departments\.0\.unit"[^>]*>(.*?)</select>', html, re.S)
    assert select, "the department cell is a select"
    with svc.db.read() as s:
        from grid.cases import departments

        expected = [code for code, _ in departments.choices(s, STREET)]
    assert re.findall(r'<option value="(\d+)"', select.group(1)) == expected
    assert COUNTY_DEPT not in select.group(1)
    token = csrf(client, f"/tasks/{guid}")
    lock = re.search(r'name="lock_version" value="(\d+)"', html).group(1)
    before = fingerprint(svc, c.id)
    bad = client.post(f"/tasks/{guid}", data={"csrf_token": token, "lock_version": lock, "action": "transfer",
                                              "departments.0.unit": COUNTY_DEPT, "departments.0.part": "核查违建"})
    assert bad.status_code == 422
    assert fingerprint(svc, c.id) == before
    ok = client.post(f"/tasks/{guid}", data={"csrf_token": token, "lock_version": lock, "action": "transfer",
                                             "departments.0.unit": CHENGGUAN, "departments.0.part": "核查违建"})
    assert ok.status_code == 302, ok.get_data(as_text=True)[-2000:]
    assert [w.unit_id for w in open_items(svc, c.id) if w.task_spec != "dispatch"] == [CHENGGUAN]
    # the case's timeline names the department, not its code
    page = client.get(f"/cases/{c.id}").get_data(as_text=True)
    timeline = page[page.index('class="timeline'):] if 'class="timeline' in page else page
    with svc.db.read() as s:
        from grid.org.models import OrgUnit

        name = s.get(OrgUnit, CHENGGUAN).name
    assert f"{name} 核查违建" in timeline and f"{CHENGGUAN} 核查违建" not in timeline
