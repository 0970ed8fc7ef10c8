"""`gridflow registry rekey` (issue 17, personal data: rotation). With a new current key and the old
one among GRIDFLOW_DATA_KEYS_OLD, everything still reads and lookups still match while the rekey
runs; the rekey rewrites every sealed value (ID numbers, phones, their blind indexes, the sealed
fields of the history) in batches and can be interrupted and run again; afterwards, with the old key
removed from the configuration, everything still reads and is found, and the SQLite file holds
neither the ID number nor the phone in plain bytes."""
from __future__ import annotations

import base64
import os
from datetime import date
from pathlib import Path

import pytest
from click.testing import CliRunner
from sqlalchemy import select

from grid import crypto
from grid.cases.models import DisputeCase
from grid.org.models import Staff
from grid.registry import households, rekey, rules
from grid.registry.models import Resident, ResidentEvent
from tests.registry_helpers import household, make_id, person, sid
from tests.web_helpers import SEED_GRID, report_case

IDN = make_id("420602", date(1970, 5, 1), 11)
PHONE, NEW_PHONE = "13812341234", "13987654321"
STAFF_PHONE = "13655554444"


def _raw_current() -> str:
    return os.environ.get("GRIDFLOW_DATA_KEY", "").strip() or crypto.KEY_FILE.read_text().strip()


@pytest.fixture
def keys(monkeypatch):
    """(old, new) keys as configured text; the new one becomes current (the old one still opens)."""
    crypto.keyring()
    old = _raw_current()
    new = base64.b64encode(os.urandom(32)).decode()
    yield old, new, monkeypatch
    crypto.reset()


def _switch(monkeypatch, current: str, old: str = "") -> None:
    monkeypatch.setenv("GRIDFLOW_DATA_KEY", current)
    monkeypatch.setenv("GRIDFLOW_DATA_KEYS_OLD", old)
    crypto.reset()


def _family(svc) -> tuple[int, int]:
    report_case(svc)  # two parties with phones
    gw = sid(svc, "jiangranran")
    hid = household(svc, gw, SEED_GRID, "檀溪路1号1栋", "1-101")
    rid = person(svc, gw, hid, "张建国", date(1970, 5, 1), 11, "head", phone=PHONE)
    for i in range(6):
        person(svc, gw, hid, f"家人{i}", date(1990 + i, 1, 2), 31 + 2 * i, "child", phone=f"1391234000{i}")
    households.update_resident(svc, gw, rid, {"phone": NEW_PHONE}, note="换号")  # the history seals both
    with svc.db.write() as s:  # a staff member's phone, sealed like the residents'
        s.get(Staff, gw).phone = STAFF_PHONE
    return gw, rid


def _reads_everything(svc, rid: int) -> None:
    with svc.db.read() as s:
        people = list(s.scalars(select(Resident)))
        assert all(p.id_number is None or len(p.id_number) == 18 for p in people)
        assert all(p.phone is None or p.phone.isdigit() for p in people)
        found = rules.find_by_id_number(s, IDN)
        assert found is not None and found.id == rid and found.phone == NEW_PHONE
        for e in s.scalars(select(ResidentEvent).where(ResidentEvent.resident_id == rid)):
            for d in (rules.opened(e.before), rules.opened(e.after)):
                assert all(v is None or not crypto.is_sealed(v) for v in d.values())
        assert s.scalar(select(Resident.id).where(Resident.phone_index.in_(crypto.blinds(NEW_PHONE, "resident.phone")))) == rid
        assert [p["phone"] for p in s.scalars(select(DisputeCase)).first().parties] == ["13800000001", "13800000002"]
        assert s.scalar(select(Staff.phone).where(Staff.username == "jiangranran")) == STAFF_PHONE


def _kids(svc) -> set[str]:
    r = rekey._resident
    with svc.db.read() as s:
        return {crypto.key_id(t) for row in s.execute(select(r.c.id_number, r.c.phone)) for t in row if t}


def test_rekey_rotates_every_value_and_the_old_key_can_go(reg, keys):
    old, new, mp = keys
    _gw, rid = _family(reg)
    old_kid = crypto.keyring().current.kid
    _switch(mp, new, old)
    new_kid = crypto.keyring().current.kid
    assert new_kid != old_kid and _kids(reg) == {old_kid}
    _reads_everything(reg, rid)  # during the rotation: the old key still opens, lookups match both indexes

    # an interrupted run: one batch of two residents, then the rest by running it again
    with reg.db.write() as s:
        n, _last = rekey._residents_batch(s, new_kid, 0, 2)
    assert n == 2 and _kids(reg) == {old_kid, new_kid}
    seen = []
    res = rekey.rekey(reg, batch=3, progress=lambda d, t, note: seen.append((d, t, note)))
    assert res.rewritten["resident"] == 7 - 2 and res.rewritten["resident_event"] >= 8
    assert seen[-1][0] == seen[-1][1] and any(note == "resident" for _d, _t, note in seen)
    assert _kids(reg) == {new_kid}
    assert rekey.rekey(reg).rewritten["resident"] == 0  # nothing done twice
    left = rekey.remaining(reg)
    assert left["resident"] == left["resident_event"] == left["instance_state"] == left["case_parties"] == 0
    assert res.rewritten["case_parties"] == 1
    assert left["staff"] == 0 and res.rewritten["staff"] >= 1

    _switch(mp, new)  # the old key removed from the configuration
    assert list(crypto.keyring().by_id) == [new_kid]
    _reads_everything(reg, rid)

    if reg.db.url.startswith("sqlite"):
        reg.db.dispose()  # checkpoint the WAL into the file
        raw = Path(reg.db.engine.url.database).read_bytes()
        for plain in (IDN, PHONE, NEW_PHONE, "13912340003", STAFF_PHONE):
            assert plain.encode() not in raw, plain


def test_the_cli_rekeys_and_checks(reg, keys, monkeypatch):
    old, new, mp = keys
    _family(reg)
    _switch(mp, new, old)
    from web.cli import main

    monkeypatch.setenv("GRIDFLOW_DATABASE_URL", reg.db.url_with_password)  # restored after the test
    runner = CliRunner()
    r = runner.invoke(main, ["registry", "rekey", "--check"])
    assert r.exit_code == 1 and "resident=7" in r.output, r.output
    r = runner.invoke(main, ["registry", "rekey", "--batch", "2"])
    assert r.exit_code == 0 and "resident=7" in r.output and "not under the current key: resident=0" in r.output, r.output
    r = runner.invoke(main, ["registry", "rekey", "--check"])
    assert r.exit_code == 0, r.output
