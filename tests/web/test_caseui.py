"""The case pages use the data checks and marks (issue 12, items 5 and 6), on SQLite and PostgreSQL:
the dispatch page warns of repeat disputes and shows the case a 重复件 names before it is confirmed
(live fragment, or a round trip without JavaScript); the report page picks parties from the registry
and refuses a resident id that does not exist; the case page shows the on-the-spot settlement and the
links of a 重复件 both ways; task cards show 督办 and open urges; the verify task takes a handwritten
signature, checked server-side (junk is a 422, never a 500, and stores nothing)."""
from __future__ import annotations

import base64
import io
import re
from datetime import date, timedelta

import pytest
from PIL import Image, ImageDraw
from sqlalchemy import func, select

from grid.cases import checks
from grid.cases.models import Attachment, CaseLink, CaseParty, DisputeCase
from tests.registry_helpers import FAR_GRID, SEED_GRID, household, person
from tests.web_helpers import (
    dispatch,
    fingerprint,
    login,
    open_items,
    page_form,
    report_case,
    staff_id,
)

REPORTER, DISPATCHER, SUPERVISOR = "jiangranran", "qiuyun", "sup.420602003005"


def dispatch_guid(svc, c) -> str:
    return open_items(svc, c.id, "dispatch")[0].task_guid


# ---- dispatch: repeat disputes and the 重复件 preview ---------------------------------------------
def test_dispatch_page_warns_of_an_earlier_case_nearby_of_the_same_category(app, svc):
    first = report_case(svc, {"description": "南山家属院施工占道，居民投诉"})
    other = report_case(svc, {"category": "family", "description": "与施工无关的家庭纠纷"})  # same place, other category
    second = report_case(svc, {"description": "南山家属院雨污分流施工再次引发争执"})
    client = login(app, DISPATCHER)
    html = client.get(f"/tasks/{dispatch_guid(svc, second)}").get_data(as_text=True)
    warning = html[html.index('class="warning-box repeat-warning"'):]
    warning = warning[:warning.index("</ul>")]
    assert first.case_no in warning and "南山家属院施工占道" in warning
    assert other.case_no not in warning, "another category at the same place is no repeat"
    assert "附近同类" in warning and f'data-dup-pick="{first.case_no}"' in warning
    # the first case has nothing earlier: no warning
    html = client.get(f"/tasks/{dispatch_guid(svc, first)}").get_data(as_text=True)
    assert "repeat-warning" not in html


def test_duplicate_preview_fragment_shows_the_summary_and_is_no_oracle(app, svc):
    first = report_case(svc, {"description": "小区门口施工围挡占道"})
    second = report_case(svc, {"description": "北门施工围挡影响通行"})
    far = report_case(svc, {"description": "樊城区某小区施工"}, username=f"gw.{FAR_GRID}")
    guid = dispatch_guid(svc, second)
    client = login(app, DISPATCHER)
    r = client.get(f"/tasks/{guid}/duplicate?case_no={first.case_no}")
    assert r.status_code == 200
    html = r.get_data(as_text=True)
    assert f'data-case-no="{first.case_no}"' in html and "小区门口施工围挡占道" in html and "13800000001" not in html
    missing = client.get(f"/tasks/{guid}/duplicate?case_no=MD20990101999999")
    outside = client.get(f"/tasks/{guid}/duplicate?case_no={far.case_no}")
    assert missing.status_code == outside.status_code == 200  # a lookup while typing
    assert missing.get_data() == outside.get_data()
    assert "辖区内没有这个编号的案件" in missing.get_data(as_text=True) and "dup-found" not in missing.get_data(as_text=True)
    itself = client.get(f"/tasks/{guid}/duplicate?case_no={second.case_no}").get_data(as_text=True)
    assert "不能作为自己的重复件" in itself and "dup-found" not in itself
    assert "dup-found" not in client.get(f"/tasks/{guid}/duplicate?case_no=%00%01").get_data(as_text=True)
    # the reporter sees the case but cannot dispatch it; an outsider does not see the task at all
    assert login(app, REPORTER).get(f"/tasks/{guid}/duplicate?case_no={first.case_no}").status_code == 403
    assert login(app, f"gw.{FAR_GRID}").get(f"/tasks/{guid}/duplicate?case_no={first.case_no}").status_code == 404


