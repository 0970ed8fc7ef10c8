"""What a migration record keeps to revert: the state before (compressed) and the open work
items before, as JSON."""
from __future__ import annotations

import base64
import zlib
from datetime import datetime

from ..models import WorkItem

WI_FIELDS = ("id", "task_guid", "task_spec", "process_id", "name", "form", "unit_id", "role", "user_id", "state",
             "created_at", "warn_at", "due_at", "closed_at", "closed_by", "props")


def row_dict(w: WorkItem) -> dict:
    """A work-item row as JSON (what a record keeps of the open items before the move)."""
    d = {k: getattr(w, k) for k in WI_FIELDS}
    for k in ("created_at", "warn_at", "due_at", "closed_at"):
        d[k] = d[k].isoformat() if d[k] else None
    return d


def pack(state: str) -> str:
    """The pre-migration state, compressed (a record keeps it only to revert)."""
    return "zlib:" + base64.b64encode(zlib.compress(state.encode("utf-8"), 6)).decode("ascii")


def unpack(text: str) -> str:
    """The state `pack` stored (older records hold it uncompressed)."""
    return zlib.decompress(base64.b64decode(text[5:])).decode("utf-8") if text.startswith("zlib:") else text


def row_values(d: dict) -> dict:
    """Column values back from `row_dict` (without the id), for restoring a work item in place."""
    out = {k: d[k] for k in WI_FIELDS if k != "id"}
    for k in ("created_at", "warn_at", "due_at", "closed_at"):
        out[k] = datetime.fromisoformat(out[k]) if out[k] else None
    return out
