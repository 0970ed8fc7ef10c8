"""Attachments (photos and files): stored on disk under `settings.uploads`, outside the static root.

* The bytes decide the type (magic numbers), not the client's Content-Type or the file name:
  JPEG, PNG, WebP, HEIC/HEIF and PDF only, at most MAX_BYTES each.
* The client's file name is only a label. A name that carries a path (`/`, `\\`, `..`) is
  refused outright; the rest is cleaned (Chinese kept) and its extension follows the real type.
  The storage key is a random UUID, never derived from the name.
* Reading an attachment is authorised: an attachment linked to a case follows the case
  (jurisdiction, or an open task on it); one uploaded before its case exists (the report page)
  belongs to its uploader until `link` attaches it to the new case.
"""
from __future__ import annotations

import hashlib
import os
import re
import unicodedata
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from sqlalchemy import select
from sqlalchemy.orm import Session

from engine import clock
from engine.errors import InvalidData, NotFound
from engine.models import WorkItem
from grid.cases import service as cases
from grid.cases.models import Attachment, DisputeCase
from grid.org import service as org

MAX_BYTES = 10 * 1024 * 1024
IMAGE_TYPES = {"image/jpeg": ".jpg", "image/png": ".png", "image/webp": ".webp", "image/heic": ".heic"}
FILE_TYPES = {**IMAGE_TYPES, "application/pdf": ".pdf"}
_HEIC_BRANDS = {b"heic", b"heix", b"heim", b"heis", b"hevc", b"hevx", b"mif1", b"msf1"}
_NAME_OK = re.compile(r"[^\w\u3000-\u303f\uff00-\uffef .()\[\]\-+]", re.UNICODE)


class UploadRefused(InvalidData):
    """An upload that is not stored; `code` is one of name, type, size, empty."""

    def __init__(self, code: str, message: str, field: str = ""):
        super().__init__(message, [{"path": field, "message": message, "validator": "upload", "code": code}])
        self.code = code


@dataclass(frozen=True)
class StoredFile:
    id: str
    filename: str
    content_type: str
    size: int
    case_id: int | None

    @property
    def is_image(self) -> bool:
        return self.content_type in IMAGE_TYPES


def _view(a: Attachment) -> StoredFile:
    return StoredFile(a.id, a.filename, a.content_type, a.size, a.case_id)


# ---- checks ----------------------------------------------------------------------------------
def sniff(head: bytes) -> str | None:
    """The content type the first bytes prove, among the accepted ones, or None."""
    if head.startswith(b"\xff\xd8\xff"):
        return "image/jpeg"
    if head.startswith(b"\x89PNG\r\n\x1a\n"):
        return "image/png"
    if head[:4] == b"RIFF" and head[8:12] == b"WEBP":
        return "image/webp"
    if head[4:8] == b"ftyp" and head[8:12] in _HEIC_BRANDS:
        return "image/heic"
    if head.startswith(b"%PDF-"):
        return "application/pdf"
    return None


def clean_name(name: str | None, content_type: str) -> str:
    """A display name safe to store and to send back in Content-Disposition.

    Refuses names carrying a path (or NUL); keeps letters of any script (Chinese included),
    digits and a few punctuation marks; the extension is the one of the real type.
    """
    raw = name or ""
    # compatibility forms first: a fullwidth "．．／" is "../" to anything that folds it later
    # (the ASCII fallback of Content-Disposition does), so it is judged as that
    folded = unicodedata.normalize("NFKC", raw)
    if any("\x00" in s or "/" in s or "\\" in s or ".." in s for s in (raw, folded)):
        raise UploadRefused("name", "the file name must not contain a path")
    text = unicodedata.normalize("NFC", raw)
    text = "".join(ch for ch in text if unicodedata.category(ch)[0] != "C").lstrip(". ")
    stem = text.rsplit(".", 1)[0] if "." in text else text
    stem = _NAME_OK.sub("_", stem)
    stem = re.sub(r"\s+", " ", stem).strip(" ._") or "file"
    return stem[:80] + FILE_TYPES[content_type]


def _root(svc) -> Path:
    return Path(svc.settings.uploads).resolve()


def _path(svc, storage_key: str) -> Path:
    root = _root(svc)
    path = (root / storage_key).resolve()
    if root not in path.parents:  # defence in depth: keys are ours, but never leave the root
        raise NotFound("no such attachment")
    return path


# ---- who may see what ------------------------------------------------------------------------
def may_see_case(s: Session, staff_id: str, c: DisputeCase) -> bool:
    """Jurisdiction over the case's grid, or an open task on it that the person may complete."""
    if any(c.unit_path.startswith(p) for p in org.jurisdiction_paths(s, staff_id)):
        return True
    if c.instance_id is None:
        return False
    items = s.scalars(select(WorkItem).where(WorkItem.instance_id == c.instance_id, WorkItem.state == "open"))
    return any(cases.can_act(s, staff_id, w) for w in items)


