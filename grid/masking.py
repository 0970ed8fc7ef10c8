"""Masks for personal data shown to staff: the same rule for case parties and the registry."""
from __future__ import annotations


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
