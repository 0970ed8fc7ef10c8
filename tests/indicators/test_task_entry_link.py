"""An accountability task in the inbox opens its register entry (问责台账) page: /tasks/<guid>
redirects there over HTTP; other tasks still open the task page; the entry page keeps its own
jurisdiction check for anyone else who has the link."""
from __future__ import annotations

import re

from sqlalchemy import func, select

from engine.models import WorkItem
from grid.cases.accountability_models import AccountabilityEntry
from grid.cases.scenario import Runner
from grid.org.models import OrgUnit, Staff, StaffRole
from tests.web_helpers import login, make_app


def test_an_accountability_task_links_to_its_entry(svc, tmp_path):
    doc = {"start": "2026-05-11T10:00:00+08:00", "steps": [
        {"report": {"as": "jiangranran", "data": {"category": "neighbour", "description": "楼道堆物引发邻里争执",
                                                  "location": {"text": "檀溪社区"}, "settled_on_spot": False}}},
        {"advance": {"to": "2026-05-18T10:01:00+08:00"}},  # the community is late: an entry, at its review
        {"expect_entries": {"count": 1, "entries": [{"state": "review"}]}}]}
    result = Runner(svc, doc).run()
    assert result.passed, str(result)
    with svc.db.read() as s:
        entry = s.get(AccountabilityEntry, s.scalar(select(func.max(AccountabilityEntry.id))))
        review = s.scalar(select(WorkItem.task_guid).where(WorkItem.instance_id == entry.instance_id,
                                                           WorkItem.state == "open"))
        case_task = s.scalar(select(WorkItem.task_guid).where(WorkItem.instance_id != entry.instance_id,
                                                              WorkItem.state == "open").limit(1))
    assert review and case_task
    app = make_app(svc, tmp_path)
    street = login(app, "sup.420602003000")  # reviews the community's entry
    inbox = street.get("/").get_data(as_text=True)
    assert f"/tasks/{review}" in inbox, "the review is in the street supervisor's inbox"
    r = street.get(f"/tasks/{review}")
    assert r.status_code == 302
    assert r.headers["Location"].endswith(f"/accountability/{entry.id}")
    page = street.get(r.headers["Location"])
    assert page.status_code == 200
    assert re.search(rf'action="/accountability/{entry.id}/tasks/{review}"', page.get_data(as_text=True))
    # a case task is still its own page
    assert login(app, "qiuyun").get(f"/tasks/{case_task}").status_code == 200
    # a supervisor of another street, who has the link, gets no further than a 404
    with svc.db.read() as s:
        other = s.scalar(select(Staff.username).join(StaffRole, StaffRole.staff_id == Staff.id)
                         .join(OrgUnit, OrgUnit.code == StaffRole.unit_code)
                         .where(StaffRole.role == "supervisor", OrgUnit.level == "township",
                                OrgUnit.code != "420602003000").limit(1))
    assert other, "the small demo city has a second street"
    assert login(app, other).get(f"/tasks/{review}", follow_redirects=True).status_code == 404
