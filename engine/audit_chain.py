"""Tamper-evident audit: every audit row carries a keyed hash over its canonical content and the
hash of the row before it in its chain, so a quietly edited, removed or inserted row shows.

Chains:
- the events of one instance (`instance_event`, ordered by `seq`, starting at seq 1); the
  instance's `event_seq` is the chain's head (a removed last row shows against it);
- any named chain whose head is a row of `audit_chain_head` (the security audit uses one,
  `security`): `advance` locks the head, so two writers never fork it (PostgreSQL: a
  transaction-scoped advisory lock; SQLite serialises writers with BEGIN IMMEDIATE). A purge
  that removes a chain's oldest rows moves the head's anchor (`anchor_seq`, `anchor_hash`), so
  what is left still verifies from the anchor.

The hash is HMAC-SHA256 under GRIDFLOW_AUDIT_KEY (base64 of 32 random bytes); without it a key
is generated once in instance/audit_key. Someone who can write the database but not read the
key cannot recompute a chain after an edit. See docs/audit.md.

Per instance, writers of one instance's events already exclude each other: every event insert
goes with the conditional update of the instance's `lock_version`, and (instance_id, seq) is
unique. The previous hash is looked up by (instance_id, seq - 1): one indexed read per batch.
"""
from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import os
import secrets
import threading
import zlib
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from sqlalchemy import bindparam, select, text
from sqlalchemy.engine import Connection

from . import clock, keyfile
from .models import ChainHead, Instance, InstanceEvent

ROOT = Path(__file__).resolve().parent.parent
KEY_FILE = ROOT / "instance" / "audit_key"
HASH_LENGTH = 64

_E = InstanceEvent.__table__
_I = Instance.__table__
_H = ChainHead.__table__
INS_EVENTS = _E.insert()
SEL_PREV = select(_E.c.instance_id, _E.c.seq, _E.c.hash).where(
    _E.c.instance_id.in_(bindparam("p_ids", expanding=True)), _E.c.seq.in_(bindparam("p_seqs", expanding=True)))
SEL_HEAD = select(_H.c.seq, _H.c.hash).where(_H.c.name == bindparam("p_name"))
UPD_HEAD = _H.update().where(_H.c.name == bindparam("p_name")).values(
    seq=bindparam("p_seq"), hash=bindparam("p_hash"), updated_at=bindparam("p_now"))

_lock = threading.Lock()
_key: bytes | None = None


class AuditKeyError(RuntimeError):
    """GRIDFLOW_AUDIT_KEY is not usable."""


def _key_file() -> bytes:
    """The generated key of an installation without GRIDFLOW_AUDIT_KEY (created once, O_EXCL)."""
    raw = keyfile.read_or_create(KEY_FILE, lambda: base64.b64encode(secrets.token_bytes(32)).decode())
    if raw is None:
        raise AuditKeyError(f"{KEY_FILE} is empty: set GRIDFLOW_AUDIT_KEY")
    return base64.b64decode(raw)


def key() -> bytes:
    """The chain key: GRIDFLOW_AUDIT_KEY, else the generated instance/audit_key (loaded once)."""
    global _key
    if _key is None:
        with _lock:
            if _key is None:
                raw = os.environ.get("GRIDFLOW_AUDIT_KEY", "").strip()
                if raw:
                    try:
                        k = base64.b64decode(raw, validate=True)
                    except (binascii.Error, ValueError):
                        raise AuditKeyError("GRIDFLOW_AUDIT_KEY is not base64") from None
                    if len(k) < 32:
                        raise AuditKeyError("GRIDFLOW_AUDIT_KEY must be base64 of at least 32 bytes")
                else:
                    k = _key_file()
                _key = k
    return _key


def reset() -> None:
    """Forget the loaded key (tests that change the environment)."""
    global _key
    _key = None


# ---- hashing -------------------------------------------------------------------------------------
def at_text(v: datetime | str | None) -> str | None:
    """A time as the chain hashes it: ISO text in UTC."""
    if isinstance(v, datetime):
        return clock.to_utc(v).isoformat()
    return v