def _visible_case(s: Session, staff_id: str, case_id: int) -> DisputeCase:
    c = s.get(DisputeCase, case_id)
    if c is None or not may_see_case(s, staff_id, c):
        raise NotFound("no such case")
    return c


# ---- operations ------------------------------------------------------------------------------
def store(svc, staff_id: str, filename: str | None, stream: BinaryIO, *, case_id: int | None = None,
          unit_code: str | None = None, images_only: bool = False, field: str = "") -> StoredFile:
    """Check and store one upload; returns its record. Nothing is written if a check fails."""
    data = stream.read(MAX_BYTES + 1)
    if not data:
        raise UploadRefused("empty", "the file is empty", field)
    if len(data) > MAX_BYTES:
        raise UploadRefused("size", f"the file is larger than {MAX_BYTES // (1024 * 1024)} MB", field)
    ctype = sniff(data[:32])
    allowed = IMAGE_TYPES if images_only else FILE_TYPES
    if ctype not in allowed:
        raise UploadRefused("type", "this file type is not accepted", field)
    try:
        name = clean_name(filename, ctype)
    except UploadRefused as e:
        raise UploadRefused(e.code, str(e), field) from None
    with svc.db.read() as s:
        if case_id is not None:
            unit_code = _visible_case(s, staff_id, case_id).grid_code
    att_id = str(uuid.uuid4())
    key = f"{att_id[:2]}/{att_id}"
    path = _path(svc, key)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".part")
    with open(tmp, "wb") as f:
        f.write(data)
    os.chmod(tmp, 0o640)
    os.replace(tmp, path)
    try:
        with svc.db.write() as s:
            row = Attachment(id=att_id, case_id=case_id, unit_code=unit_code, uploaded_by=staff_id, filename=name,
                             content_type=ctype, size=len(data), sha256=hashlib.sha256(data).hexdigest(),
                             storage_key=key, created_at=clock.now())
            s.add(row)
        return _view(row)
    except Exception:
        path.unlink(missing_ok=True)
        raise


def usable(svc, staff_id: str, ids: list[str], case_id: int | None = None) -> list[StoredFile]:
    """The attachments `ids` if this person may put them in a form: their own unlinked uploads, or
    ones already on `case_id` (which they may see). Raises InvalidData for anything else."""
    if not ids:
        return []
    with svc.db.read() as s:
        rows = {a.id: a for a in s.scalars(select(Attachment).where(Attachment.id.in_(ids)))}
        ok = []
        for i in ids:
            a = rows.get(i)
            if a is None or not ((a.case_id is None and a.uploaded_by == staff_id)
                                 or (case_id is not None and a.case_id == case_id)):
                raise InvalidData("unknown attachment", [{"path": "", "message": f"unknown attachment {i}",
                                                          "validator": "upload", "code": "unknown"}])
            ok.append(_view(a))
        if case_id is not None and any(a.case_id == case_id for a in ok):
            _visible_case(s, staff_id, case_id)
        return ok


def link(svc, staff_id: str, ids: list[str], case_id: int) -> int:
    """Attach the person's unlinked uploads to a case (after reporting it, or completing a task)."""
    if not ids:
        return 0
    with svc.db.write() as s:
        c = _visible_case(s, staff_id, case_id)
        n = 0
        for a in s.scalars(select(Attachment).where(Attachment.id.in_(ids), Attachment.case_id.is_(None),
                                                    Attachment.uploaded_by == staff_id)):
            a.case_id, a.unit_code = case_id, c.grid_code
            n += 1
        return n


def open_for(svc, staff_id: str, attachment_id: str) -> tuple[StoredFile, Path]:
    """The attachment and the path of its bytes, if this person may see it; else NotFound."""
    with svc.db.read() as s:
        a = s.get(Attachment, attachment_id)
        if a is None:
            raise NotFound("no such attachment")
        if a.case_id is None:
            if a.uploaded_by != staff_id:
                raise NotFound("no such attachment")
        else:
            _visible_case(s, staff_id, a.case_id)
        view, key = _view(a), a.storage_key
    path = _path(svc, key)
    if not path.is_file():
        raise NotFound("the attachment's file is missing")
    return view, path


def for_case(svc, case_id: int) -> list[StoredFile]:
    """Every attachment of a case, oldest first (the caller has authorised the case)."""
    with svc.db.read() as s:
        return [_view(a) for a in s.scalars(select(Attachment).where(Attachment.case_id == case_id)
                                            .order_by(Attachment.created_at, Attachment.id))]
