"""Key rotation for the personal data sealed at rest (`gridflow registry rekey`).

A rotation: set the new key as GRIDFLOW_DATA_KEY and the old one in GRIDFLOW_DATA_KEYS_OLD, run
`gridflow registry rekey`, then drop the old key (docs/personal-data.md). Until the rekey is done,
values sealed under the old key still open and lookups match the blind index under every configured
key (`crypto.blinds`), so the system stays usable while it runs.

Every sealed value not under the current key is opened and sealed again under it, and its blind
index recomputed with it, in batches of `batch` rows, each batch its own transaction. The work is
found by what it is (a token whose key id is not the current one), not by a bookmark, so an
interrupted rekey is resumed by running it again: what was done is not done twice.

What it rewrites (TARGETS): the resident's ID number and phone with their indexes; the sealed
fields in the resident history (before/after); the phones of case parties (dispute_case.parties)
and of staff (staff.phone);
sealed tokens in the process state of instances (a hotline caller's phone, parties' phones). Rows of the tamper-evident audit chain (instance events) are evidence
and are not rewritten: keep the old key among GRIDFLOW_DATA_KEYS_OLD while such rows are needed
(`remaining` counts them so the operator knows).
"""
from __future__ import annotations

import json
import re
from collections.abc import Callable
from dataclasses import dataclass, field

from sqlalchemy import JSON, Text, bindparam, column, func, select, table
from sqlalchemy.dialects.postgresql import JSONB

from grid import crypto
from grid.registry.models import ID_CONTEXT, PHONE_CONTEXT, id_blind, phone_blind
from grid.registry.rules import SEALED_FIELDS

Progress = Callable[[int, int, str], None]
JSONType = JSON().with_variant(JSONB(), "postgresql")
TOKEN = re.compile(r"g1\$([0-9a-f]{8})\$([A-Za-z0-9_=-]+)")
STATE_CONTEXTS = ("case.caller_phone", "case.party_phone")  # what a token in an instance's process state may be sealed for

_resident = table("resident", column("id"), column("id_number", Text), column("phone", Text))
_event = table("resident_event", column("id"), column("before", JSONType), column("after", JSONType))
_instance = table("instance", column("id"), column("state_json", Text))
_case = table("dispute_case", column("id"), column("parties", JSONType))
PARTY_PHONE = "case.party_phone"  # grid.cases.models.PARTY_PHONE (the registry does not import grid.cases.models)


@dataclass
class Result:
    rewritten: dict[str, int] = field(default_factory=dict)  # target -> rows rewritten
    kid: str = ""

    @property
    def total(self) -> int:
        return sum(self.rewritten.values())


def _old(token: object, kid: str) -> bool:
    return crypto.is_sealed(token) and crypto.key_id(token) != kid


def _reseal(token: str, context: str) -> str:
    return crypto.seal(crypto.unseal(token, context), context)


def reseal_text(text: str, contexts: tuple[str, ...], kid: str) -> str:
    """`text` with every sealed token not under key `kid` sealed again under the current key (the
    token's context is the first of `contexts` that opens it; a token none opens is an error)."""
    def one(m: re.Match) -> str:
        token = m.group(0)
        if m.group(1) == kid:
            return token
        for ctx in contexts:
            try:
                return _reseal(token, ctx)
            except ValueError:
                continue
        raise ValueError(f"a sealed token in the process state opens under none of {contexts}")
    return TOKEN.sub(one, text)


def _not_current(col, kid: str):
    return col.is_not(None) & col.like(crypto.PREFIX + "$%") & ~col.like(f"{crypto.PREFIX}${kid}$%")


# ---- targets: (count of rows to do, one batch -> rows rewritten) ----------------------------------
def _residents_todo(s, kid: str) -> int:
    return s.scalar(select(func.count()).select_from(_resident).where(
        _not_current(_resident.c.id_number, kid) | _not_current(_resident.c.phone, kid)))