def canonical(values: Sequence) -> bytes:
    """One row's content as bytes that survive the database round trip (sorted keys, UTC times)."""
    return json.dumps(list(values), sort_keys=True, ensure_ascii=False, separators=(",", ":"),
                      default=str).encode()


def link(prev: str | None, payload: bytes) -> str:
    """The hash of a row: HMAC(key, previous hash, content)."""
    mac = hmac.new(key(), (prev or "").encode() + b"\n", hashlib.sha256)
    mac.update(payload)
    return mac.hexdigest()


def event_content(row, seq: int | None = None) -> bytes:
    """The canonical content of an `instance_event` row (a dict or a Row), at its seq or `seq`."""
    g = row.get if isinstance(row, dict) else row._mapping.get
    data = g("data")
    return canonical([g("instance_id"), g("seq") if seq is None else seq, at_text(g("at")), g("actor"), g("kind"), g("task"),
                      {} if data is None else data])


# ---- writing instance events ---------------------------------------------------------------------
def seal_events(conn: Connection, rows: list[dict]) -> list[dict]:
    """Fill each new event row's `hash` (rows of one instance in seq order), looking up the hash
    of the row before the first new one of each instance. Returns `rows`."""
    last: dict[int, tuple[int, str]] = {}
    wanted = {}
    for r in rows:
        iid, seq = r["instance_id"], r["seq"]
        if iid not in wanted and seq > 1:
            wanted[iid] = seq - 1
        wanted.setdefault(iid, 0)
    need = {(i, s) for i, s in wanted.items() if s > 0}
    if need:
        found = conn.execute(SEL_PREV, {"p_ids": sorted({i for i, _ in need}),
                                        "p_seqs": sorted({s for _, s in need})}).all()
        for iid, seq, h in found:
            if (iid, seq) in need:
                last[iid] = (seq, h)
    for r in rows:
        iid = r["instance_id"]
        prev = last.get(iid)
        prev_hash = prev[1] if prev is not None and prev[0] == r["seq"] - 1 else None
        r["hash"] = link(prev_hash, event_content(r))
        last[iid] = (r["seq"], r["hash"])
    return rows


def insert_events(conn: Connection, rows: list[dict]) -> None:
    """Insert instance events with their chain hashes (the caller bumped the instance's event_seq)."""
    if rows:
        conn.execute(INS_EVENTS, seal_events(conn, rows))


# ---- named chains (a head row) -------------------------------------------------------------------
def lock_head(conn: Connection, name: str) -> tuple[int, str | None]:
    """Lock chain `name` until the transaction ends (creating its head row); its (seq, hash)."""
    if conn.dialect.name == "postgresql":
        conn.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": zlib.crc32(b"gridflow chain " + name.encode())})
    row = conn.execute(SEL_HEAD, {"p_name": name}).first()
    if row is None:
        conn.execute(_H.insert().values(name=name, seq=0, hash=None, anchor_seq=0, anchor_hash=None,
                                        updated_at=clock.now()))
        return 0, None
    return row.seq, row.hash


def advance(conn: Connection, name: str, contents: Iterable[Callable[[int], bytes]]) -> list[tuple[int, str]]:
    """Append rows to the chain `name`: each callable gets the row's seq and returns its canonical
    content. Holds the head until the transaction ends; returns (seq, hash) per row."""
    seq, prev = lock_head(conn, name)
    out = []
    for content in contents:
        seq += 1
        prev = link(prev, content(seq))
        out.append((seq, prev))
    if out:
        conn.execute(UPD_HEAD, {"p_name": name, "p_seq": seq, "p_hash": prev, "p_now": clock.now()})
    return out


def set_anchor(conn: Connection, name: str, seq: int, hash_: str | None) -> None:
    """After the rows up to `seq` of chain `name` were purged: verification starts after them."""
    conn.execute(_H.update().where(_H.c.name == name).values(anchor_seq=seq, anchor_hash=hash_,
                                                             updated_at=clock.now()))


