"""Working-day (工作日) arithmetic from a designer-owned calendar file.

The file (`workflows/calendar.yaml`) lists, per year, `holidays` (days off) and
`workdays` (make-up working days on weekends, 调休). Weekends are days off unless listed.
"""
from __future__ import annotations

from datetime import date, datetime, timedelta
from pathlib import Path

import yaml

from . import clock


class WorkCalendar:
    def __init__(self, holidays: set[date] | None = None, workdays: set[date] | None = None):
        self.holidays = holidays or set()
        self.workdays = workdays or set()

    @classmethod
    def load(cls, path: str | Path | None) -> WorkCalendar:
        if not path or not Path(path).exists():
            return cls()
        raw = yaml.safe_load(Path(path).read_text(encoding="utf-8")) or {}
        hol, work = set(), set()
        years = raw.get("years", raw)
        for _year, spec in (years or {}).items():
            if not isinstance(spec, dict):
                continue
            hol |= {_as_date(d) for d in spec.get("holidays") or []}
            work |= {_as_date(d) for d in spec.get("workdays") or []}
        return cls(hol, work)

    def is_workday(self, d: date) -> bool:
        if d in self.workdays:
            return True
        if d in self.holidays:
            return False
        return d.weekday() < 5

    def add_workdays(self, start: datetime, n: int) -> datetime:
        """`n` working days after `start`, at the same Beijing wall-clock time."""
        if n < 0:
            raise ValueError("workdays(n) needs n >= 0")
        local = start.astimezone(clock.SHANGHAI)
        d = local.date()
        remaining = int(n)
        while remaining > 0:
            d += timedelta(days=1)
            if self.is_workday(d):
                remaining -= 1
        if n == 0:
            return local
        return datetime.combine(d, local.timetz().replace(tzinfo=None), clock.SHANGHAI)

    def workdays_between(self, a: date, b: date) -> int:
        days, d = 0, a
        while d < b:
            d += timedelta(days=1)
            days += self.is_workday(d)
        return days


def _as_date(v) -> date:
    if isinstance(v, date):
        return v
    return date.fromisoformat(str(v))
