"""Per-person notification preferences: which kinds go out by which channel, the addresses,
and quiet hours (SMS and 企业微信 wait until they end; e-mail does not wake anyone).

A person without a preference row gets `DEFAULT_CHANNELS`, no e-mail or WeCom address (so
only SMS to the phone on their staff record, for the urgent kinds) and quiet hours
22:00-07:00 Asia/Shanghai. A channel is used only when the installation configures it
(`engine.channels.configured`).
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field

from sqlalchemy.orm import Session

from engine import channels as channel_mod
from engine import clock
from engine.errors import InvalidData
from grid.cases.notification_models import NotificationPref
from grid.org.models import Staff

KINDS = ("new_task", "urged", "warning", "overdue", "returned", "transferred", "extension_decided")
CHANNELS = ("email", "wecom", "sms")
URGENT = ("urged", "warning", "overdue")
DEFAULT_CHANNELS: dict[str, list[str]] = {k: (["email", "wecom", "sms"] if k in URGENT else ["email", "wecom"])
                                          for k in KINDS}
DEFAULT_QUIET = ("22:00", "07:00")
TZ = "Asia/Shanghai"
_HHMM = re.compile(r"^([01]\d|2[0-3]):[0-5]\d$")
_EMAIL = re.compile(r"^[^@\s]{1,64}@[^@\s]{1,180}\.[^@\s]{1,20}$")


@dataclass
class Prefs:
    """What one person chose (or the defaults), with the addresses outbound messages go to."""

    staff_id: str
    channels: dict[str, list[str]] = field(default_factory=lambda: {k: list(v) for k, v in DEFAULT_CHANNELS.items()})
    email: str | None = None
    wecom_user: str | None = None
    phone: str | None = None  # the explicit SMS number; None: the staff record's phone
    quiet_start: str | None = DEFAULT_QUIET[0]
    quiet_end: str | None = DEFAULT_QUIET[1]
    staff_phone: str | None = None

    def address(self, channel: str) -> str | None:
        return {"email": self.email, "wecom": self.wecom_user, "sms": self.phone or self.staff_phone}.get(channel)

    def quiet(self) -> dict | None:
        if not self.quiet_start or not self.quiet_end:
            return None
        return {"start": self.quiet_start, "end": self.quiet_end, "tz": TZ}


def load(s: Session, staff_id: str) -> Prefs:
    """The person's preferences, defaults filled in."""
    staff = s.get(Staff, staff_id)
    p = Prefs(staff_id=staff_id, staff_phone=staff.phone if staff else None)
    row = s.get(NotificationPref, staff_id)
    if row is None:
        return p
    for kind, chosen in (row.channels or {}).items():
        if kind in KINDS:
            p.channels[kind] = [c for c in chosen if c in CHANNELS]
    p.email, p.wecom_user, p.phone = row.email, row.wecom_user, row.phone
    # None keeps the default quiet hours; "" means none
    p.quiet_start = DEFAULT_QUIET[0] if row.quiet_start is None else (row.quiet_start or None)
    p.quiet_end = DEFAULT_QUIET[1] if row.quiet_end is None else (row.quiet_end or None)
    return p


def outbound(s: Session, staff_id: str, kind: str) -> list[tuple[str, str, dict | None]]:
    """(channel, address, quiet hours) for each configured channel this person wants `kind` by."""
    available = channel_mod.configured()
    if not available:
        return []
    p = load(s, staff_id)
    out = []
    for channel in p.channels.get(kind, []):
        addr = p.address(channel)
        if channel in available and addr:
            out.append((channel, addr, p.quiet()))
    return out


def get(svc, staff_id: str) -> Prefs:
    """One's own preferences (the settings page reads these)."""
    with svc.db.read() as s:
        return load(s, staff_id)


def update(svc, staff_id: str, *, channels: dict[str, list[str]] | None = None, email: str | None = None,
           wecom_user: str | None = None, phone: str | None = None, quiet_start: str | None = None,
           quiet_end: str | None = None) -> Prefs:
    """Change one's own preferences. Arguments left None stay as they are; "" clears an
    address or switches quiet hours off (both start and end must then be "")."""
    errors = []
    if channels is not None:
        for kind, chosen in channels.items():
            if kind not in KINDS:
                errors.append({"path": f"channels.{kind}", "message": "unknown kind"})
            elif any(c not in CHANNELS for c in chosen):
                errors.append({"path": f"channels.{kind}", "message": "unknown channel"})
    if email and not _EMAIL.match(email):
        errors.append({"path": "email", "message": "not an e-mail address"})
    if phone and not re.fullmatch(r"\+?\d{5,19}", phone):
        errors.append({"path": "phone", "message": "not a phone number"})
    if wecom_user and (len(wecom_user) > 64 or not re.fullmatch(r"[\w.@-]+", wecom_user)):
        errors.append({"path": "wecom_user", "message": "not a WeCom UserID"})
    for name, v in (("quiet_start", quiet_start), ("quiet_end", quiet_end)):
        if v and not _HHMM.match(v):
            errors.append({"path": name, "message": "HH:MM"})
    if (quiet_start == "") != (quiet_end == "") and None not in (quiet_start, quiet_end):
        errors.append({"path": "quiet_end", "message": "both or neither"})
    if errors:
        raise InvalidData("the preferences have errors", errors)
    with svc.db.write() as s:
        if s.get(Staff, staff_id) is None:
            raise InvalidData("no such person", [{"path": "staff_id", "message": "unknown"}])
        row = s.get(NotificationPref, staff_id)
        if row is None:
            row = NotificationPref(staff_id=staff_id, channels={}, updated_at=clock.now())
            s.add(row)
        if channels is not None:
            row.channels = {**(row.channels or {}), **{k: list(dict.fromkeys(v)) for k, v in channels.items()}}
        for name, v in (("email", email), ("wecom_user", wecom_user), ("phone", phone)):
            if v is not None:
                setattr(row, name, v.strip() or None)
        if quiet_start is not None:
            row.quiet_start = quiet_start
        if quiet_end is not None:
            row.quiet_end = quiet_end
        row.updated_at = clock.now()
        s.flush()
        return load(s, staff_id)
