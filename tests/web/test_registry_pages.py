"""The registry pages: my grid at a glance, the resident page with an audited reveal, life events and
flags through forms, the import page with its progress, the export and the party search."""
from __future__ import annotations

import csv
import html
import io
import re
from datetime import date
from pathlib import Path

import pytest
from sqlalchemy import func, select

from grid.org.passwords import DEMO_PASSWORD
from grid.registry import demo as registry_demo
from grid.registry import households, reader, visits
from grid.registry import models as registry_models
from grid.registry import pages as registry_pages
from grid.registry.models import Resident, RevealLog, SpecialFlag
from tests.registry_helpers import SEED_GRID, household, make_id, sid, staff_name
from tests.web.test_i18n import _visible_text

TOKEN = re.compile(r'name="csrf_token" value="([^"]+)"')


def login(app, username: str):
    client = app.test_client()
    page = client.get("/login").get_data(as_text=True)
    r = client.post("/login", data={"username": username, "password": DEMO_PASSWORD, "csrf_token": token(page)})
    assert r.status_code == 302, (username, r.status_code)
    return client


@pytest.fixture
def town(fake_clock, app):
    svc = app.extensions["gridflow"]
    gw = sid(svc, "jiangranran")
    hid = household(svc, gw, SEED_GRID, "檀溪路1号1栋", "1-101")
    rid = households.move_in(svc, gw, hid, name="张建国", id_number=make_id("420602", date(1970, 5, 1), 11),
                             relation="head", phone="13812341234")
    return {"svc": svc, "gw": gw, "hid": hid, "rid": rid, "idn": make_id("420602", date(1970, 5, 1), 11)}


def token(page: str) -> str:
    return TOKEN.search(page).group(1)


def test_my_grid_at_a_glance(app, town):
    c = login(app, "jiangranran")
    r = c.get("/registry/")
    assert r.status_code == 302 and r.headers["Location"].endswith(f"/registry/grid/{SEED_GRID}")
    page = c.get(f"/registry/grid/{SEED_GRID}").get_data(as_text=True)
    assert "第十五网格" in page and "檀溪路1号1栋" in page and "张建国" in page and "138****1234" in page
    assert "13812341234" not in page and town["idn"] not in page
    assert c.get("/registry/grid/420606001001001").status_code == 404  # another county
    outsider = login(app, "gw.420602003005001")
    assert outsider.get(f"/registry/grid/{SEED_GRID}").status_code == 404
    assert outsider.get(f"/registry/resident/{town['rid']}").status_code == 404
    head = login(app, "qiuyun")
    page = head.get("/registry/").get_data(as_text=True)
    assert "第十五网格" in page and "第一网格" in page


def test_the_demo_grid_with_flags_and_due_visits(app, fake_clock):
    svc = app.extensions["gridflow"]
    assert registry_demo.fill(svc, "small")["flags"] == 10
    c = login(app, "jiangranran")
    page = c.get(f"/registry/grid/{SEED_GRID}").get_data(as_text=True)
    assert "待走访" in page and "社区矫正人员" in page and "/tasks/" in page
    guid = re.search(r'href="/tasks/([0-9a-f-]{36})"', page).group(1)
    assert c.get(f"/tasks/{guid}").status_code == 200  # the visit form, from the staff UI


def test_reveal_is_a_post_and_is_recorded(app, town):
    c = login(app, "jiangranran")
    url = f"/registry/resident/{town['rid']}"
    page = c.get(url).get_data(as_text=True)
    assert "4206**********" in page and town["idn"] not in page
    r = c.post(f"{url}/reveal", data={"field": "id_number", "reason": "核实", "csrf_token": token(page)})
    assert r.status_code == 200 and town["idn"] in r.get_data(as_text=True)
    assert c.get(url).get_data(as_text=True).count(town["idn"]) == 0  # shown once, not kept
    assert c.post(f"{url}/reveal", data={"field": "id_number"}).status_code == 400  # no CSRF token
    mediator = login(app, "med1.420602003005")
    page = mediator.get(url).get_data(as_text=True)
    assert "查看完整号码" not in page
    r = mediator.post(f"{url}/reveal", data={"field": "phone", "csrf_token": token(page)})
    assert r.status_code == 403 and "13812341234" not in r.get_data(as_text=True)
    with town["svc"].db.read() as s:
        assert [(x.field, x.granted) for x in s.scalars(select(RevealLog).order_by(RevealLog.id))] == [
            ("id_number", True), ("phone", False)]
    assert "核实" in c.get(url).get_data(as_text=True)  # the log on the page, for the grid worker


