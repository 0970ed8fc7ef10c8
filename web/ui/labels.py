"""Words for codes (roles, levels, states, audit event kinds) and the Jinja filters that show them.

All of them go through Flask-Babel, so both catalogs carry every word shown on screen.
Titles that process designers write (form and field titles, categories) come from the
forms themselves (`title` in Chinese, `x-title.en` in English).
"""
from __future__ import annotations

from datetime import datetime

from flask import Flask
from flask_babel import get_locale
from flask_babel import lazy_gettext as _l

from engine import clock
from grid import masking

ROLES = {
    "grid_worker": _l("Grid worker"),
    "grid_head": _l("Grid head"),
    "mediator": _l("Mediator"),
    "dispatcher": _l("Dispatcher"),
    "supervisor": _l("Supervisor"),
    "admin": _l("Administrator"),
    "operator": _l("Hotline operator"),
    "department_handler": _l("Department handler"),
}
LEVELS = {
    "grid": _l("Grid"),
    "village": _l("Village / community"),
    "township": _l("Township / street"),
    "county": _l("County / district"),
    "city": _l("City"),
}
ITEM_STATES = {"overdue": _l("Overdue"), "warning": _l("Past warning"), "normal": _l("On time")}
CASE_STATUS = {"open": _l("In progress"), "archived": _l("Archived"), "failed": _l("Needs attention"),
               "cancelled": _l("Cancelled")}
RESULTS = {"satisfied": _l("Resolved, residents satisfied"), "settled_on_spot": _l("Settled on the spot"),
           "duplicate": _l("Duplicate case"), "final_disposition": _l("Referred to another legal channel"),
           "final": _l("Referred to another legal channel")}
EVENTS = {
    "started": _l("Case reported"),
    "level_entered": _l("Handled at this level"),
    "task_completed": _l("Task done"),
    "dispatched": _l("Dispatched to mediators"),
    "resolved": _l("Resolved"),
    "cannot_resolve": _l("Could not be resolved at this level"),
    "escalated": _l("Escalated"),
    "warning": _l("Warning: the time limit is near"),
    "supervision_opened": _l("Supervision opened"),
    "urged": _l("Urged"),
    "urge_recorded": _l("Urged"),
    "accountability": _l("Overdue: accountability recorded"),
    "verified": _l("Verified on site"),
    "rework": _l("Sent back for rework"),
    "archived": _l("Archived"),
    "final_disposition": _l("Final disposition"),
    "completed": _l("Process finished"),
    "cancelled": _l("Cancelled"),
    "error": _l("Processing error"),
    "retried": _l("Retried after an error"),
    "data_changed": _l("Data corrected by an administrator"),
    "message_received": _l("Message received"),
    "signal_received": _l("Signal received"),
    "event_thrown": _l("Event"),
    "migrated": _l("Moved to another process version"),
    "returned": _l("Returned to the level below"),
    "extension_requested": _l("Time extension requested"),
    "extension_decided": _l("Time extension decided"),
    "held": _l("Put on hold (long-term issue)"),
    "hold_reviewed": _l("Hold reviewed"),
    "hold_released": _l("Hold released"),
    "verify_overdue": _l("On-site verification overdue"),
    "repeat": _l("Repeat dispute"),
}
DIAGRAM = {"current": _l("Current task"), "done": _l("Completed"), "waiting": _l("Waiting (timer)")}


def lang() -> str:
    loc = get_locale()
    return "zh" if loc is None or loc.language == "zh" else loc.language


def locale_code() -> str:
    loc = get_locale()
    return str(loc) if loc else "zh_CN"


def word(table: dict, code: str | None) -> str:
    if code is None:
        return ""
    v = table.get(code)
    return str(v) if v is not None else code


def fmt_dt(value: datetime | None, with_year: bool = True) -> str:
    """Asia/Shanghai wall time, 2020-09-03 09:30."""
    v = clock.local(value)
    if v is None:
        return ""
    return v.strftime("%Y-%m-%d %H:%M" if with_year else "%m-%d %H:%M")


def fmt_date(value: datetime | None) -> str:
    v = clock.local(value)
    return v.strftime("%Y-%m-%d") if v else ""


def filesize(n: int | None) -> str:
    n = n or 0
    if n < 1024:
        return f"{n} B"
    if n < 1024 * 1024:
        return f"{n / 1024:.0f} KB"
    return f"{n / 1024 / 1024:.1f} MB"


def install(app: Flask) -> None:
    app.jinja_env.filters.update(
        dt=fmt_dt, date=fmt_date, filesize=filesize, mask_phone=masking.mask_phone,
        role=lambda c: word(ROLES, c), level=lambda c: word(LEVELS, c), item_state=lambda c: word(ITEM_STATES, c),
        case_status=lambda c: word(CASE_STATUS, c), result=lambda c: word(RESULTS, c),
        event=lambda c: word(EVENTS, c),
    )
    app.jinja_env.globals.update(ui_lang=lang, locale_code=locale_code, DIAGRAM=DIAGRAM, ITEM_STATES=ITEM_STATES)
