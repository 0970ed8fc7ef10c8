"""Issue 17, defect 2 and scope item 2: masks that add up to nothing, the exact search as an
audited, rate-limited reveal, and ID numbers and phones encrypted at rest. SQLite and PostgreSQL
unless said."""
from __future__ import annotations

import re
from datetime import date, timedelta

import pytest
from sqlalchemy import func, select, text

from grid import crypto, masking
from grid.errors import Forbidden
from grid.org import demo
from grid.org.models import SecurityEvent
from grid.registry import demo as registry_demo
from grid.registry import pages as registry_pages
from grid.registry import rules
from grid.registry.models import Resident, ResidentEvent
from tests.registry_helpers import SEED_GRID, first_with_role, household, make_id, person, sid

IDN = make_id("420602", date(1970, 5, 1), 11)
PHONE = "13812341234"


@pytest.fixture
def people(reg):
    gw = sid(reg, "jiangranran")
    hid = household(reg, gw, SEED_GRID, "檀溪路1号1栋", "1-101")
    rid = person(reg, gw, hid, "张建国", date(1970, 5, 1), 11, "head", phone=PHONE)
    return {"gw": gw, "rid": rid, "hid": hid}


def _exact_events(svc, who: str) -> list[SecurityEvent]:
    with svc.db.read() as s:
        return list(s.scalars(select(SecurityEvent).where(SecurityEvent.kind == "exact_search",
                                                          SecurityEvent.actor_staff_id == who)
                              .order_by(SecurityEvent.id)))


# ---- masks --------------------------------------------------------------------------------------
def test_the_birth_date_shows_as_its_year_beside_a_masked_id(reg, people):
    page = registry_pages.resident_page(reg, people["gw"], people["rid"])
    assert page["resident"].id_number == IDN[:4] + "*" * 10 + IDN[-4:]
    assert page["birth"] == "1970-**-**" == masking.mask_birth(date(1970, 5, 1))
    assert masking.mask_birth(None) == ""


# ---- the exact search ---------------------------------------------------------------------------
def test_exact_search_is_for_those_who_may_reveal_and_is_audited(reg, people):
    gw = people["gw"]
    for q in (IDN, PHONE):
        (hit,) = registry_pages.search(reg, gw, q)
        assert hit["resident_id"] == people["rid"] and hit["id_number"] == masking.mask_id(IDN)
    events = _exact_events(reg, gw)
    assert [(e.detail["by"], e.detail["granted"], e.detail["results"]) for e in events] == [
        ("id_number", True, 1), ("phone", True, 1)]
    assert IDN not in str([e.detail for e in events]) and PHONE not in str([e.detail for e in events])
    mediator = first_with_role(reg, demo.SEED_TOWNSHIP, "mediator")  # sees the grid, may not reveal
    assert [r["resident_id"] for r in registry_pages.search(reg, mediator, "张建")] == [people["rid"]]
    with pytest.raises(Forbidden):
        registry_pages.search(reg, mediator, IDN)
    (refused,) = _exact_events(reg, mediator)
    assert refused.detail["granted"] is False and IDN not in str(refused.detail)


def test_exact_search_is_rate_limited_per_person(reg, people, fake_clock):
    gw = people["gw"]
    for _ in range(registry_pages.EXACT_LIMIT):
        assert len(registry_pages.search(reg, gw, PHONE)) == 1
    with pytest.raises(registry_pages.TooManySearches):
        registry_pages.search(reg, gw, IDN)
    assert registry_pages.search(reg, gw, "张建")  # a name search is not limited
    fake_clock.advance(registry_pages.EXACT_WINDOW + timedelta(seconds=1))
    assert len(registry_pages.search(reg, gw, IDN)) == 1


