"""Password hashing with werkzeug (scrypt), plus the one shared hash used by demo accounts."""
from __future__ import annotations

from functools import lru_cache

from werkzeug.security import check_password_hash, generate_password_hash

METHOD = "scrypt"
DEMO_PASSWORD = "gridflow-demo"
_KNOWN_METHODS = ("scrypt", "pbkdf2")  # what werkzeug's check_password_hash can verify


def hash_password(password: str) -> str:
    """A salted scrypt hash for storing in `Staff.password_hash`."""
    if not password:
        raise ValueError("empty password")
    return generate_password_hash(password, method=METHOD)


def _usable(password_hash: str | None) -> bool:
    """Whether werkzeug can verify against this hash (a known method and salt$hash parts)."""
    if not password_hash or password_hash.count("$") < 2:
        return False
    return password_hash.split("$", 1)[0].split(":", 1)[0] in _KNOWN_METHODS


def verify_password(password_hash: str | None, password: str | None) -> bool:
    """True when `password` matches the stored hash.

    Always does exactly one hash verification, also for a missing account (None), an empty
    password or a garbled hash (then against a dummy hash, and the answer is False): every
    failed login costs the same, so response times do not tell which usernames exist.
    """
    real = _usable(password_hash)
    try:
        ok = check_password_hash(password_hash if real else _dummy_hash(), password or "")
    except ValueError:  # a hash with parameters werkzeug refuses: rare, and no secret in it
        return False
    return ok and real and bool(password)


@lru_cache(maxsize=1)
def demo_password_hash() -> str:
    """The hash of DEMO_PASSWORD, computed once per process and shared by every demo account.

    DEMO ONLY. Hashing ~20,000 accounts one by one with scrypt would take minutes, so the demo
    generator reuses this single hash (one salt for all). Real accounts get their own salt
    through `hash_password`.
    """
    return hash_password(DEMO_PASSWORD)


@lru_cache(maxsize=1)
def _dummy_hash() -> str:
    return hash_password("no-such-user")