def test_duplicate_is_confirmed_after_its_summary_and_linked_both_ways(app, svc):
    first = report_case(svc, {"description": "小区门口施工围挡占道"})
    second = report_case(svc, {"description": "北门施工围挡影响通行（重复反映）"})
    guid = dispatch_guid(svc, second)
    client = login(app, DISPATCHER)
    before = fingerprint(svc, second.id)
    _, token, lock = page_form(client, f"/tasks/{guid}")
    body = {"csrf_token": token, "lock_version": lock, "action": "duplicate", "duplicate_of": "MD20990101999999"}
    r = client.post(f"/tasks/{guid}", data=body)
    assert r.status_code == 422 and "辖区内没有这个编号的案件" in r.get_data(as_text=True)
    assert fingerprint(svc, second.id) == before
    # without JavaScript: the first submit shows the named case, and changes nothing
    body["duplicate_of"] = first.case_no
    r = client.post(f"/tasks/{guid}", data=body)
    assert r.status_code == 200
    html = r.get_data(as_text=True)
    assert f'data-case-no="{first.case_no}"' in html and "小区门口施工围挡占道" in html
    assert f'name="duplicate_confirm" value="{first.case_no}"' in html
    assert fingerprint(svc, second.id) == before
    # a confirmation of another number than the one named is no confirmation
    r = client.post(f"/tasks/{guid}", data={**body, "duplicate_confirm": "MD20990101999999"})
    assert r.status_code == 200 and fingerprint(svc, second.id) == before
    r = client.post(f"/tasks/{guid}", data={**body, "duplicate_confirm": first.case_no})
    assert r.status_code == 302
    with svc.db.read() as s:
        assert s.get(DisputeCase, second.id).result == "duplicate"
        assert s.scalar(select(func.count()).select_from(CaseLink)) == 1
    page = client.get(f"/cases/{second.id}").get_data(as_text=True)
    assert 'data-links="to"' in page and f">{first.case_no}</a>" in page.split('data-links="to"')[1]
    page = client.get(f"/cases/{first.id}").get_data(as_text=True)
    assert 'data-links="from"' in page and f">{second.case_no}</a>" in page.split('data-links="from"')[1]


# ---- report: parties from the registry ------------------------------------------------------------
def test_report_page_offers_the_registry_picker_and_refuses_unknown_residents(app, svc):
    hid = household(svc, None, SEED_GRID, "檀溪路1号")
    rid = person(svc, None, hid, "张三丰", date(1970, 1, 1), 11)
    far = person(svc, None, household(svc, None, FAR_GRID, "樊城路1号"), "李四", date(1970, 1, 1), 13)
    client = login(app, REPORTER)
    html = client.get("/report").get_data(as_text=True)
    assert 'data-parties="parties"' in html and 'data-lookup="/registry/api/residents"' in html
    assert 'type="hidden" id="f-parties-0-resident_id" name="parties.0.resident_id"' in html
    assert 'type="number" id="f-parties-0-resident_id"' not in html, "no bare resident-id box"
    assert "js/parties.js" in html
    found = client.get("/registry/api/residents?q=张三").get_json()
    assert [p["resident_id"] for p in found] == [rid] and "*" in (found[0]["id_number"] or "*")
    token = re.search(r'name="csrf_token" value="([^"]+)"', html).group(1)

    def post(parties: list[dict], tok: str):
        data = {"csrf_token": token, "submit_token": tok, "category": "neighbour", "description": "两户因漏水争执不下",
                "location.text": "檀溪路1号", "settled_on_spot": ""}
        for i, p in enumerate(parties):
            data.update({f"parties.{i}.{k}": str(v) for k, v in p.items()})
        return client.post("/report", data=data)

    with svc.db.read() as s:
        count = s.scalar(select(func.count()).select_from(DisputeCase))
    for bad in (far, rid + far + 1000, "12x"):
        r = post([{"name": "王五"}, {"name": "某人", "resident_id": bad}], "a" * 32)
        assert r.status_code == 422, bad
        assert "没有这个登记居民" in r.get_data(as_text=True) or "请输入数字" in r.get_data(as_text=True)
    with svc.db.read() as s:
        assert s.scalar(select(func.count()).select_from(DisputeCase)) == count
    r = post([{"name": "张三丰", "resident_id": rid}, {"name": "未登记的租户", "phone": "13800000009"}], "b" * 32)
    assert r.status_code == 302
    with svc.db.read() as s:
        c = s.scalar(select(DisputeCase).order_by(DisputeCase.id.desc()))
        assert [p["name"] for p in c.parties] == ["张三丰", "未登记的租户"]
        assert list(s.scalars(select(CaseParty.resident_id).where(CaseParty.case_id == c.id))) == [rid]


