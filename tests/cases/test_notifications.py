"""In-app notifications: a new task tells its assignee, a warning tells the handler and the
supervisor, a 督办 urge shows in the handler's unread count and on their task card, reading is
one's own only, and a supervised case and its tasks are marked as supervised."""
from __future__ import annotations

from datetime import timedelta

from sqlalchemy import select

from engine.models import WorkItem
from grid.cases import badges, notifications
from grid.cases import service as cases
from grid.cases.models import DisputeCase
from grid.cases.notification_models import Notification
from grid.org import service as org

REPORTER, DISPATCHER = "jiangranran", "qiuyun"
MEDIATOR, SUPERVISOR = "med1.420602003005", "sup.420602003005"


def sid(svc, username: str) -> str:
    with svc.db.read() as s:
        return org.staff_by_username(s, username).id


def open_item(svc, c: DisputeCase, task: str) -> WorkItem:
    with svc.db.read() as s:
        return s.scalar(select(WorkItem).where(WorkItem.instance_id == c.instance_id, WorkItem.state == "open",
                                               WorkItem.task_spec == task))


def report_and_dispatch(svc) -> DisputeCase:
    """A neighbour dispute reported in 檀溪社区 and dispatched to its first mediator."""
    c = cases.report(svc, sid(svc, REPORTER), {"category": "neighbour", "description": "两户因房屋漏水赔偿争执",
                                               "location": {"text": "檀溪社区7栋"}, "settled_on_spot": False})
    c = cases.get_case(svc, sid(svc, DISPATCHER), c.id)
    cases.complete_task(svc, sid(svc, DISPATCHER), open_item(svc, c, "dispatch").task_guid,
                        {"action": "dispatch", "assignees": [sid(svc, MEDIATOR)]})
    return c


def to_supervision(svc, fake_clock, c: DisputeCase, by: timedelta = timedelta(days=4)) -> None:
    """Past the warning time (3 working days): the 督办 task opens for the community's supervisor."""
    fake_clock.advance(by)
    svc.runtime.sweep()
    assert open_item(svc, c, "supervise") is not None


def kinds(svc, staff_id: str) -> list[str]:
    with svc.db.read() as s:
        return list(s.scalars(select(Notification.kind).where(Notification.staff_id == staff_id)
                              .order_by(Notification.id)))


