"""Signatures are stored only once the form is valid (issue 12, scope 6), on SQLite and PostgreSQL:
a refused verify form leaves no attachment row and no file in the upload store (neither the
drawing of the refused field nor a good drawing beside it), and of two submissions of the same
form racing each other only the one that completes the task keeps its drawings: every file in
the store belongs to a row linked to the case, and no row is left pending."""
from __future__ import annotations

import base64
import io
import threading

from PIL import Image, ImageDraw
from sqlalchemy import select

from grid.cases import service as cases
from grid.cases.models import Attachment
from tests.web_helpers import dispatch, fingerprint, login, open_items, page_form, report_case

REPORTER = "jiangranran"


def drawing(size=(600, 200), ink: bool = True) -> str:
    img = Image.new("RGBA", size, (0, 0, 0, 0))
    if ink:
        ImageDraw.Draw(img).line([(20, 150), (200, 40), (380, 160), (560, 50)], fill=(17, 17, 17, 255), width=6)
    out = io.BytesIO()
    img.save(out, format="PNG")
    return "data:image/png;base64," + base64.b64encode(out.getvalue()).decode()


def to_verify(svc):
    c = report_case(svc)
    dispatch(svc, c.id)
    for item in open_items(svc, c.id, "mediate"):
        cases.complete_task(svc, item.user_id, item.task_guid, {"outcome": "resolved", "notes": "已调解"})
    return c, open_items(svc, c.id, "verify")[0].task_guid


def stored_files(svc) -> set[str]:
    root = svc.settings.uploads
    return {str(p.relative_to(root)) for p in root.rglob("*") if p.is_file()} if root.exists() else set()


def rows(svc) -> list[Attachment]:
    with svc.db.read() as s:
        return list(s.scalars(select(Attachment)))


def test_a_refused_form_stores_no_signature_row_and_no_file(app, svc):
    c, guid = to_verify(svc)
    client = login(app, REPORTER)
    _, token, lock = page_form(client, f"/tasks/{guid}")
    before, files = fingerprint(svc, c.id), stored_files(svc)
    refusals = [
        # a good drawing, but the form lacks its required answer
        {"signature": "江冉冉", "signature.png": drawing()},
        # a good drawing beside a blank one: the whole form is refused, the good one is not kept
        {"satisfied": "true", "signature": "江冉冉", "signature.png": drawing(),
         "resident_signer": "南山居民代表", "resident_signer.png": drawing(ink=False)},
        # a good drawing, but the typed name is too short
        {"satisfied": "true", "signature": "江", "signature.png": drawing()},
    ]
    for data in refusals:
        r = client.post(f"/tasks/{guid}", data={"csrf_token": token, "lock_version": lock, **data})
        assert r.status_code == 422, data
        assert rows(svc) == [] and stored_files(svc) == files, data
    assert fingerprint(svc, c.id) == before
    # the same drawing on a valid form is stored once, linked to the case, with its renditions
    r = client.post(f"/tasks/{guid}", data={"csrf_token": token, "lock_version": lock, "satisfied": "true",
                                            "signature": "江冉冉", "signature.png": drawing()})
    assert r.status_code == 302
    (a,) = rows(svc)
    assert a.case_id == c.id and not a.pending
    assert stored_files(svc) - files == {a.storage_key, f"{a.storage_key}.thumb", f"{a.storage_key}.screen"}


def test_of_two_racing_submissions_only_the_winners_drawings_are_kept(app, svc):
    c, guid = to_verify(svc)
    clients = [login(app, REPORTER) for _ in range(2)]
    forms = [page_form(cl, f"/tasks/{guid}") for cl in clients]
    statuses: list[int] = []
    start = threading.Barrier(2)

    def submit(cl, token, lock):
        start.wait()
        r = cl.post(f"/tasks/{guid}", data={"csrf_token": token, "lock_version": lock, "satisfied": "true",
                                            "signature": "江冉冉", "signature.png": drawing(),
                                            "resident_signer": "南山居民代表", "resident_signer.png": drawing((500, 180))})
        statuses.append(r.status_code)

    threads = [threading.Thread(target=submit, args=(cl, tok, lock)) for cl, (_, tok, lock) in zip(clients, forms,
                                                                                                  strict=True)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(statuses) == [302, 409], statuses
    kept = rows(svc)
    assert len(kept) == 2 and all(a.case_id == c.id and not a.pending for a in kept), "the winner's two drawings"
    expected = {k for a in kept for k in (a.storage_key, f"{a.storage_key}.thumb", f"{a.storage_key}.screen")}
    assert stored_files(svc) == expected, "the loser left no file behind"