# ---- case page: settlement -------------------------------------------------------------------------
def test_case_page_shows_the_on_the_spot_settlement(app, svc):
    c = report_case(svc, {"settled_on_spot": True, "spot_result": "双方当场达成协议：施工方当日清理渣土。"})
    client = login(app, REPORTER)
    html = client.get(f"/cases/{c.id}").get_data(as_text=True)
    assert html.count("双方当场达成协议：施工方当日清理渣土。") == 2  # as reported, and in the timeline
    assert "现场化解情况" in html and "ol class=\"progress\"" in html
    assert '<p class="pre-line settlement">' in html


# ---- task cards: 督办 and urges --------------------------------------------------------------------
def test_task_cards_show_supervision_and_the_urge_until_acted_on(app, svc, fake_clock):
    c = report_case(svc)
    dispatch(svc, c.id)
    fake_clock.advance(timedelta(days=4))  # past the warning time: the 督办 task opens
    svc.runtime.sweep()
    assert open_items(svc, c.id, "supervise")
    med = login(app, "med1.420602003005")
    card = _card(med.get("/").get_data(as_text=True), c.case_no)
    assert "badge-supervised" in card and ">督办中<" in card
    assert "badge-normal" not in card
    sup = login(app, SUPERVISOR)  # the 督办 task itself is shown as supervised
    card = _card(sup.get("/").get_data(as_text=True), c.case_no)
    assert ">督办中<" in card and "badge-normal" not in card
    from grid.cases import service as cases

    assert cases.urge(svc, staff_id(svc, SUPERVISOR), c.id, "请今天务必处理") == "completed"
    card = _card(med.get("/").get_data(as_text=True), c.case_no)
    assert "请今天务必处理" in card and 'class="urges"' in card
    guid = open_items(svc, c.id, "mediate")[0].task_guid
    assert "请今天务必处理" in med.get(f"/tasks/{guid}").get_data(as_text=True)  # and on the task page
    # once the mediator acts, the urge leaves the card
    for item in open_items(svc, c.id, "mediate"):
        cases.complete_task(svc, item.user_id, item.task_guid, {"outcome": "resolved", "notes": "已调解"})
    assert "请今天务必处理" not in med.get("/").get_data(as_text=True)


def _card(html: str, case_no: str) -> str:
    cards = re.findall(r'<li class="item state-.*?</li>\s*(?=<li class="item|</ul>)', html, re.S)
    mine = [x for x in cards if case_no in x]
    assert mine, html[-2000:]
    return mine[0]


# ---- signatures ------------------------------------------------------------------------------------
def drawing(size=(600, 200), ink: bool = True, fmt: str = "PNG") -> str:
    img = Image.new("RGBA", size, (0, 0, 0, 0))
    if ink:
        ImageDraw.Draw(img).line([(20, 150), (200, 40), (380, 160), (560, 50)], fill=(17, 17, 17, 255), width=6)
    out = io.BytesIO()
    img.save(out, format=fmt) if fmt == "PNG" else img.convert("RGB").save(out, format=fmt)
    return f"data:image/png;base64,{base64.b64encode(out.getvalue()).decode()}"


def to_verify(svc) -> str:
    c = report_case(svc)
    dispatch(svc, c.id)
    from grid.cases import service as cases

    for item in open_items(svc, c.id, "mediate"):
        cases.complete_task(svc, item.user_id, item.task_guid, {"outcome": "resolved", "notes": "已调解"})
    return c, open_items(svc, c.id, "verify")[0].task_guid


def attachments_count(svc) -> int:
    with svc.db.read() as s:
        return s.scalar(select(func.count()).select_from(Attachment))


