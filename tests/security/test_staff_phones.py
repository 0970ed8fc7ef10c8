"""Issue 17, personal data: staff phones are sealed at rest (grid.crypto, context staff.phone); the
administrator's staff page shows the number, the database file does not hold it."""
from __future__ import annotations

from pathlib import Path

from sqlalchemy import select, text

from grid import crypto
from grid.org import admin
from grid.org.models import Staff
from tests.web_helpers import login, staff_id


def test_staff_phones_are_sealed_in_the_database(svc, app):
    sid = staff_id(svc, "med1.420602003005")
    admin_id = staff_id(svc, "admin")
    admin.edit_staff(svc, admin_id, sid, phone="13712345678")
    with svc.db.read() as s:
        assert s.get(Staff, sid).phone == "13712345678"
        raw = s.execute(text("SELECT phone FROM staff WHERE id = :i"), {"i": sid}).scalar_one()
        assert crypto.is_sealed(raw) and crypto.unseal(raw, "staff.phone") == "13712345678"
        phones = [p for p in s.scalars(select(Staff.phone)) if p]
        assert phones and all(p.isdigit() for p in phones)
        assert s.scalar(text("SELECT count(*) FROM staff WHERE phone IS NOT NULL AND phone NOT LIKE 'g1$%'")) == 0
    page = login(app, "admin").get(f"/admin/org/staff/{sid}").get_data(as_text=True)
    assert "13712345678" in page
    if svc.db.url.startswith("sqlite"):
        svc.db.dispose()
        data = Path(svc.db.engine.url.database).read_bytes()
        assert b"13712345678" not in data
        assert not any(p.encode() in data for p in phones[:50])