def _residents_batch(s, kid: str, after: int, batch: int) -> tuple[int, int | None]:
    rows = s.execute(select(_resident.c.id, _resident.c.id_number, _resident.c.phone)
                     .where(_resident.c.id > after, _not_current(_resident.c.id_number, kid)
                            | _not_current(_resident.c.phone, kid))
                     .order_by(_resident.c.id).limit(batch)).all()
    if not rows:
        return 0, None
    updates = []
    for rid, idn, phone in rows:
        idn_plain = crypto.unseal(idn, ID_CONTEXT) if idn else None
        phone_plain = crypto.unseal(phone, PHONE_CONTEXT) if phone else None
        updates.append({"p_id": rid,
                        "p_idn": crypto.seal(idn_plain, ID_CONTEXT) if idn_plain is not None else None,
                        "p_idx": id_blind(idn_plain) if idn_plain else None,
                        "p_phone": crypto.seal(phone_plain, PHONE_CONTEXT) if phone_plain is not None else None,
                        "p_pidx": phone_blind(phone_plain) if phone_plain else None})
    r = table("resident", column("id"), column("id_number"), column("id_index"), column("phone"),
              column("phone_index"))
    s.execute(r.update().where(r.c.id == bindparam("p_id")).values(
        id_number=bindparam("p_idn"), id_index=bindparam("p_idx"), phone=bindparam("p_phone"),
        phone_index=bindparam("p_pidx")), updates)
    return len(rows), rows[-1][0]


def _event_fields(d: dict | None, kid: str) -> dict | None:
    if not d or not any(_old(d.get(k), kid) for k in SEALED_FIELDS):
        return None
    return {k: (_reseal(v, f"event.{k}") if k in SEALED_FIELDS and _old(v, kid) else v) for k, v in d.items()}


def _events_todo(s, kid: str) -> int:
    return s.scalar(select(func.count()).select_from(_event))  # JSON: scanned whole, rewritten where needed


def _events_batch(s, kid: str, after: int, batch: int) -> tuple[int, int | None]:
    rows = s.execute(select(_event.c.id, _event.c.before, _event.c.after).where(_event.c.id > after)
                     .order_by(_event.c.id).limit(batch)).all()
    if not rows:
        return 0, None
    for eid, before, after_ in rows:
        b, a = _event_fields(before, kid), _event_fields(after_, kid)
        if b is not None or a is not None:
            s.execute(_event.update().where(_event.c.id == eid).values(before=b if b is not None else before,
                                                                       after=a if a is not None else after_))
    return len(rows), rows[-1][0]


def _state_todo(s, kid: str) -> int:
    return s.scalar(select(func.count()).select_from(_instance).where(_instance.c.state_json.like("%g1$%")))


def _state_batch(s, kid: str, after: int, batch: int) -> tuple[int, int | None]:
    rows = s.execute(select(_instance.c.id, _instance.c.state_json)
                     .where(_instance.c.id > after, _instance.c.state_json.like("%g1$%"))
                     .order_by(_instance.c.id).limit(batch)).all()
    if not rows:
        return 0, None
    for iid, state in rows:
        new = reseal_text(state, STATE_CONTEXTS, kid)
        if new != state:
            s.execute(_instance.update().where(_instance.c.id == iid).values(state_json=new))
    return len(rows), rows[-1][0]


def _parties(value, kid: str):
    if not isinstance(value, list) or not any(isinstance(p, dict) and _old(p.get("phone"), kid) for p in value):
        return None
    return [{**p, "phone": _reseal(p["phone"], PARTY_PHONE)} if isinstance(p, dict) and _old(p.get("phone"), kid)
            else p for p in value]


def _cases_todo(s, kid: str) -> int:
    return s.scalar(select(func.count()).select_from(_case).where(func.cast(_case.c.parties, Text).like("%g1$%")))


