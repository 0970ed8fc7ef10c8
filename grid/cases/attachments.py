"""Attachments (photos, voice notes, videos, files): bytes in the configured store
(`grid.storage`: a local or shared directory, or an S3-compatible bucket), records in the database.

* The bytes decide the type (`grid.cases.media.sniff`), not the client's Content-Type or the
  file name; each kind has its own size limit (GRIDFLOW_MAX_*_MB).
* The client's file name is only a label. A name that carries a path (`/`, `\\`, `..`) is
  refused outright; the rest is cleaned (Chinese kept) and its extension follows the real type.
  The storage key is a random UUID, never derived from the name.
* **Checked before stored.** A form's uploads are `check`ed while the form is read (nothing
  written), and `save`d only once the whole form is valid, as `pending`; `link` (to a case) or
  `keep` makes them permanent when the step has gone through, `discard` removes them when it has
  not. A refused form stores nothing; what a crash leaves pending, or bytes without a record, is
  removed by `cleanup` after the grace period (a periodic job and `gridflow uploads cleanup`).
* Photos are stored with a thumbnail and a screen rendition (upright, no EXIF/GPS); pages show
  those, the original goes out only as a download.
* Reading an attachment is authorised: an attachment linked to a case follows the case
  (jurisdiction, or an open task on it); one not linked (an upload before its case exists, a
  visit's photo) belongs to its uploader.
"""
from __future__ import annotations

import hashlib
import re
import unicodedata
import uuid
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import BinaryIO

from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from engine import clock
from engine.errors import InvalidData, NotFound
from engine.models import WorkItem
from grid import storage
from grid.cases import media
from grid.cases import service as cases
from grid.cases.models import Attachment, DisputeCase
from grid.org import service as org

MAX_BYTES = 10 * 1024 * 1024  # the default photo limit (GRIDFLOW_MAX_PHOTO_MB)
IMAGE_TYPES = {t: ext for t, (kind, ext) in media.TYPES.items() if kind == "photo"}
FILE_TYPES = {t: ext for t, (_kind, ext) in media.TYPES.items()}
DEFAULT_KINDS = frozenset({"photo", "document"})
_NAME_OK = re.compile(r"[^\w\u3000-\u303f\uff00-\uffef .()\[\]\-+]", re.UNICODE)


class UploadRefused(InvalidData):
    """An upload that is not stored; `code` is one of name, type, size, empty, damaged.
    `limit_mb` is the limit a `size` refusal was measured against."""

    def __init__(self, code: str, message: str, field: str = "", limit_mb: float | None = None):
        super().__init__(message, [{"path": field, "message": message, "validator": "upload", "code": code}])
        self.code, self.limit_mb = code, limit_mb


@dataclass(frozen=True)
class StoredFile:
    id: str
    filename: str
    content_type: str
    size: int
    case_id: int | None

    @property
    def kind(self) -> str:
        return media.kind_of(self.content_type)

    @property
    def is_image(self) -> bool:
        return self.kind == "photo"

    @property
    def playable(self) -> bool:
        """Audio or video a browser plays inline (AMR and 3GP are offered as downloads)."""
        return self.content_type in media.BROWSER_PLAYS


@dataclass(frozen=True)
class Checked:
    """An upload that passed every check and is not stored yet (`save` stores it)."""

    id: str
    filename: str
    content_type: str
    data: bytes

    @property
    def size(self) -> int:
        return len(self.data)


@dataclass(frozen=True)
class Content:
    """Bytes to send: a local file (ranged requests, sendfile) or the bytes from a remote store."""

    content_type: str
    etag: str
    path: Path | None = None
    data: bytes | None = None


def _view(a: Attachment) -> StoredFile:
    return StoredFile(a.id, a.filename, a.content_type, a.size, a.case_id)


def _store(svc) -> storage.Store:
    return storage.from_settings(svc.settings)


def limit_mb(settings, kind: str) -> float:
    return float(getattr(settings, f"max_{kind}_mb"))


# ---- checks ----------------------------------------------------------------------------------
def sniff(head: bytes) -> str | None:
    """The content type the bytes prove, among the accepted ones, or None (see media.sniff)."""
    return media.sniff(head)


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


