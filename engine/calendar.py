"""Working-day (工作日) arithmetic from a designer-owned calendar file.

The file (`workflows/calendar.yaml`) lists, per year, `holidays` (days off) and
`workdays` (make-up working days on weekends, 调休). Weekends are days off unless listed.
An optional top-level `day_ends: "17:30"` makes `workdays(n)` (n > 0) end at that time on the
n-th working day, the close of the working day officials expect, instead of at the same minute.

The calendar is deployed with the bundle (`calendar.yaml` among a version's files), so a change
needs no restart and a running instance keeps the calendar of the version it runs on until it is
migrated; `VersionCalendars` is the runtime's cache of them (a version without one uses the
runtime's configured calendar).
"""
from __future__ import annotations

from datetime import date, datetime, time, timedelta
from pathlib import Path

import yaml

from . import clock


class WorkCalendar:
    def __init__(self, holidays: set[date] | None = None, workdays: set[date] | None = None,
                 day_ends: time | str | None = None):
        self.holidays = holidays or set()
        self.workdays = workdays or set()
        self.day_ends = _as_time(day_ends)

    @classmethod
    def load(cls, path: str | Path | None) -> WorkCalendar:
        if not path or not Path(path).exists():
            return cls()
        return cls.from_text(Path(path).read_text(encoding="utf-8"))

    @classmethod
    def from_text(cls, text: str) -> WorkCalendar:
        """The calendar a `calendar.yaml` text describes (raises ValueError/yaml.YAMLError if unreadable)."""
        raw = yaml.safe_load(text) or {}
        if not isinstance(raw, dict):
            raise ValueError("the calendar must be a mapping with `years`")
        hol, work = set(), set()
        years = raw.get("years", raw)
        for _year, spec in (years or {}).items():
            if not isinstance(spec, dict):
                continue
            hol |= {_as_date(d) for d in spec.get("holidays") or []}
            work |= {_as_date(d) for d in spec.get("workdays") or []}
        return cls(hol, work, raw.get("day_ends") if "years" in raw else None)

    def with_day_ends(self, day_ends: time | str | None) -> WorkCalendar:
        """The same days with another close of the working day (None: deadlines keep the minute)."""
        return WorkCalendar(set(self.holidays), set(self.workdays), day_ends)

    def to_wire(self) -> list:
        """JSON-safe form for the sandbox worker: [holidays, workdays] plus day_ends when set."""
        enc: list = [sorted(d.isoformat() for d in self.holidays), sorted(d.isoformat() for d in self.workdays)]
        if self.day_ends is not None:
            enc.append(self.day_ends.strftime("%H:%M"))
        return enc

    @classmethod
    def from_wire(cls, enc: list) -> WorkCalendar:
        """Inverse of to_wire (also reads the older two-list form)."""
        return cls({date.fromisoformat(d) for d in enc[0]}, {date.fromisoformat(d) for d in enc[1]},
                   enc[2] if len(enc) > 2 else None)

    def is_workday(self, d: date) -> bool:
        if d in self.workdays:
            return True
        if d in self.holidays:
            return False
        return d.weekday() < 5

    def add_workdays(self, start: datetime, n: int) -> datetime:
        """`n` working days after `start`, at the same Beijing wall-clock time, or at the close of
        that working day when the calendar sets `day_ends` (n = 0 is always `start` itself)."""
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
        return datetime.combine(d, self.day_ends or local.timetz().replace(tzinfo=None), clock.SHANGHAI)

    def end_of_day(self, d: date) -> datetime:
        """The close of day `d` (Beijing time): `day_ends`, or 23:59:59 when the calendar sets none."""
        return datetime.combine(d, self.day_ends or time(23, 59, 59), clock.SHANGHAI)

    def workdays_between(self, a: date, b: date) -> int:
        days, d = 0, a
        while d < b:
            d += timedelta(days=1)
            days += self.is_workday(d)
        return days


CALENDAR_FILE = "calendar.yaml"


def problems_in(text: str) -> list[str]:
    """What is wrong with a calendar file (empty: it loads), for deploy's validation."""
    try:
        cal = WorkCalendar.from_text(text)
    except yaml.YAMLError as e:
        return [f"not valid YAML: {str(e).splitlines()[0]}"]
    except (ValueError, TypeError, AttributeError) as e:
        return [f"not a calendar: {e}"]
    del cal
    return []


class VersionCalendars:
    """The work calendar each deployed version carries, parsed once per version id.

    `day_ends` (None: as the file says) overrides the close of the working day for every
    calendar handed out: the scenario runner's `calendar: {day_ends: ...}` tries one."""

    def __init__(self) -> None:
        self._cache: dict[int, WorkCalendar | None] = {}
        self._patched: dict[tuple[int, str], WorkCalendar] = {}
        self.day_ends: str | None = None

    def get(self, s, version_id: int | None, fallback: WorkCalendar) -> WorkCalendar:
        """The calendar of `version_id` (one query the first time), else `fallback`."""
        cal = None
        if version_id is not None:
            if version_id not in self._cache:
                from .models import ProcessVersion  # noqa: PLC0415 - the models import the db layer

                files = s.get(ProcessVersion, version_id).files if s is not None else None
                text = (files or {}).get(CALENDAR_FILE)
                self._cache[version_id] = WorkCalendar.from_text(text) if text else None
            cal = self._cache[version_id]
        cal = cal or fallback
        if self.day_ends is None:
            return cal
        key = (id(cal), str(self.day_ends))
        if key not in self._patched:
            self._patched[key] = cal.with_day_ends(self.day_ends)
        return self._patched[key]


def _as_time(v) -> time | None:
    """`"17:30"`, a time, or None; YAML 1.1 reads an unquoted 17:30 as 1050 minutes (sexagesimal)."""
    if v is None or isinstance(v, time):
        return v
    if isinstance(v, int):
        return time(v // 60, v % 60)
    return time.fromisoformat(str(v))


def _as_date(v) -> date:
    if isinstance(v, date):
        return v
    return date.fromisoformat(str(v))
