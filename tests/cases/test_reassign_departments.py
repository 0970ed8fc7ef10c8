"""改派 and 部门协同 through the service and the web pages, on SQLite and PostgreSQL: who may move a
task and to whom (both ends checked, nothing changed on a refusal), the history and the new
holder's notification, the old holder's lost access; a department's staff see their task in the
inbox and the case, answer it, and an overdue department is counted against its own unit."""
from __future__ import annotations

from datetime import datetime

import pytest
from sqlalchemy import select

from engine import clock
from engine.errors import InvalidData, NotFound
from engine.models import InstanceEvent
from grid.cases import notifications, rollup
from grid.cases import reassign as reassign_service
from grid.cases import service as cases
from grid.cases.models import CaseRecord, IndicatorRollup
from grid.errors import Forbidden
from tests.web_helpers import csrf, dispatch, fingerprint, login, open_items, report_case, staff_id

MED1, MED2 = "med1.420602003005", "med2.420602003005"
POLICE, CHENGGUAN = "4206020030009903", "4206020030009901"


@pytest.fixture
def mediating(svc):
    """A case at 檀溪社区 with both community mediators mediating."""
    c = report_case(svc)
    dispatch(svc, c.id)
    return c


def _mediate_of(svc, c, username):
    return next(w for w in open_items(svc, c.id, "mediate") if w.user_id == staff_id(svc, username))


def test_reassign_moves_the_task_keeps_history_and_tells_the_new_holder(svc, mediating):
    c = mediating
    item = _mediate_of(svc, c, MED1)
    town_med = staff_id(svc, "med1.420602003000")
    before = fingerprint(svc, c.id)
    with pytest.raises(Forbidden):  # a mediator does not dispatch
        reassign_service.reassign(svc, staff_id(svc, MED2), c.id, item.task_guid, staff_id(svc, MED2), "我来接手")
    with pytest.raises(InvalidData) as e:  # not a mediator of the community
        reassign_service.reassign(svc, staff_id(svc, "qiuyun"), c.id, item.task_guid, town_med, "改派给街道")
    assert [x["path"] for x in e.value.errors] == ["to"]
    with pytest.raises(InvalidData):  # already the other mediator's task too: still a person of the unit, but no reason
        reassign_service.reassign(svc, staff_id(svc, "qiuyun"), c.id, item.task_guid, staff_id(svc, MED2), " ")
    with pytest.raises(NotFound):  # outside the jurisdiction (another county's dispatcher)
        reassign_service.reassign(svc, staff_id(svc, "disp1.420606000000"), c.id, item.task_guid,
                                  staff_id(svc, MED2), "改派")
    assert fingerprint(svc, c.id) == before, "a refusal changes nothing"

    # 邱云 moves med1's task to a mediator newly taking the role at the community
    from grid.org import service as org

    with svc.db.write() as s:
        new = org.create_staff(s, "med3.420602003005", "新调解员", password_hash="!")
        org.assign_role(s, new.id, "420602003005", "mediator")
        new_id = new.id
    reassign_service.reassign(svc, staff_id(svc, "qiuyun"), c.id, item.task_guid, new_id, "原调解员休假")
    moved = next(w for w in open_items(svc, c.id, "mediate") if w.task_guid == item.task_guid)
    assert moved.user_id == new_id and moved.due_at == item.due_at and moved.warn_at == item.warn_at
    with svc.db.read() as s:
        ev = s.scalar(select(InstanceEvent).where(InstanceEvent.instance_id == c.instance_id,
                                                  InstanceEvent.kind == "reassigned"))
        rec = s.scalar(select(CaseRecord).where(CaseRecord.case_id == c.id, CaseRecord.kind == "reassigned"))
    assert ev.actor == staff_id(svc, "qiuyun")
    assert (ev.data["from_user"], ev.data["to_user"], ev.data["reason"]) == (staff_id(svc, MED1), new_id, "原调解员休假")
    assert rec.unit_code == "420602003005" and rec.data["to_user"] == new_id
    # the new holder is told (and has the task in the inbox); the old one has lost it
    page = notifications.page(svc, new_id)
    assert [i.kind for i in page["items"]] == ["transferred"]
    assert [r.task_guid for r in cases.inbox(svc, new_id)["items"]] == [item.task_guid]
    assert item.task_guid not in [r.task_guid for r in cases.inbox(svc, staff_id(svc, MED1))["items"]]
    with pytest.raises(Forbidden):
        cases.complete_task(svc, staff_id(svc, MED1), item.task_guid, {"outcome": "resolved", "notes": "已化解"})
    cases.complete_task(svc, new_id, item.task_guid, {"outcome": "resolved", "notes": "已化解"})


