"""Password hashing with werkzeug (scrypt), plus the one shared hash used by demo accounts."""
from __future__ import annotations

from functools import lru_cache

from werkzeug.security import check_password_hash, generate_password_hash

METHOD = "scrypt"
DEMO_PASSWORD = "gridflow-demo"


def hash_password(password: str) -> str:
    """A salted scrypt hash for storing in `Staff.password_hash`."""
    if not password:
        raise ValueError("empty password")
    return generate_password_hash(password, method=METHOD)


def verify_password(password_hash: str, password: str) -> bool:
    """True when `password` matches the stored hash; False for empty or malformed input."""
    if not password_hash or not password:
        return False
    try:
        return check_password_hash(password_hash, password)
    except ValueError:  # unknown method or garbled hash
        return False


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


def burn_time(password: str) -> None:
    """Spend about as long as one verification, so unknown usernames are not faster to reject."""
    verify_password(_dummy_hash(), password or "x")