def test_life_events_and_flags_through_the_pages(app, town):
    svc = town["svc"]
    c = login(app, "jiangranran")
    hpage = c.get(f"/registry/household/{town['hid']}").get_data(as_text=True)
    r = c.post(f"/registry/household/{town['hid']}/birth", data={
        "name": "张小宝", "birth_date": "2026-01-03", "sex": "M", "relation": "child", "csrf_token": token(hpage)})
    assert r.status_code == 302
    baby = int(r.headers["Location"].rsplit("/", 1)[1])
    r = c.post(f"/registry/household/{town['hid']}/move-in", data={
        "name": "坏号码", "id_number": "123", "relation": "other", "csrf_token": token(hpage)}, follow_redirects=True)
    assert "id_number" in r.get_data(as_text=True)
    page = c.get(f"/registry/resident/{town['rid']}").get_data(as_text=True)
    r = c.post(f"/registry/resident/{town['rid']}/flag", data={
        "category": "elderly_alone", "risk_level": "high", "csrf_token": token(page)}, follow_redirects=True)
    body = r.get_data(as_text=True)
    assert "独居/空巢老人" in body and "去走访" in body
    with svc.db.read() as s:
        fid = s.scalar(select(SpecialFlag.id).where(SpecialFlag.resident_id == town["rid"]))
    r = c.post(f"/registry/flag/{fid}/risk", data={"risk_level": "low", "csrf_token": token(body)},
               follow_redirects=True)
    assert "低风险" in r.get_data(as_text=True)
    r = c.post(f"/registry/flag/{fid}/unflag", data={"reason": "已入住养老院", "csrf_token": token(body)},
               follow_redirects=True)
    assert "已入住养老院" in r.get_data(as_text=True)
    page = c.get(f"/registry/resident/{baby}").get_data(as_text=True)
    r = c.post(f"/registry/resident/{baby}/death", data={"date": "2026-01-04", "csrf_token": token(page)},
               follow_redirects=True)
    assert "死亡" in r.get_data(as_text=True)
    with svc.db.read() as s:
        assert s.get(Resident, baby).status == "deceased"


def _wait(job_id: str) -> None:
    from web.registry import import_export

    import_export._jobs[job_id].thread.join(timeout=60)


def test_import_page_with_progress_and_errors(app, town, tmp_path):
    c = login(app, "jiangranran")
    page = c.get("/registry/import").get_data(as_text=True)
    buf = io.StringIO()
    w = csv.writer(buf)
    w.writerow(["网格编码", "楼栋地址", "门牌号", "姓名", "身份证号", "与户主关系"])
    w.writerow([SEED_GRID, "檀溪路2号", "1", "王五", make_id("420602", date(1990, 1, 1), 1), "户主"])
    w.writerow([SEED_GRID, "檀溪路2号", "1", "王六", "420602199001011230", "子女"])
    data = {"file": (io.BytesIO(buf.getvalue().encode("utf-8-sig")), "bad.csv"), "csrf_token": token(page)}
    r = c.post("/registry/import", data=data, content_type="multipart/form-data")
    assert r.status_code == 303
    job = r.headers["Location"].split("job=")[1]
    _wait(job)
    status = c.get(f"/registry/import/{job}.json").get_json()
    assert status["finished"] and not status["ok"] and status["errors"][0]["line"] == 3
    html = c.get(f"/registry/import?job={job}").get_data(as_text=True)
    assert "未导入任何数据" in html and "身份证号" in html and 'http-equiv="refresh"' not in html
    good = buf.getvalue().replace("420602199001011230", make_id("420602", date(2015, 1, 1), 3))
    r = c.post("/registry/import", data={"file": (io.BytesIO(good.encode()), "good.csv"), "csrf_token": token(page)},
               content_type="multipart/form-data")
    job = r.headers["Location"].split("job=")[1]
    _wait(job)
    assert c.get(f"/registry/import/{job}.json").get_json()["ok"]
    with town["svc"].db.read() as s:
        assert s.scalar(select(func.count()).select_from(Resident)) == 3
    assert login(app, "qiuyun").get(f"/registry/import/{job}.json").status_code == 404  # not her job
    r = c.post("/registry/import", data={"csrf_token": token(page)}, content_type="multipart/form-data")
    assert r.status_code == 303


