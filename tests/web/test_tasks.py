"""The task page: the form from the JSON Schema beside the case, server-side validation that saves
nothing and keeps what was typed, and stale or repeated submissions that change nothing."""
from __future__ import annotations

import re

import pytest

from grid.cases.models import Attachment
from tests.web_helpers import (
    dispatch,
    fingerprint,
    login,
    make_app,
    open_items,
    page_form,
    report_case,
    staff_id,
    upload,
)


@pytest.fixture
def app(svc, tmp_path):
    return make_app(svc, tmp_path)


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
    guid = open_items(svc, c.id, "dispatch")[0].task_guid
    before = fingerprint(svc, c.id)
    client = login(app, "qiuyun")
    _, token, lock = page_form(client, f"/tasks/{guid}")
    r = client.post(f"/tasks/{guid}", data={"csrf_token": token, "lock_version": lock, "action": "dispatch",
                                            "dispatch_note": "请尽快前往现场<b>调解</b>"})
    assert r.status_code == 422
    html = r.get_data(as_text=True)
    assert "请修改标出的内容" in html
    assert re.search(r'<fieldset aria-describedby="f-assignees-err" aria-invalid="true">', html)
    assert '<div id="f-assignees-err"><p class="error-text">此项必填。</p>' in html
    assert "请尽快前往现场&lt;b&gt;调解&lt;/b&gt;</textarea>" in html  # kept, escaped
    assert fingerprint(svc, c.id) == before

    # a mediator outside the unit is refused by the service layer, inline too
    other = staff_id(svc, "med1.420602003000")
    r = client.post(f"/tasks/{guid}", data={"csrf_token": token, "lock_version": lock, "action": "dispatch",
                                            "assignees": [other]})
    assert r.status_code == 422 and "只能选择本单位的人员" in r.get_data(as_text=True)
    assert fingerprint(svc, c.id) == before


def test_double_submit_has_one_effect(app, svc):
    c = report_case(svc)
    guid = open_items(svc, c.id, "dispatch")[0].task_guid
    client = login(app, "qiuyun")
    html, token, lock = page_form(client, f"/tasks/{guid}")
    people = re.findall(r'name="assignees" value="([^"]+)"', html)
    data = {"csrf_token": token, "lock_version": lock, "action": "dispatch", "assignees": people}
    first = client.post(f"/tasks/{guid}", data=data)
    assert first.status_code == 302
    after = fingerprint(svc, c.id)
    second = client.post(f"/tasks/{guid}", data=data)
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
    guid = open_items(svc, c.id, "mediate")[0].task_guid
    client = login(app, "med1.420602003005")
    _, token, lock = page_form(client, f"/tasks/{guid}")
    # first an invalid submission with a photo: the photo is kept for the next try, not yet on the case
    r = client.post(f"/tasks/{guid}", data={"csrf_token": token, "lock_version": lock, "outcome": "resolved",
                                            "photos": [upload("调解现场.png")]}, content_type="multipart/form-data")
    assert r.status_code == 422
    html = r.get_data(as_text=True)
    kept = re.search(r'name="photos.keep" value="([^"]+)" checked', html).group(1)
    with svc.db.read() as s:
        assert s.get(Attachment, kept).case_id is None
    r = client.post(f"/tasks/{guid}", data={"csrf_token": token, "lock_version": lock, "outcome": "resolved",
                                            "notes": "已当面调解", "photos.keep": kept})
    assert r.status_code == 302
    with svc.db.read() as s:
        assert s.get(Attachment, kept).case_id == c.id
    page = login(app, "qiuyun").get(f"/cases/{c.id}").get_data(as_text=True)
    assert "调解现场.png" in page


def test_someone_elses_photo_cannot_be_slipped_into_a_form(app, svc):
    import io

    from grid.cases import attachments
    from tests.web_helpers import png

    c = report_case(svc)
    dispatch(svc, c.id)
    guid = open_items(svc, c.id, "mediate")[0].task_guid
    foreign = attachments.store(svc, staff_id(svc, "gw.420602003005001"), "别人的.png", io.BytesIO(png()))
    client = login(app, "med1.420602003005")
    _, token, lock = page_form(client, f"/tasks/{guid}")
    before = fingerprint(svc, c.id)
    r = client.post(f"/tasks/{guid}", data={"csrf_token": token, "lock_version": lock, "outcome": "resolved",
                                            "notes": "已调解", "photos.keep": foreign.id})
    assert r.status_code == 422 and "附件已不可用" in r.get_data(as_text=True)
    assert fingerprint(svc, c.id) == before


def test_closed_task_page_says_who_did_it(app, svc):
    c = report_case(svc)
    guid = open_items(svc, c.id, "dispatch")[0].task_guid
    dispatch(svc, c.id)
    html = login(app, "qiuyun").get(f"/tasks/{guid}").get_data(as_text=True)
    assert "已由邱云于" in html and 'name="lock_version"' not in html