def check(svc, filename: str | None, stream: BinaryIO, *, kinds: frozenset[str] | set[str] | None = None,
          images_only: bool = False, field: str = "") -> Checked:
    """Every check an upload gets, without storing anything: type by content among `kinds`,
    the kind's size limit, a photo that decodes, a clean name. Raises UploadRefused."""
    kinds = frozenset({"photo"}) if images_only else frozenset(kinds or DEFAULT_KINDS)
    biggest = max(limit_mb(svc.settings, k) for k in kinds)
    data = stream.read(int(biggest * 1024 * 1024) + 1)
    if not data:
        raise UploadRefused("empty", "the file is empty", field)
    ctype = media.sniff(data)
    if ctype is None or media.kind_of(ctype) not in kinds:
        raise UploadRefused("type", "this file type is not accepted", field)
    limit = limit_mb(svc.settings, media.kind_of(ctype))
    if len(data) > limit * 1024 * 1024:
        raise UploadRefused("size", f"the file is larger than {limit:g} MB", field, limit)
    if media.kind_of(ctype) == "photo":
        try:
            media.probe(data)
        except media.BadImage:
            raise UploadRefused("damaged", "the photo cannot be read", field) from None
    try:
        name = clean_name(filename, ctype)
    except UploadRefused as e:
        raise UploadRefused(e.code, str(e), field) from None
    return Checked(str(uuid.uuid4()), name, ctype, data)


def _keys(key: str) -> list[str]:
    return [key] + [f"{key}.{r}" for r in media.RENDITIONS]


def _write(st: storage.Store, key: str, c: Checked) -> None:
    st.put(key, c.data, c.content_type)
    if media.kind_of(c.content_type) == "photo":
        try:
            _write_renditions(st, key, c.data)
        except media.BadImage:
            pass  # the original is kept; the page shows the file name instead of a picture


def _write_renditions(st: storage.Store, key: str, original: bytes) -> None:
    for r in media.renditions(original):
        st.put(f"{key}.{r.name}", r.data, r.content_type)


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
def save(svc, staff_id: str, items: list[Checked], *, case_id: int | None = None, unit_code: str | None = None,
         pending: bool = True) -> list[StoredFile]:
    """Store checked uploads (bytes and renditions first, then the rows in one transaction).
    `pending` ones wait for `link`/`keep`; if anything fails, what was written is removed."""
    if not items:
        return []
    if case_id is not None:
        with svc.db.read() as s:
            unit_code = _visible_case(s, staff_id, case_id).grid_code
    st, written = _store(svc), []
    try:
        rows = []
        for c in items:
            key = f"{c.id[:2]}/{c.id}"
            written.append(key)
            _write(st, key, c)
            rows.append(Attachment(id=c.id, case_id=case_id, unit_code=unit_code, uploaded_by=staff_id,
                                   filename=c.filename, content_type=c.content_type, size=c.size,
                                   sha256=hashlib.sha256(c.data).hexdigest(), storage_key=key,
                                   created_at=clock.now(), pending=pending and case_id is None))
        with svc.db.write() as s:
            s.add_all(rows)
        return [_view(r) for r in rows]
    except Exception:
        for key in written:
            for k in _keys(key):
                st.delete(k)
        raise


def store(svc, staff_id: str, filename: str | None, stream: BinaryIO, *, case_id: int | None = None,
          unit_code: str | None = None, images_only: bool = False, kinds: frozenset[str] | None = None,
          field: str = "", pending: bool = False) -> StoredFile:
    """Check and store one upload at once (for callers that have validated the rest already,
    such as a drawn signature); returns its record. Nothing is written if a check fails."""
    c = check(svc, filename, stream, kinds=kinds, images_only=images_only, field=field)
    return save(svc, staff_id, [c], case_id=case_id, unit_code=unit_code, pending=pending)[0]


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
            if a is None or a.pending or not ((a.case_id is None and a.uploaded_by == staff_id)
                                              or (case_id is not None and a.case_id == case_id)):
                raise InvalidData("unknown attachment", [{"path": "", "message": f"unknown attachment {i}",
                                                          "validator": "upload", "code": "unknown"}])
            ok.append(_view(a))
        if case_id is not None and any(a.case_id == case_id for a in ok):
            _visible_case(s, staff_id, case_id)
        return ok


def link(svc, staff_id: str, ids: list[str], case_id: int) -> int:
    """Attach the person's unlinked uploads to a case (after reporting it, or completing a task);
    pending ones become permanent."""
    if not ids:
        return 0
    with svc.db.write() as s:
        c = _visible_case(s, staff_id, case_id)
        n = 0
        for a in s.scalars(select(Attachment).where(Attachment.id.in_(ids), Attachment.case_id.is_(None),
                                                    Attachment.uploaded_by == staff_id)):
            a.case_id, a.unit_code, a.pending = case_id, c.grid_code, False
            n += 1
        return n


def keep(svc, staff_id: str, ids: list[str]) -> int:
    """Make the person's pending uploads permanent without a case (a finished form that has
    none, such as a household visit): they stay the uploader's."""
    if not ids:
        return 0
    with svc.db.write() as s:
        rows = list(s.scalars(select(Attachment).where(Attachment.id.in_(ids), Attachment.uploaded_by == staff_id,
                                                       Attachment.pending.is_(True))))
        for a in rows:
            a.pending = False
        return len(rows)