def test_urge_reaches_the_handler_count_list_and_task_card(fake_clock, svc):
    med, sup = sid(svc, MEDIATOR), sid(svc, SUPERVISOR)
    c = report_and_dispatch(svc)
    assert kinds(svc, med) == ["new_task"]
    assert notifications.unread_count(svc, med) == 1
    mediate = open_item(svc, c, "mediate")
    assert notifications.open_urges(svc, med, [mediate.task_guid]) == {}

    to_supervision(svc, fake_clock, c)
    assert kinds(svc, med) == ["new_task", "warning"]
    # the supervisor is told once (the warning, linked to the new 督办 task), not twice
    assert kinds(svc, sup) == ["warning"]
    with svc.db.read() as s:
        sup_note = s.scalar(select(Notification).where(Notification.staff_id == sup))
        assert sup_note.task_guid == open_item(svc, c, "supervise").task_guid

    # supervised, not 正常: the case, its mediate task and the 督办 task itself
    marks = badges.supervised(svc, [c.id], [mediate.task_guid, open_item(svc, c, "supervise").task_guid])
    assert marks["cases"] == {c.id}
    assert len(marks["tasks"]) == 2

    assert cases.urge(svc, sup, c.id, "请今天处理") == "completed"
    assert kinds(svc, med) == ["new_task", "warning", "urged"]
    assert notifications.unread_count(svc, med) == 3
    assert kinds(svc, sup) == ["warning"]  # one is not told of one's own urge
    got = notifications.page(svc, med, per_page=2)
    assert [i.kind for i in got["items"]] == ["urged", "warning"] and got["has_next"] and got["unread"] == 3
    top = got["items"][0]
    assert top.args["comment"] == "请今天处理" and top.args["case_no"] == c.case_no
    assert top.task_guid == mediate.task_guid and top.task_open and top.case_visible

    urges = notifications.open_urges(svc, med, [mediate.task_guid])
    assert list(urges) == [mediate.task_guid]
    (u,) = urges[mediate.task_guid]
    assert (u.comment, u.actor) == ("请今天处理", sup) and u.actor_name

    # a second urge (the 督办 task is done, so it is recorded) shows on the card too
    assert cases.urge(svc, sup, c.id, "再次催办") == "recorded"
    assert [x.comment for x in notifications.open_urges(svc, med, [mediate.task_guid])[mediate.task_guid]] == [
        "请今天处理", "再次催办"]
    assert notifications.unread_count(svc, med) == 4, "the recorded urge is told to the handler as well"

    # reading is one's own: another person's ids change nothing
    assert notifications.mark_read(svc, sup, [top.id]) == 0
    assert notifications.unread_count(svc, med) == 4
    assert notifications.mark_read(svc, med, [top.id]) == 1
    assert notifications.unread_count(svc, med) == 3
    assert notifications.mark_read(svc, med) == 3
    assert notifications.unread_count(svc, med) == 0
    assert notifications.page(svc, med, unread_only=True)["items"] == []

    # a person outside the jurisdiction sees no urges of the task
    assert notifications.open_urges(svc, sid(svc, "sup.420606000000"), [mediate.task_guid]) == {}

    # once the mediator acts, the urge leaves the card (the task is no longer open)
    cases.complete_task(svc, med, mediate.task_guid, {"outcome": "resolved", "notes": "已调解"})
    assert notifications.open_urges(svc, med, [mediate.task_guid]) == {}


def test_overdue_tells_the_level_that_ran_late(fake_clock, svc):
    med, sup = sid(svc, MEDIATOR), sid(svc, SUPERVISOR)
    c = report_and_dispatch(svc)
    to_supervision(svc, fake_clock, c)
    fake_clock.advance(timedelta(days=4))  # past 5 working days: 问责 and escalation
    svc.runtime.sweep()
    with svc.db.read() as s:
        assert s.get(DisputeCase, c.id).current_level == "township"
    assert kinds(svc, med)[-1] == "overdue"
    assert kinds(svc, sup)[-1] == "overdue"
    assert badges.supervised(svc, [c.id])["cases"] == set()  # the 督办 was the community's


def test_web_list_badge_count_and_mark_read(fake_clock, svc, tmp_path):
    from tests.web_helpers import csrf, login, make_app

    app = make_app(svc, tmp_path)
    med = sid(svc, MEDIATOR)
    c = report_and_dispatch(svc)
    to_supervision(svc, fake_clock, c)
    cases.urge(svc, sid(svc, SUPERVISOR), c.id, "请今天处理")
    client = login(app, MEDIATOR)
    assert client.get("/notifications/unread-count").get_json() == {"unread": 3}
    page = client.get("/notifications")
    html = page.get_data(as_text=True)
    assert page.status_code == 200 and "请今天处理" in html and c.case_no in html
    assert f"/tasks/{open_item(svc, c, 'mediate').task_guid}" in html
    other = login(app, SUPERVISOR)
    with svc.db.read() as s:
        first = s.scalar(select(Notification.id).where(Notification.staff_id == med).order_by(Notification.id))
    other.post("/notifications/read", data={"csrf_token": csrf(other), "id": str(first)})
    assert client.get("/notifications/unread-count").get_json() == {"unread": 3}  # not theirs to mark
    r = client.post("/notifications/read", data={"csrf_token": csrf(client), "id": str(first)})
    assert r.status_code == 302
    assert client.get("/notifications/unread-count").get_json() == {"unread": 2}
    client.post("/notifications/read", data={"csrf_token": csrf(client), "all": "1"})
    assert client.get("/notifications/unread-count").get_json() == {"unread": 0}
    assert "请今天处理" not in client.get("/notifications?unread=1").get_data(as_text=True)
