"""改派 on the case page's timeline (issue 12, scope 2): the entry says which task moved, from whom
(and which unit) to whom, and why; on SQLite and PostgreSQL, through the real pages."""
from __future__ import annotations

import re

from tests.web_helpers import csrf, dispatch, login, open_items, report_case, staff_id

MED1, MED2 = "med1.420602003005", "med2.420602003005"


def _timeline(html: str) -> str:
    start = html.index('id="h-timeline"')
    return html[start:html.index("</ol>", start)]


def test_the_timeline_says_from_whom_to_whom_a_task_was_reassigned(svc, app):
    c = report_case(svc)
    dispatch(svc, c.id)
    item = next(w for w in open_items(svc, c.id, "mediate") if w.user_id == staff_id(svc, MED1))
    head = login(app, "qiuyun")
    before = _timeline(head.get(f"/cases/{c.id}").get_data(as_text=True))
    assert "ev-reassigned" not in before
    r = head.post(f"/cases/{c.id}/reassign", data={"csrf_token": csrf(head, f"/cases/{c.id}/reassign"),
                                                   "task": item.task_guid, "to": staff_id(svc, MED2),
                                                   "reason": "原调解员休假一周"})
    assert r.status_code == 302
    html = head.get(f"/cases/{c.id}").get_data(as_text=True)
    tl = _timeline(html)
    entry = tl[tl.index('class="ev-reassigned"'):]
    entry = entry[:entry.index("</li>")]
    with svc.db.read() as s:
        from grid.org.models import OrgUnit, Staff

        med1, med2 = s.get(Staff, staff_id(svc, MED1)).name, s.get(Staff, staff_id(svc, MED2)).name
        unit = s.get(OrgUnit, "420602003005").name
        qiuyun = s.get(Staff, staff_id(svc, "qiuyun")).name
    # the headline names both people with their unit, the old holder first; the facts list
    # the task, from, to and the reason (checked by value: the words are the catalog's)
    what = re.search(r'<div class="what">(.*?)</div>', entry, re.S).group(1)
    a, b = f"{med1}（{unit}）", f"{med2}（{unit}）"
    assert a in what and b in what and what.index(a) < what.index(b), what
    facts = re.findall(r"<dt>(.*?)</dt><dd[^>]*>(.*?)</dd>", entry, re.S)
    assert [v for _, v in facts] == [item.name, a, b, "原调解员休假一周"], facts
    assert qiuyun in entry, "who moved it"
    # the mediator who now holds the task sees the same entry
    assert "原调解员休假一周" in _timeline(login(app, MED2).get(f"/cases/{c.id}").get_data(as_text=True))
