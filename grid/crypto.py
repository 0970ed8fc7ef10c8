"""Personal data encrypted at rest: AES-GCM for ID numbers and phones, a keyed HMAC blind index
for exact lookups (docs/personal-data.md).

A sealed value is the text `g1$<key id>$<base64url(nonce + ciphertext + tag)>`; the key id names
the key that sealed it, so values sealed under an old key still open while a rotation rewrites
them. The associated data is the field's context (`resident.id_number`, `event.phone` ...): a
ciphertext copied into another column does not open there.

Keys: GRIDFLOW_DATA_KEY (base64 of 32 random bytes) seals; GRIDFLOW_DATA_KEYS_OLD (comma
separated, same form) only opens and is looked up during a rotation. Without GRIDFLOW_DATA_KEY a
production environment refuses to run; elsewhere (tests, the demo) a key is generated once in
instance/data_key, as the web secret key is. Read here until grid/config.py carries it.

The encryption key and the blind-index key are derived from the configured key with HKDF under
different labels, so neither reveals the other.
"""
from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import os
import secrets
import threading
from dataclasses import dataclass

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from sqlalchemy import JSON, String
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.types import TypeDecorator

from engine import keyfile
from grid.config import ROOT, ConfigError

PREFIX = "g1"
SEALED_LENGTH = 120  # column width: prefix, key id and base64 of 12 + 20 + 16 bytes, with room
INDEX_LENGTH = 32  # hex characters of the blind index (128 bits)
KEY_FILE = ROOT / "instance" / "data_key"


def _derive(raw: bytes, label: bytes) -> bytes:
    return HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=label).derive(raw)


@dataclass(frozen=True)
class DataKey:
    """One configured key with what is derived from it."""

    kid: str
    aead: AESGCM
    index_mac: hmac.HMAC

    @classmethod
    def from_raw(cls, raw: bytes) -> DataKey:
        if len(raw) != 32:
            raise ConfigError("a data key must be 32 bytes (base64 of 32 random bytes)")
        kid = hashlib.sha256(b"gridflow key id\x00" + raw).hexdigest()[:8]
        return cls(kid, AESGCM(_derive(raw, b"gridflow data encryption v1")),
                   hmac.new(_derive(raw, b"gridflow blind index v1"), digestmod=hashlib.sha256))


@dataclass(frozen=True)
class Keyring:
    current: DataKey
    by_id: dict[str, DataKey]

    @property
    def all(self) -> list[DataKey]:
        return [self.current] + [k for kid, k in self.by_id.items() if kid != self.current.kid]


_lock = threading.Lock()
_ring: Keyring | None = None


def _decode(value: str, name: str) -> bytes:
    try:
        return base64.b64decode(value.strip(), validate=True)
    except (binascii.Error, ValueError):
        raise ConfigError(f"{name} is not base64") from None


def _key_file() -> bytes:
    """The generated key of a non-production installation (created once, O_EXCL: one writer wins)."""
    text = keyfile.read_or_create(KEY_FILE, lambda: base64.b64encode(secrets.token_bytes(32)).decode())
    if text is None:
        raise ConfigError(f"{KEY_FILE} is empty: set GRIDFLOW_DATA_KEY or delete the file on an empty database")
    return _decode(text, str(KEY_FILE))


def load_keyring() -> Keyring:
    """The keys from the environment (or the generated development key)."""
    raw = os.environ.get("GRIDFLOW_DATA_KEY", "").strip()
    if raw:
        current = DataKey.from_raw(_decode(raw, "GRIDFLOW_DATA_KEY"))
    elif os.environ.get("GRIDFLOW_ENV", "development").strip().lower() == "production":
        raise ConfigError("GRIDFLOW_DATA_KEY is not set: production requires it (base64 of 32 random bytes)")
    else:
        current = DataKey.from_raw(_key_file())
    by_id = {current.kid: current}
    for part in os.environ.get("GRIDFLOW_DATA_KEYS_OLD", "").split(","):
        if part.strip():
            k = DataKey.from_raw(_decode(part, "GRIDFLOW_DATA_KEYS_OLD"))
            by_id.setdefault(k.kid, k)
    return Keyring(current, by_id)


def keyring() -> Keyring:
    """The process's keys, loaded once."""
    global _ring
    if _ring is None:
        with _lock:
            if _ring is None:
                _ring = load_keyring()
    return _ring


def reset() -> None:
    """Forget the loaded keys (tests that change the environment; a rotation)."""
    global _ring
    _ring = None


# ---- sealing -------------------------------------------------------------------------------------
def is_sealed(value: object) -> bool:
    """Whether `value` looks like a sealed token (and not plaintext)."""
    return isinstance(value, str) and value.startswith(PREFIX + "$")


