"""Masks for personal data shown to staff: the same rule for case parties and the registry.

Masks must not add up: an ID number's mask keeps its first 4 and last 4 characters, so wherever it
is shown the birth date (characters 7 to 14 of the ID) is shown as its year only (`mask_birth`);
the full date with the masked ID would leave a handful of candidates for the whole number.
"""
from __future__ import annotations

from datetime import date


def mask_id(value: str | None) -> str:
    """420602199001011234 -> 4206**********1234."""
    if not value:
        return ""
    v = str(value)
    if len(v) <= 8:
        return "*" * max(len(v) - 2, 1) + v[-2:]
    return v[:4] + "*" * (len(v) - 8) + v[-4:]


def mask_phone(phone: str | None) -> str:
    """13800000001 -> 138****0001; short numbers keep only their last two digits."""
    if not phone:
        return ""
    digits = str(phone).strip()
    if len(digits) >= 8:
        return digits[:3] + "*" * (len(digits) - 7) + digits[-4:]
    return "*" * max(len(digits) - 2, 1) + digits[-2:]


def mask_birth(born: date | str | None) -> str:
    """1970-05-01 -> 1970-**-**: the year only, as wherever an ID number is shown masked."""
    if not born:
        return ""
    text = born.isoformat() if isinstance(born, date) else str(born)
    return text[:4] + "-**-**" if len(text) >= 4 else "****"
