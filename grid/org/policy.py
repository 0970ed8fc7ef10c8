"""The password policy (等保 level 3): long enough, mixed character classes, not the username, not
one of the last few passwords. Enforced on self-service change, administrator reset and first
sign-in alike, so no path leads around it.

Configurable by environment (read at each check, so tests and operators can tighten it):
GRIDFLOW_PASSWORD_MIN_LENGTH (default 10), GRIDFLOW_PASSWORD_CLASSES (of lower, upper, digit,
other; default 3), GRIDFLOW_PASSWORD_HISTORY (default 5 previous passwords refused).
"""
from __future__ import annotations

import secrets
import string
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from engine import clock
from grid.config import env_number
from grid.org.models import PasswordHistory, Staff
from grid.org.passwords import hash_password, verify_password

MIN_LENGTH = 10
CLASSES = 3
HISTORY = 5


@dataclass(frozen=True)
class Policy:
    min_length: int = MIN_LENGTH
    classes: int = CLASSES
    history: int = HISTORY

    @classmethod
    def from_env(cls) -> Policy:
        return cls(int(env_number("GRIDFLOW_PASSWORD_MIN_LENGTH", MIN_LENGTH, int, 8)),
                   min(4, int(env_number("GRIDFLOW_PASSWORD_CLASSES", CLASSES, int, 1))),
                   int(env_number("GRIDFLOW_PASSWORD_HISTORY", HISTORY, int, 0)))


class PolicyError(ValueError):
    """A password the policy refuses; `reason` is one of too_short, classes, username, reused,
    control (a stable code the web layer translates), `policy` says the numbers."""

    def __init__(self, reason: str, policy: Policy):
        super().__init__(reason)
        self.reason = reason
        self.policy = policy


def char_classes(password: str) -> int:
    """How many of lower case, upper case, digits and other characters the password uses."""
    return sum((any(c.islower() for c in password), any(c.isupper() for c in password),
                any(c.isdigit() for c in password), any(not c.isalnum() for c in password)))


def check(password: str, username: str | None = None, *, previous: list[str] = (), policy: Policy | None = None) -> None:
    """Raise PolicyError if the policy refuses `password`; `previous` are stored hashes to refuse."""
    policy = policy or Policy.from_env()
    password = password or ""
    if any(ord(ch) < 32 or 127 <= ord(ch) < 160 for ch in password) or not password.strip():
        raise PolicyError("control", policy)
    if len(password) < policy.min_length:
        raise PolicyError("too_short", policy)
    if char_classes(password) < policy.classes:
        raise PolicyError("classes", policy)
    if username and len(username) >= 3 and username.strip().lower() in password.lower():
        raise PolicyError("username", policy)
    if any(verify_password(h, password) for h in previous):
        raise PolicyError("reused", policy)


def recent_hashes(s: Session, staff: Staff, policy: Policy | None = None) -> list[str]:
    """The current hash and the stored previous ones, newest first (as many as the policy refuses)."""
    policy = policy or Policy.from_env()
    if policy.history <= 0:
        return []
    older = s.scalars(select(PasswordHistory.password_hash).where(PasswordHistory.staff_id == staff.id)
                      .order_by(PasswordHistory.created_at.desc(), PasswordHistory.id.desc())
                      .limit(policy.history - 1)).all()
    return [staff.password_hash, *older][:policy.history]


def store_new(s: Session, staff: Staff, password: str, *, must_change: bool = False,
              now: datetime | None = None, policy: Policy | None = None) -> None:
    """Set a new (already checked) password: the old hash goes to the history, trimmed to the
    policy's length; the lockout is cleared; `must_change` forces a change at next sign-in."""
    policy = policy or Policy.from_env()
    now = now or clock.now()
    s.add(PasswordHistory(staff_id=staff.id, password_hash=staff.password_hash, created_at=now))
    s.flush()
    keep = s.scalars(select(PasswordHistory.id).where(PasswordHistory.staff_id == staff.id)
                     .order_by(PasswordHistory.created_at.desc(), PasswordHistory.id.desc())
                     .limit(max(policy.history - 1, 0))).all()
    s.execute(delete(PasswordHistory).where(PasswordHistory.staff_id == staff.id, PasswordHistory.id.not_in(keep or [-1])))
    staff.password_hash = hash_password(password)
    staff.failed_logins = 0
    staff.locked_until = None
    staff.must_change_password = must_change
    staff.password_changed_at = now
    s.flush()


def initial_hash(one_time: str) -> str:
    """The stored hash of a generated one-time password: PBKDF2 with few rounds, so importing
    thousands of accounts takes seconds, not minutes. Safe only because the password is random
    (about 70 bits) and must be replaced, with a scrypt hash, at first sign-in."""
    from werkzeug.security import generate_password_hash

    return generate_password_hash(one_time, method="pbkdf2:sha256:2000")


_ALPHABET = "".join(c for c in string.ascii_letters + string.digits if c not in "0O1lI")


def one_time_password(policy: Policy | None = None) -> str:
    """A random initial password that satisfies the policy (to be changed at first sign-in):
    groups of easily read letters and digits joined by '-', e.g. 'k7Qm-x3Tf-9wRa'."""
    policy = policy or Policy.from_env()
    while True:
        groups = -(-max(policy.min_length, 12) // 5)
        pw = "-".join("".join(secrets.choice(_ALPHABET) for _ in range(4)) for _ in range(groups))
        if char_classes(pw) >= max(policy.classes, 3) and len(pw) >= policy.min_length:
            return pw
