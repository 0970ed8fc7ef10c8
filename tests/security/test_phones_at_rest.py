"""Issue 17, personal data: a case party's phone is sealed at rest (grid.crypto, context
case.party_phone) like a resident's, read back as entered by the code, and masked on the case page
for those who may not see it in full."""
from __future__ import annotations

from pathlib import Path

from sqlalchemy import text

from grid import crypto
from grid.cases.models import PARTY_PHONE, DisputeCase
from tests.web_helpers import login, report_case

PHONES = ("13800000001", "13800000002")  # the parties of tests.web_helpers.REPORT


def test_party_phones_are_sealed_in_the_case_row_and_read_back(svc):
    c = report_case(svc)
    with svc.db.read() as s:
        raw = s.execute(text("SELECT parties FROM dispute_case WHERE id = :i"), {"i": c.id}).scalar_one()
        assert [p["phone"] for p in s.get(DisputeCase, c.id).parties] == list(PHONES)
    stored = str(raw)
    for phone in PHONES:
        assert phone not in stored
    assert stored.count(crypto.PREFIX + "$") == 2
    tokens = [p["phone"] for p in (raw if isinstance(raw, list) else __import__("json").loads(raw))]
    assert [crypto.unseal(t, PARTY_PHONE) for t in tokens] == list(PHONES)


def test_the_case_page_masks_party_phones_for_those_who_may_not_see_them(app, svc):
    c = report_case(svc)
    reporter = login(app, "jiangranran").get(f"/cases/{c.id}").get_data(as_text=True)
    assert PHONES[0] in reporter  # the reporter sees the numbers she entered
    city = login(app, "disp1.420600000000").get(f"/cases/{c.id}").get_data(as_text=True)
    assert "138****0001" in city and PHONES[0] not in city


def test_the_sqlite_file_holds_no_party_phone(sqlite_db, tmp_path):
    from grid.cases.scenario import prepare
    from tests.conftest import ROOT

    svc = prepare(sqlite_db, ROOT / "workflows", ROOT / "forms")
    report_case(svc)
    sqlite_db.dispose()
    raw = Path(sqlite_db.engine.url.database).read_bytes()
    for phone in PHONES:
        assert phone.encode() not in raw, phone