def test_verify_takes_a_handwritten_signature_shown_on_the_case_and_timeline(app, svc):
    c, guid = to_verify(svc)
    client = login(app, REPORTER)
    html, token, lock = page_form(client, f"/tasks/{guid}")
    assert 'data-signature="signature"' in html and 'data-signature="resident_signer"' in html
    assert "signature_pad.umd.min.js" in html and 'name="signature"' in html  # the typed name stays
    assert 'name="signature_image"' not in html, "the drawing is part of its signature field"
    # a refused form (no satisfaction answer) stores nothing and gives the drawing back to the pad
    r = client.post(f"/tasks/{guid}", data={"csrf_token": token, "lock_version": lock, "signature": "江冉冉",
                                            "signature.png": drawing()})
    assert r.status_code == 422 and attachments_count(svc) == 0
    assert re.search(r'name="signature.png" value="data:image/png;base64,[A-Za-z0-9+/=]{100,}"', r.get_data(as_text=True))
    r = client.post(f"/tasks/{guid}", data={"csrf_token": token, "lock_version": lock, "satisfied": "true",
                                            "signature": "江冉冉", "signature.png": drawing(),
                                            "resident_signer": "南山居民代表", "resident_signer.png": drawing((500, 180))})
    assert r.status_code == 302, r.get_data(as_text=True)[-1500:]
    with svc.db.read() as s:
        sigs = list(s.scalars(select(Attachment).where(Attachment.case_id == c.id)))
    assert len(sigs) == 2 and {a.content_type for a in sigs} == {"image/png"}
    page = client.get(f"/cases/{c.id}").get_data(as_text=True)
    assert 'id="h-signatures"' in page and "南山居民代表" in page
    for a in sigs:
        assert page.count(f"/attachments/{a.id}") >= 2  # the signatures card and the timeline
        got = client.get(f"/attachments/{a.id}")
        assert got.status_code == 200 and got.mimetype.startswith("image/")
        stored = Image.open(io.BytesIO(client.get(f"/attachments/{a.id}/original").data))
        assert stored.format == "PNG" and stored.mode == "L" and not stored.info.get("Software")
    assert login(app, f"gw.{FAR_GRID}").get(f"/attachments/{sigs[0].id}").status_code == 404


@pytest.mark.parametrize("junk", [
    "not a data url", "data:image/png;base64,!!!!", "data:image/png;base64," + base64.b64encode(b"GIF89a....").decode(),
    "data:image/png;base64," + base64.b64encode(b"\x89PNG\r\n\x1a\n" + b"\x00" * 64).decode(),  # truncated
    "data:image/svg+xml;base64,PHN2Zz48L3N2Zz4=", "blank", "tiny", "huge-pixels", "too-many-bytes", "jpeg"])
def test_a_junk_signature_is_a_422_and_stores_nothing(app, svc, junk):
    c, guid = to_verify(svc)
    value = {"blank": drawing(ink=False), "tiny": drawing((40, 20)), "huge-pixels": drawing((5000, 400)),
             "too-many-bytes": "data:image/png;base64," + "A" * (checks_max() * 2),
             "jpeg": drawing(fmt="JPEG")}.get(junk, junk)
    client = login(app, REPORTER)
    _, token, lock = page_form(client, f"/tasks/{guid}")
    before = fingerprint(svc, c.id)
    r = client.post(f"/tasks/{guid}", data={"csrf_token": token, "lock_version": lock, "satisfied": "true",
                                            "signature": "江冉冉", "signature.png": value})
    assert r.status_code == 422, junk
    html = r.get_data(as_text=True)
    assert re.search(r"签名.{0,20}(清除|签名为空|读不出|过大|尺寸)", html), junk
    assert fingerprint(svc, c.id) == before and attachments_count(svc) == 0


def checks_max() -> int:
    from grid.cases import signatures

    return signatures.MAX_BYTES


def test_without_a_drawing_the_typed_name_signs(app, svc):
    c, guid = to_verify(svc)
    client = login(app, REPORTER)
    _, token, lock = page_form(client, f"/tasks/{guid}")
    r = client.post(f"/tasks/{guid}", data={"csrf_token": token, "lock_version": lock, "satisfied": "true",
                                            "signature": "江冉冉", "signature.png": ""})
    assert r.status_code == 302 and attachments_count(svc) == 0
    page = client.get(f"/cases/{c.id}").get_data(as_text=True)
    assert "江冉冉" in page and 'id="h-signatures"' not in page
    assert checks.DUPLICATE == "duplicate"