def _cases_batch(s, kid: str, after: int, batch: int) -> tuple[int, int | None]:
    rows = s.execute(select(_case.c.id, _case.c.parties)
                     .where(_case.c.id > after, func.cast(_case.c.parties, Text).like("%g1$%"))
                     .order_by(_case.c.id).limit(batch)).all()
    if not rows:
        return 0, None
    for cid, value in rows:
        new = _parties(value, kid)
        if new is not None:
            s.execute(_case.update().where(_case.c.id == cid).values(parties=new))
    return len(rows), rows[-1][0]


_staff = table("staff", column("id"), column("phone", Text))
STAFF_PHONE = "staff.phone"  # grid.org.models: Staff.phone


def _staff_todo(s, kid: str) -> int:
    return s.scalar(select(func.count()).select_from(_staff).where(_not_current(_staff.c.phone, kid)))


def _staff_batch(s, kid: str, after: str, batch: int) -> tuple[int, str | None]:
    rows = s.execute(select(_staff.c.id, _staff.c.phone).where(_staff.c.id > after, _not_current(_staff.c.phone, kid))
                     .order_by(_staff.c.id).limit(batch)).all()
    if not rows:
        return 0, None
    s.execute(_staff.update().where(_staff.c.id == bindparam("p_id")).values(phone=bindparam("p_phone")),
              [{"p_id": i, "p_phone": _reseal(t, STAFF_PHONE)} for i, t in rows])
    return len(rows), rows[-1][0]


TARGETS = {"resident": (_residents_todo, _residents_batch), "resident_event": (_events_todo, _events_batch),
           "instance_state": (_state_todo, _state_batch), "case_parties": (_cases_todo, _cases_batch),
           "staff": (_staff_todo, _staff_batch)}


def rekey(svc, batch: int = 500, progress: Progress | None = None, targets: tuple[str, ...] | None = None) -> Result:
    """Seal every value again under the current key (resumable: run again after an interruption)."""
    kid = crypto.keyring().current.kid
    res = Result(kid=kid)
    names = targets or tuple(TARGETS)
    with svc.db.read() as s:
        total = sum(TARGETS[n][0](s, kid) for n in names)
    done = 0
    for name in names:
        _todo, step = TARGETS[name]
        after, count = ("" if name == "staff" else 0), 0  # staff ids are text
        while True:
            with svc.db.write() as s:
                n, last = step(s, kid, after, batch)
            if last is None:
                break
            after, count, done = last, count + n, done + n
            if progress:
                progress(min(done, total), total, name)
        res.rewritten[name] = count
    if progress:
        progress(total, total, "done")
    return res


def remaining(svc) -> dict[str, int]:
    """Sealed values not yet under the current key, per place (the resident table, its history and
    the process state exactly; instance events, which are never rewritten, by a text scan)."""
    kid = crypto.keyring().current.kid
    ev = table("instance_event", column("id"), column("data", Text))
    out = {}
    with svc.db.read() as s:
        out["resident"] = _residents_todo(s, kid)
        out["resident_event"] = sum(
            1 for b, a in s.execute(select(_event.c.before, _event.c.after))
            if _event_fields(b, kid) is not None or _event_fields(a, kid) is not None)
        out["instance_state"] = sum(1 for (st,) in s.execute(select(_instance.c.state_json)
                                                             .where(_instance.c.state_json.like("%g1$%")))
                                    if any(m.group(1) != kid for m in TOKEN.finditer(st)))
        out["staff"] = _staff_todo(s, kid)
        out["case_parties"] = sum(1 for (v,) in s.execute(select(_case.c.parties).where(
            func.cast(_case.c.parties, Text).like("%g1$%"))) if _parties(v, kid) is not None)
        out["instance_event (kept)"] = sum(
            1 for (d,) in s.execute(select(func.cast(ev.c.data, Text)).where(func.cast(ev.c.data, Text).like("%g1$%")))
            if any(m.group(1) != kid for m in TOKEN.finditer(d or "")))
    return out


def dumps(res: Result) -> str:
    return json.dumps({"key": res.kid, "rewritten": res.rewritten}, ensure_ascii=False)