def test_export_and_party_search(app, town):
    c = login(app, "jiangranran")
    r = c.get(f"/registry/export?grid={SEED_GRID}")
    assert r.status_code == 200 and r.mimetype == "text/csv"
    rows = list(csv.reader(io.StringIO(r.get_data(as_text=True).lstrip("\ufeff"))))
    assert rows[0][0] == "网格编码" and rows[1][6] == town["idn"]
    assert c.get(f"/registry/export?grid={SEED_GRID}&format=xlsx").status_code == 200
    mediator = login(app, "med1.420602003005")
    assert mediator.get(f"/registry/export?grid={SEED_GRID}").status_code == 403
    found = c.get("/registry/api/residents?q=张").get_json()
    assert found == [{**found[0], "resident_id": town["rid"], "name": "张建国", "phone": "138****1234"}]
    assert town["idn"] not in str(found)
    assert login(app, "gw.420602003005001").get("/registry/api/residents?q=张").get_json() == []


def test_the_resident_page_lists_their_cases(app, town):
    """The web layer puts the registry's page and the cases naming the resident together."""
    from grid.cases import service as cases

    svc, gw = town["svc"], town["gw"]
    data = {"category": "neighbour", "description": "楼上漏水到楼下，协商未果", "location": {"text": "檀溪路1号1栋"},
            "parties": [registry_pages.party(svc, gw, town["rid"]), {"name": "楼上住户"}], "settled_on_spot": False}
    c = cases.report(svc, gw, data)
    other = cases.report(svc, gw, {**data, "parties": [{"name": "别人"}]})
    page = login(app, "jiangranran").get(f"/registry/resident/{town['rid']}").get_data(as_text=True)
    assert f'href="/cases/{c.id}"' in page and c.case_no in page
    assert other.case_no not in page and f'href="/cases/{other.id}"' not in page


def test_visit_tasks_say_whom_to_visit(app, town):
    svc = town["svc"]
    visits.flag(svc, town["gw"], town["rid"], "elderly_alone", "medium")
    c = login(app, "jiangranran")
    inbox = c.get("/").get_data(as_text=True)
    assert "走访对象" in inbox and "张建国" in inbox and f"/registry/resident/{town['rid']}" in inbox
    guid = re.search(r'href="/tasks/([0-9a-f-]{36})"', inbox).group(1)
    page = c.get(f"/tasks/{guid}").get_data(as_text=True)
    assert "走访对象" in page and "张建国" in page and "中风险" in page


# ---- language ------------------------------------------------------------------------------------
CJK = re.compile(r"[\u3000-\u303f\u4e00-\u9fff\uff00-\uffef]+")
TEMPLATES = sorted((Path(__file__).resolve().parents[2] / "web" / "templates" / "registry").glob("*.html"))


@pytest.mark.parametrize("path", TEMPLATES, ids=[p.name for p in TEMPLATES])
def test_registry_templates_have_no_literal_text(path):
    """Every word of the registry pages comes from the catalogs (as tests/test_web_i18n.py checks for
    the other templates); file format names are not words."""
    source = path.read_text(encoding="utf-8")
    words = re.findall(r"[A-Za-z]{2,}|[\u4e00-\u9fff]+", _visible_text(source))
    assert set(words) <= {"CSV", "XLSX"}, words
    for attr in re.findall(r'\b(?:title|aria-label|placeholder|alt)="([^"]*)"', source):
        assert not re.search(r"[A-Za-z]{2,}|[\u4e00-\u9fff]", re.sub(r"\{\{.*?\}\}", "", attr)), attr


def test_every_registry_code_has_words():
    from web.registry import words as ui

    assert set(ui.CATEGORY_NAMES) == set(registry_models.CATEGORIES)
    assert set(ui.RISK_NAMES) == set(registry_models.RISK_LEVELS)
    assert set(ui.STATUS_NAMES) == set(registry_models.STATUSES)
    assert set(ui.SEX_NAMES) == set(registry_models.SEXES)
    assert set(ui.RELATION_NAMES) == set(registry_models.RELATIONS)
    assert set(ui.EVENT_NAMES) == set(registry_models.EVENT_KINDS)


def in_english(app, username: str):
    c = login(app, username)
    page = c.get("/settings").get_data(as_text=True)
    assert c.post("/settings", data={"locale": "en", "csrf_token": token(page)}).status_code == 302
    return c