def discard(svc, staff_id: str, ids: list[str]) -> int:
    """Remove the person's pending uploads (the step they were for did not go through)."""
    if not ids:
        return 0
    with svc.db.write() as s:
        rows = list(s.scalars(select(Attachment).where(Attachment.id.in_(ids), Attachment.uploaded_by == staff_id,
                                                       Attachment.pending.is_(True), Attachment.case_id.is_(None))))
        keys = [a.storage_key for a in rows]
        for a in rows:
            s.delete(a)
    st = _store(svc)
    for key in keys:
        for k in _keys(key):
            st.delete(k)
    return len(keys)


def _readable(s: Session, staff_id: str, attachment_id: str) -> Attachment:
    a = s.get(Attachment, attachment_id)
    if a is None or (a.case_id is None and a.uploaded_by != staff_id):
        raise NotFound("no such attachment")
    if a.case_id is not None:
        _visible_case(s, staff_id, a.case_id)
    return a


def view_for(svc, staff_id: str, attachment_id: str) -> StoredFile:
    """The attachment's record, if this person may see it; else NotFound."""
    with svc.db.read() as s:
        return _view(_readable(s, staff_id, attachment_id))


def open_for(svc, staff_id: str, attachment_id: str, rendition: str | None = None) -> tuple[StoredFile, Content]:
    """The attachment and its bytes (the original, or a photo's `thumb`/`screen` rendition,
    made now if it was never made), if this person may see it; else NotFound."""
    with svc.db.read() as s:
        a = _readable(s, staff_id, attachment_id)
        view, key, sha = _view(a), a.storage_key, a.sha256
    if rendition is not None and (rendition not in media.RENDITIONS or view.kind != "photo"):
        raise NotFound("no such rendition")
    st = _store(svc)
    name = key if rendition is None else f"{key}.{rendition}"
    if rendition is not None and not st.exists(name):
        try:
            original = st.get(key)
        except storage.Missing:
            raise NotFound("the attachment's file is missing") from None
        try:
            _write_renditions(st, key, original)
        except media.BadImage:
            raise NotFound("this photo has no rendition") from None
    path = st.local_path(name)
    try:
        data = None if path is not None else st.get(name)
    except storage.Missing:
        raise NotFound("the attachment's file is missing") from None
    if path is None and data is None:
        raise NotFound("the attachment's file is missing")
    if rendition is None:
        return view, Content(view.content_type, sha, path, data)
    if data is not None:
        head = data[:8]
    else:
        with open(path, "rb") as f:
            head = f.read(8)
    return view, Content(media.sniff(head) or "image/jpeg", f"{sha[:32]}-{rendition}", path, data)


def for_case(svc, case_id: int) -> list[StoredFile]:
    """Every attachment of a case, oldest first (the caller has authorised the case)."""
    with svc.db.read() as s:
        return for_case_in(s, case_id)


def for_case_in(s: Session, case_id: int) -> list[StoredFile]:
    """`for_case` in the caller's session."""
    return [_view(a) for a in s.scalars(select(Attachment).where(Attachment.case_id == case_id)
                                        .order_by(Attachment.created_at, Attachment.id))]


# ---- housekeeping ----------------------------------------------------------------------------
def cleanup(svc, *, grace: timedelta | None = None) -> dict[str, int]:
    """Remove what no finished form owns, once older than the grace period
    (GRIDFLOW_UPLOAD_GRACE_HOURS): pending uploads (their rows and bytes), and bytes in the
    store that no row names (a crash between writing and recording, a `.part` left behind).
    Younger ones are left alone: a form may be between saving and linking them right now."""
    grace = grace if grace is not None else timedelta(hours=svc.settings.upload_grace_hours)
    cutoff = clock.now() - grace
    with svc.db.write() as s:
        old = list(s.execute(select(Attachment.id, Attachment.storage_key).where(
            Attachment.pending.is_(True), Attachment.created_at < cutoff)))
        if old:
            s.execute(delete(Attachment).where(Attachment.id.in_([i for i, _k in old]),
                                               Attachment.pending.is_(True)))
    st = _store(svc)
    for _i, key in old:
        for k in _keys(key):
            st.delete(k)
    with svc.db.read() as s:
        known = set(s.scalars(select(Attachment.storage_key)))
    stray = 0
    for key, modified in list(st.keys()):
        base = key.removesuffix(".part")
        for r in media.RENDITIONS:
            base = base.removesuffix(f".{r}")
        if base not in known and modified < cutoff:
            st.delete(key)
            stray += 1
    return {"pending": len(old), "stray": stray}