def seal(value: str, context: str, key: DataKey | None = None) -> str:
    """Encrypt `value` for the column/field `context` under the current key."""
    k = key or keyring().current
    nonce = os.urandom(12)
    ct = k.aead.encrypt(nonce, value.encode(), context.encode())
    return f"{PREFIX}${k.kid}${base64.urlsafe_b64encode(nonce + ct).decode()}"


def seal_many(values: list[str | None], context: str, key: DataKey | None = None) -> list[str | None]:
    """`seal` of each value (None stays None), for bulk inserts: the key is looked up once and the
    nonces drawn in one read of the system's random source. The tokens are `seal`'s."""
    k = key or keyring().current
    encrypt, aad, head = k.aead.encrypt, context.encode(), f"{PREFIX}${k.kid}$"
    pool = os.urandom(12 * len(values))
    b64 = base64.urlsafe_b64encode
    out: list[str | None] = []
    for i, v in enumerate(values):
        if v is None:
            out.append(None)
            continue
        nonce = pool[12 * i:12 * i + 12]
        out.append(head + b64(nonce + encrypt(nonce, v.encode(), aad)).decode())
    return out


def unseal(token: str, context: str) -> str:
    """The plaintext of a sealed token; ValueError if no configured key opens it."""
    try:
        prefix, kid, body = token.split("$", 2)
    except ValueError:
        raise ValueError("not a sealed value") from None
    k = keyring().by_id.get(kid)
    if prefix != PREFIX or k is None:
        raise ValueError(f"no configured data key has id {kid} (see docs/personal-data.md, rotation)")
    data = base64.urlsafe_b64decode(body)
    try:
        return k.aead.decrypt(data[:12], data[12:], context.encode()).decode()
    except InvalidTag:
        raise ValueError("a sealed value does not open (wrong key or wrong field)") from None


def key_id(token: str) -> str:
    """The id of the key that sealed `token`."""
    return token.split("$", 2)[1]


# ---- blind index ---------------------------------------------------------------------------------
def blind(value: str, context: str, key: DataKey | None = None) -> str:
    """The keyed HMAC of `value` for exact lookups (equal values, equal index; no way back)."""
    mac = (key or keyring().current).index_mac.copy()
    mac.update(context.encode() + b"\x00" + value.encode())
    return mac.hexdigest()[:INDEX_LENGTH]


def blind_many(values: list[str | None], context: str, key: DataKey | None = None) -> list[str | None]:
    """`blind` of each value (None stays None), for bulk inserts: the key looked up once."""
    base = (key or keyring().current).index_mac
    prefix = context.encode() + b"\x00"
    out: list[str | None] = []
    for v in values:
        if v is None:
            out.append(None)
            continue
        mac = base.copy()
        mac.update(prefix + v.encode())
        out.append(mac.hexdigest()[:INDEX_LENGTH])
    return out


def blinds(value: str, context: str) -> list[str]:
    """The index of `value` under every configured key: what a lookup matches during a rotation."""
    return [blind(value, context, k) for k in keyring().all]


class Sealed(TypeDecorator):
    """A text column stored sealed: plaintext in Python, a token in the database. Equality
    queries on it match nothing: look up by the blind index column instead."""

    impl = String(SEALED_LENGTH)
    cache_ok = True

    def __init__(self, context: str):
        super().__init__(SEALED_LENGTH)
        self.context = context

    def process_bind_param(self, value, dialect):
        return None if value is None else seal(str(value), self.context)

    def process_result_value(self, value, dialect):
        return None if value is None else unseal(value, self.context)


class SealedFields(TypeDecorator):
    """A JSON column holding a list of objects (case parties) whose `fields` are stored sealed under
    `context`: plaintext in Python, tokens in the database. Values stored before sealing (plain
    text) still read; the next write seals them."""

    impl = JSON
    cache_ok = True

    def __init__(self, context: str, fields: tuple[str, ...] = ("phone",)):
        super().__init__()
        self.context, self.fields = context, tuple(fields)

    def load_dialect_impl(self, dialect):
        return dialect.type_descriptor(JSONB() if dialect.name == "postgresql" else JSON())

    def _map(self, value, fn):
        if not isinstance(value, list):
            return value
        return [{k: (fn(v) if k in self.fields and isinstance(v, str) and v else v) for k, v in item.items()}
                if isinstance(item, dict) else item for item in value]

    def process_bind_param(self, value, dialect):
        return self._map(value, lambda v: v if is_sealed(v) else seal(v, self.context))

    def process_result_value(self, value, dialect):
        return self._map(value, lambda v: unseal(v, self.context) if is_sealed(v) else v)