def chinese_left(page: str, data: set[str]) -> list[str]:
    """Chinese in what <main> shows (text, titles, labels, placeholders) once the data is taken out."""
    main = page.split('<main id="main">', 1)[1].split("</main>", 1)[0]
    attrs = re.findall(r'\b(?:title|aria-label|placeholder)="([^"]*)"', main)
    text = html.unescape(" ".join([re.sub(r"<[^>]+>", " ", main), *attrs]))
    for d in sorted(filter(None, data), key=len, reverse=True):
        text = text.replace(d, " ")
    return CJK.findall(text)


def test_the_registry_in_english(app, fake_clock):
    svc = app.extensions["gridflow"]
    assert registry_demo.fill(svc, "small")["flags"] == 10
    gw = sid(svc, "jiangranran")
    c = in_english(app, "jiangranran")
    page = c.get(f"/registry/grid/{SEED_GRID}").get_data(as_text=True)
    v = registry_pages.grid_overview(svc, gw, SEED_GRID)
    data = {v.name, v.village_name, *(d["name"] for d in v.due_visits)}
    for b in v.buildings:
        data |= {b.address, *(h.door_no for h in b.households), *(m.name for h in b.households for m in h.members)}
    assert '<html lang="en">' in page and "My grid" in page
    assert "Visits due" in page and "Buildings and households" in page and "Head of household" in page
    assert "Residents living here" in page and any(w in page for w in ("High risk", "Medium risk", "Low risk"))
    flagged = {f["category"] for b in v.buildings for h in b.households for m in h.members for f in m.flags}
    from web.registry.words import CATEGORY_NAMES

    assert flagged and all(str(CATEGORY_NAMES[k]) in page for k in flagged)
    assert "待走访" not in page and "户主" not in page and registry_models.CATEGORIES[next(iter(flagged))] not in page
    assert chinese_left(page, data) == []
    index = c.get("/registry/?q=" + v.buildings[0].households[0].members[0].name).get_data(as_text=True)
    assert "Results" in index and "My grids" in index and "查找结果" not in index
    imp = c.get("/registry/import").get_data(as_text=True)
    assert "Import and export" in imp and "Upload and import" in imp
    names = {label for _key, label in reader.COLUMNS} | {x for g in registry_pages.my_grids(svc, gw) for x in g}
    assert chinese_left(imp, names) == []


def test_resident_pages_and_messages_in_english(app, town):
    c = in_english(app, "jiangranran")
    url = f"/registry/resident/{town['rid']}"
    page = c.get(url).get_data(as_text=True)
    assert "Special population and visits" in page and "Change history" in page and "Moved in" in page
    assert "Show in full" in page and "Head of household" in page and "Male" in page
    data = {"张建国", "檀溪路1号1栋", "第十五网格", staff_name(town["svc"], town["gw"])}
    assert chinese_left(page, data) == []
    r = c.post(f"{url}/flag", data={"category": "released", "risk_level": "high", "csrf_token": token(page)},
               follow_redirects=True)
    body = r.get_data(as_text=True)
    assert "Flagged; the visit schedule has started." in body and "Released prisoners" in body
    assert "High risk" in body and "Visit now" in body and "刑满释放人员" not in body and "高风险" not in body
    assert chinese_left(body, data) == []
    hpage = c.get(f"/registry/household/{town['hid']}").get_data(as_text=True)
    assert "Register a birth" in hpage and "Relation to the head" in hpage
    assert chinese_left(hpage, data) == []


def test_an_export_is_audited_before_any_data_leaves(app, town):
    from sqlalchemy import select

    from grid.registry.models import ImportBatch

    svc = town["svc"]
    c = login(app, "jiangranran")
    r = c.get(f"/registry/export?grid={SEED_GRID}", buffered=False)  # the download is never read
    with svc.db.read() as s:
        (b,) = s.scalars(select(ImportBatch).where(ImportBatch.status.in_(["exporting", "exported"])))
        assert (b.actor, b.grid_code, b.status) == (town["gw"], SEED_GRID, "exporting")
    r.close()
    c.get(f"/registry/export?grid={SEED_GRID}").get_data()
    with svc.db.read() as s:
        done = list(s.scalars(select(ImportBatch).where(ImportBatch.status == "exported")))
    assert len(done) == 1 and done[0].rows >= 1