def test_the_api_answers_429_over_the_limit(reg, people, tmp_path):
    from tests.web_helpers import login, make_app

    client = login(make_app(reg, tmp_path), "jiangranran")
    for _ in range(registry_pages.EXACT_LIMIT):
        assert client.get("/registry/api/residents", query_string={"q": IDN}).status_code == 200
    r = client.get("/registry/api/residents", query_string={"q": IDN})
    assert r.status_code == 429 and r.get_json()["error"]
    page = client.get(f"/registry/resident/{people['rid']}").get_data(as_text=True)
    assert "1970-05-01" not in page and "1970-**-**" in page


# ---- encrypted at rest --------------------------------------------------------------------------
def test_numbers_are_sealed_in_the_database_and_found_by_the_blind_index(reg, people):
    with reg.db.read() as s:
        raw = s.execute(text("SELECT id_number, phone, id_index, phone_index FROM resident WHERE id = :i"),
                        {"i": people["rid"]}).one()
        assert crypto.is_sealed(raw[0]) and crypto.is_sealed(raw[1]) and IDN not in raw[0] and PHONE not in raw[1]
        assert crypto.key_id(raw[0]) == crypto.keyring().current.kid
        assert raw[2] == crypto.blind(IDN, "resident.id_number") and re.fullmatch(r"[0-9a-f]{32}", raw[3])
        assert rules.find_by_id_number(s, IDN.lower()).id == people["rid"]
        r = s.get(Resident, people["rid"])
        assert (r.id_number, r.phone) == (IDN, PHONE)  # plaintext in Python
        history = s.execute(select(func.count()).select_from(ResidentEvent)).scalar()
        dump = " ".join(str(x) for x in s.execute(text("SELECT before, after FROM resident_event")).all())
        assert history and IDN not in dump and PHONE not in dump
    with pytest.raises(ValueError):  # a ciphertext does not open in another field
        crypto.unseal(raw[0], "resident.phone")


def test_the_sqlite_file_of_a_demo_city_holds_no_number_in_plain_text(sqlite_db, fake_clock):
    from grid.cases.scenario import prepare
    from tests.conftest import ROOT

    svc = prepare(sqlite_db, ROOT / "workflows", ROOT / "forms")
    registry_demo.fill(svc, size="small")
    with svc.db.read() as s:
        some = list(s.execute(select(Resident.id_number, Resident.phone).where(Resident.phone.is_not(None))
                              .order_by(Resident.id).limit(5)))
    assert some
    with sqlite_db.engine.connect() as c:
        c.exec_driver_sql("PRAGMA wal_checkpoint(TRUNCATE)")
    path = sqlite_db.engine.url.database
    data = open(path, "rb").read()
    for idn, phone in some:
        assert idn.encode() not in data and phone.encode() not in data


def test_keys_rotate(monkeypatch):
    import base64
    import os

    old, new = base64.b64encode(os.urandom(32)).decode(), base64.b64encode(os.urandom(32)).decode()
    monkeypatch.setenv("GRIDFLOW_DATA_KEY", old)
    crypto.reset()
    try:
        token = crypto.seal(IDN, "resident.id_number")
        old_index = crypto.blind(IDN, "resident.id_number")
        monkeypatch.setenv("GRIDFLOW_DATA_KEY", new)
        monkeypatch.setenv("GRIDFLOW_DATA_KEYS_OLD", old)
        crypto.reset()
        assert crypto.unseal(token, "resident.id_number") == IDN  # the old key still opens
        assert old_index in crypto.blinds(IDN, "resident.id_number")  # and lookups still match
        assert crypto.key_id(crypto.seal(IDN, "resident.id_number")) != crypto.key_id(token)
        monkeypatch.delenv("GRIDFLOW_DATA_KEYS_OLD")
        crypto.reset()
        with pytest.raises(ValueError):
            crypto.unseal(token, "resident.id_number")
        monkeypatch.delenv("GRIDFLOW_DATA_KEY")
        monkeypatch.setenv("GRIDFLOW_ENV", "production")
        crypto.reset()
        from grid.config import ConfigError

        with pytest.raises(ConfigError):
            crypto.keyring()
    finally:
        crypto.reset()