# ---- verification --------------------------------------------------------------------------------
@dataclass(frozen=True)
class Problem:
    """The first broken link of one chain."""

    table: str
    row_id: int | None
    chain: str  # "instance 12", "security"
    seq: int | None
    what: str  # changed | removed | inserted | unsealed

    def __str__(self) -> str:
        where = f"{self.table} row id {self.row_id}" if self.row_id is not None else f"{self.table}"
        return f"{self.chain}: {where} (seq {self.seq}) {self.what}"


def walk(rows: Iterable, *, table: str, chain: str, content: Callable[[object, int], bytes], head_seq: int,
         start_seq: int = 1, start_hash: str | None = None) -> Problem | None:
    """Check one chain's rows (objects with id, seq, hash; in seq order) against its head; the
    first problem, or None. `content(row, seq)` is the row's canonical content as if at `seq`. A row whose hash does not match is `changed`, or `inserted` when
    the row after it links to the row before it."""
    expected, prev = start_seq, start_hash
    pending = None  # a mismatched row, decided by the next one
    for r in rows:
        if pending is not None:  # inserting a row renumbers the ones after it: try this one's old seq
            bad, bad_prev = pending
            if r.seq == bad.seq + 1 and r.hash == link(bad_prev, content(r, bad.seq)):
                return Problem(table, bad.id, chain, bad.seq, "inserted (the row after it links to the one before)")
            return Problem(table, bad.id, chain, bad.seq, "changed (its hash does not match its content)")
        if r.seq < expected:
            continue
        if r.seq > expected:
            return Problem(table, r.id, chain, r.seq,
                           f"removed: row(s) seq {expected}..{r.seq - 1} before it are missing")
        if r.hash is None:
            return Problem(table, r.id, chain, r.seq, "unsealed (no hash)")
        if r.hash != link(prev, content(r, r.seq)):
            pending = (r, prev)
            expected += 1
            continue
        prev, expected = r.hash, expected + 1
    if pending is not None:
        bad, _ = pending
        return Problem(table, bad.id, chain, bad.seq, "changed (its hash does not match its content)")
    if expected - 1 < head_seq:
        return Problem(table, None, chain, expected,
                       f"removed: row(s) seq {expected}..{head_seq} at the end are missing")
    if expected - 1 > head_seq:
        return Problem(table, None, chain, head_seq + 1, f"inserted: rows past the head (seq {head_seq})")
    return None


@dataclass
class _Ev:
    id: int
    seq: int
    hash: str | None
    row: object


def _event_of(r) -> _Ev:
    return _Ev(r.id, r.seq, r.hash, r)


def verify_instances(conn_factory, progress: Callable[[int, int, str], None] | None = None,
                     chunk: int = 500) -> Iterator[Problem]:
    """Walk every instance's event chain; yield the first problem of each broken one.
    `conn_factory()` is a context manager giving a connection (chunks read in turn)."""
    from sqlalchemy import func

    with conn_factory() as conn:
        total = conn.execute(select(func.count()).select_from(_I)).scalar_one()
    done, last = 0, 0
    cols = (_E.c.id, _E.c.instance_id, _E.c.seq, _E.c.at, _E.c.actor, _E.c.kind, _E.c.task, _E.c.data, _E.c.hash)
    while True:
        with conn_factory() as conn:
            heads = conn.execute(select(_I.c.id, _I.c.event_seq).where(_I.c.id > last).order_by(_I.c.id)
                                 .limit(chunk)).all()
            if not heads:
                break
            ids = [h.id for h in heads]
            evs: dict[int, list] = {i: [] for i in ids}
            for r in conn.execute(select(*cols).where(_E.c.instance_id.in_(ids)).order_by(_E.c.instance_id, _E.c.seq)):
                evs[r.instance_id].append(r)
        for h in heads:
            p = walk((_event_of(r) for r in evs[h.id]), table="instance_event", chain=f"instance {h.id}",
                     content=lambda e, n: event_content(e.row, n), head_seq=h.event_seq or 0)
            if p is not None:
                yield p
        done += len(heads)
        last = ids[-1]
        if progress:
            progress(done, max(total, done), f"instance {last}")
    if progress and total == 0:
        progress(0, 0, "")