def test_the_reassign_page_checks_both_ends(svc, app, mediating):
    c = mediating
    item = _mediate_of(svc, c, MED1)
    head = login(app, "qiuyun")
    html = head.get(f"/cases/{c.id}").get_data(as_text=True)
    assert f"/cases/{c.id}/reassign" in html, "the case page links the dispatcher to the page"
    r = head.get(f"/cases/{c.id}/reassign")
    assert r.status_code == 200 and item.task_guid in r.get_data(as_text=True)
    assert f"/cases/{c.id}/reassign" not in login(app, MED1).get(f"/cases/{c.id}").get_data(as_text=True)
    assert login(app, MED1).get(f"/cases/{c.id}/reassign").status_code == 403
    assert login(app, "disp1.420606000000").get(f"/cases/{c.id}/reassign").status_code == 404
    token = csrf(head, f"/cases/{c.id}/reassign")
    before = fingerprint(svc, c.id)
    bad = head.post(f"/cases/{c.id}/reassign", data={"csrf_token": token, "task": item.task_guid,
                                                     "to": staff_id(svc, "med1.420602003000"), "reason": "改派"})
    assert bad.status_code == 400
    assert head.post(f"/cases/{c.id}/reassign", data={"task": item.task_guid, "to": staff_id(svc, MED2),
                                                      "reason": "改派"}).status_code == 400  # no CSRF token
    assert head.post(f"/cases/{c.id}/reassign", data={"csrf_token": token, "task": "nope", "to": staff_id(svc, MED2),
                                                      "reason": "改派"}).status_code == 404
    assert fingerprint(svc, c.id) == before
    ok = head.post(f"/cases/{c.id}/reassign", data={"csrf_token": token, "task": item.task_guid,
                                                    "to": staff_id(svc, MED2), "reason": "原调解员生病"})
    assert ok.status_code == 302
    assert _mediate_of(svc, c, MED2).task_guid in {w.task_guid for w in open_items(svc, c.id, "mediate")}
    assert all(w.user_id == staff_id(svc, MED2) for w in open_items(svc, c.id, "mediate"))


def test_departments_see_their_task_answer_it_and_an_overdue_one_counts_against_it(svc, app):
    fake = clock.install_fake(datetime(2026, 3, 2, 10, 0, tzinfo=clock.SHANGHAI))
    try:
        c = report_case(svc)
        dispatch(svc, c.id)
        for w in open_items(svc, c.id, "mediate"):
            cases.complete_task(svc, w.user_id, w.task_guid, {"outcome": "cannot_resolve", "notes": "无法化解"})
        street = open_items(svc, c.id, "dispatch")[0]
        disp = staff_id(svc, "disp1.420602003000")
        with pytest.raises(InvalidData):  # a county's department is not the street's
            cases.complete_task(svc, disp, street.task_guid, {"action": "transfer", "departments": [
                {"unit": "4206020000009901", "part": "核查违建"}]})
        cases.complete_task(svc, disp, street.task_guid, {"action": "transfer", "departments": [
            {"unit": CHENGGUAN, "part": "核查违建"}, {"unit": POLICE, "part": "调查威胁", "days": 2}]})
        handler = staff_id(svc, "dept1.4206020030009901")
        inbox = cases.inbox(svc, handler)["items"]
        assert [r.task for r in inbox] == ["department_handle"] and inbox[0].case_id == c.id
        assert cases.get_case(svc, handler, c.id).id == c.id, "a department's staff see the case sent to them"
        client = login(app, "dept1.4206020030009901")
        assert client.get(f"/tasks/{inbox[0].task_guid}").status_code == 200
        assert client.get(f"/cases/{c.id}").status_code == 200
        cases.complete_task(svc, handler, inbox[0].task_guid, {"status": "done", "answer": "已责令拆除"})
        assert cases.inbox(svc, handler)["items"] == []
        with pytest.raises(NotFound):  # its part done, the case is no longer theirs to see
            cases.get_case(svc, handler, c.id)
        fake.set(datetime(2026, 3, 4, 10, 1, tzinfo=clock.SHANGHAI))  # the 派出所's 2 working days are over
        svc.runtime.sweep()
        assert [w.task_spec for w in open_items(svc, c.id)] == ["dispatch"], "the street's work resumes"
        with svc.db.read() as s:
            kinds = {(r.kind, r.unit_code) for r in s.scalars(select(CaseRecord).where(CaseRecord.case_id == c.id))}
            assert {("warning", POLICE), ("accountability", POLICE), ("department_answered", CHENGGUAN)} <= kinds
            measures = {(r.unit_code, r.measure): r.value for r in s.scalars(select(IndicatorRollup))}
            assert measures[(POLICE, "accountability")] == 1 and measures[(POLICE, "warning")] == 1
            assert measures[(POLICE, "handled")] == 1 and measures[(CHENGGUAN, "handled")] == 1
            assert rollup.rebuild(s, svc.runtime.calendar, check=True) == [], "a rebuild agrees"
        assert "overdue" in [i.kind for i in notifications.page(svc, staff_id(svc, "dept2.4206020030009903"))["items"]]
    finally:
        clock.set_source(None)
