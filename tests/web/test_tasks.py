"""The task page: the form from the JSON Schema beside the case, server-side validation that saves
nothing and keeps what was typed, and stale or repeated submissions that change nothing."""
from __future__ import annotations

import re

from sqlalchemy import func, select

from grid.cases.models import Attachment
from tests.web_helpers import (
    TaskForm,
    dispatch,
    fingerprint,
    login,
    open_items,
    page_form,
    report_case,
    staff_id,
    upload,
)


def test_task_page_shows_the_form_beside_the_case(app, svc):
    c = report_case(svc)
    guid = open_items(svc, c.id, "dispatch")[0].task_guid
    client = login(app, "qiuyun")
    html = client.get(f"/tasks/{guid}").get_data(as_text=True)
    assert "派件" in html and c.case_no in html
    # the form: radio, staff picker limited to the community's mediators (with titles), text, textarea
    assert re.search(r'type="radio" name="action" value="dispatch" checked', html)
    assert html.count('name="assignees"') == 2 and "综治主任" in html and "城管主任" in html
    assert staff_id(svc, "med1.420602003000") not in html  # the street's mediators are not offered
    assert 'name="duplicate_of"' in html and '<textarea id="f-dispatch_note"' in html
    # the case: report, parties with phones (the handler needs them), location, history
    assert "南山家属院雨污分流改造" in html and "13800000001" in html and "32.02130" in html
    assert "上报立案" in html and 'name="lock_version" value="1"' in html


def test_invalid_submission_saves_nothing_and_keeps_what_was_typed(app, svc):
    c = report_case(svc)
    before = fingerprint(svc, c.id)
    form = TaskForm(app, svc, c.id)
    r = form.post(action="dispatch", dispatch_note="请尽快前往现场<b>调解</b>")
    assert r.status_code == 422
    html = r.get_data(as_text=True)
    assert "请修改标出的内容" in html
    assert re.search(r'<fieldset aria-describedby="f-assignees-err" aria-invalid="true">', html)
    assert '<div id="f-assignees-err"><p class="error-text">此项必填。</p>' in html
    assert "请尽快前往现场&lt;b&gt;调解&lt;/b&gt;</textarea>" in html  # kept, escaped
    assert fingerprint(svc, c.id) == before

    # a mediator outside the unit is refused by the service layer, inline too
    other = staff_id(svc, "med1.420602003000")
    r = form.post(action="dispatch", assignees=[other])
    assert r.status_code == 422 and "只能选择本单位的人员" in r.get_data(as_text=True)
    assert fingerprint(svc, c.id) == before


def test_double_submit_has_one_effect(app, svc):
    c = report_case(svc)
    form = TaskForm(app, svc, c.id)
    people = re.findall(r'name="assignees" value="([^"]+)"', form.html)
    first = form.post(action="dispatch", assignees=people)
    assert first.status_code == 302
    after = fingerprint(svc, c.id)
    second = form.post(action="dispatch", assignees=people)
    assert second.status_code == 409
    assert "已由邱云办理完成" in second.get_data(as_text=True)
    assert fingerprint(svc, c.id) == after
    assert len(open_items(svc, c.id, "mediate")) == 2


def test_parallel_mediators_do_not_block_each_other(app, svc):
    """A form goes stale only when its own task was done: the second mediator's page, opened before
    the first one submitted, still goes through, and both records are kept."""
    c = report_case(svc)
    dispatch(svc, c.id)
    g1, g2 = (w.task_guid for w in open_items(svc, c.id, "mediate"))
    m1, m2 = login(app, "med1.420602003005"), login(app, "med2.420602003005")
    _, t1, lock1 = page_form(m1, f"/tasks/{g1}")
    _, t2, lock2 = page_form(m2, f"/tasks/{g2}")
    r = m1.post(f"/tasks/{g1}", data={"csrf_token": t1, "lock_version": lock1, "outcome": "cannot_resolve",
                                      "notes": "协调无果"})
    assert r.status_code == 302
    r = m2.post(f"/tasks/{g2}", data={"csrf_token": t2, "lock_version": lock2, "outcome": "resolved",
                                      "notes": "第二位调解员的记录"})
    assert r.status_code == 302
    assert open_items(svc, c.id, "verify"), "both mediations counted; the case is resolved"
    assert not open_items(svc, c.id, "mediate")


def test_task_photos_are_stored_and_linked_on_success(app, svc):
    c = report_case(svc)
    dispatch(svc, c.id)
    form = TaskForm(app, svc, c.id, "mediate", "med1.420602003005")
    # first an invalid submission with a photo: nothing is stored (issue 17, defect 6), the page names it
    with svc.db.read() as s:
        n_files = s.scalar(select(func.count()).select_from(Attachment))
    r = form.post(outcome="resolved", photos=[upload("调解现场.png")], content_type="multipart/form-data")
    assert r.status_code == 422
    html = r.get_data(as_text=True)
    assert 'name="photos.keep"' not in html and "调解现场.png" in html
    with svc.db.read() as s:
        assert s.scalar(select(func.count()).select_from(Attachment)) == n_files
    r = form.post(outcome="resolved", notes="已当面调解", photos=[upload("调解现场.png")],
                  content_type="multipart/form-data")
    assert r.status_code == 302
    with svc.db.read() as s:
        (a,) = s.scalars(select(Attachment).where(Attachment.filename == "调解现场.png"))
        assert a.case_id == c.id and not a.pending
    page = login(app, "qiuyun").get(f"/cases/{c.id}").get_data(as_text=True)
    assert "调解现场.png" in page


def test_someone_elses_photo_cannot_be_slipped_into_a_form(app, svc):
    import io

    from grid.cases import attachments
    from tests.web_helpers import png

    c = report_case(svc)
    dispatch(svc, c.id)
    foreign = attachments.store(svc, staff_id(svc, "gw.420602003005001"), "别人的.png", io.BytesIO(png()))
    form = TaskForm(app, svc, c.id, "mediate", "med1.420602003005")
    before = fingerprint(svc, c.id)
    r = form.post(outcome="resolved", notes="已调解", **{"photos.keep": foreign.id})
    assert r.status_code == 422 and "附件已不可用" in r.get_data(as_text=True)
    assert fingerprint(svc, c.id) == before


def test_closed_task_page_says_who_did_it(app, svc):
    c = report_case(svc)
    guid = open_items(svc, c.id, "dispatch")[0].task_guid
    dispatch(svc, c.id)
    html = login(app, "qiuyun").get(f"/tasks/{guid}").get_data(as_text=True)
    assert "已由邱云于" in html and 'name="lock_version"' not in html
