"""One injectable clock for the whole runtime, SpiffWorkflow's timers included.

SpiffWorkflow 3.2.0 reads `datetime.now(timezone.utc)` inside its timer module and
offers no hook, so we replace that module's `datetime` name with a subclass whose
`now()` asks this module. Tests call `set_now()` / `advance()`; they never sleep.
"""
from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta, timezone
from zoneinfo import ZoneInfo

import SpiffWorkflow.bpmn.specs.event_definitions.timer as _spiff_timer

UTC = UTC
SHANGHAI = ZoneInfo("Asia/Shanghai")

_source: Callable[[], datetime] = lambda: datetime.now(UTC)  # noqa: E731


def now() -> datetime:
    """The current time, timezone-aware UTC."""
    return _source()


def set_source(fn: Callable[[], datetime] | None) -> None:
    """Replace the time source (None restores the real clock)."""
    global _source
    _source = fn or (lambda: datetime.now(UTC))


class FakeClock:
    """A manual clock for tests and scenarios."""

    def __init__(self, start: datetime):
        if start.tzinfo is None:
            raise ValueError("FakeClock needs an aware datetime")
        self.current = start.astimezone(UTC)

    def __call__(self) -> datetime:
        return self.current

    def advance(self, delta: timedelta) -> datetime:
        self.current += delta
        return self.current

    def set(self, when: datetime) -> None:
        self.current = when.astimezone(UTC)


def install_fake(start: datetime) -> FakeClock:
    clock = FakeClock(start)
    set_source(clock)
    return clock


def install_shift(delta: timedelta) -> None:
    """Run `delta` ahead of (or behind) real time and keep ticking: for a separate test process
    (a scheduler, a web server) that must see a timer as due without anyone sleeping."""
    set_source(lambda: datetime.now(UTC) + delta)


def parse_shift(text: str) -> timedelta:
    """`+P2D` / `-PT3H` (an ISO 8601 duration from now) or an ISO time such as
    `2030-01-02T08:00:00+08:00` (the clock then starts there), as the shift from real time."""
    value = text.strip()
    sign = -1 if value.startswith("-") else 1
    body = value.lstrip("+-")
    if body[:1].upper() == "P":
        try:
            parsed = _spiff_timer.TimerEventDefinition.parse_iso_duration(body.upper())
        except Exception as e:  # noqa: BLE001 - Spiff raises bare exceptions for bad text
            raise ValueError(f"not an ISO 8601 duration: {text!r}") from e
        real = datetime.now(UTC)
        return sign * (_spiff_timer.TimerEventDefinition.get_timedelta_from_start(parsed, real))
    when = datetime.fromisoformat(value)
    if when.tzinfo is None:
        raise ValueError(f"the test clock needs a time with an offset: {text!r}")
    return when - datetime.now(UTC)


class _ClockDatetime(datetime):
    @classmethod
    def now(cls, tz=None):  # type: ignore[override]
        n = _source()
        return n.astimezone(tz) if tz else n.astimezone(SHANGHAI).replace(tzinfo=None)


_spiff_timer.datetime = _ClockDatetime


def to_utc(value: datetime | None) -> datetime | None:
    """Normalise a datetime read back from the database (SQLite drops tzinfo) to aware UTC."""
    if value is None:
        return None
    if value.tzinfo is None:
        return value.replace(tzinfo=UTC)
    return value.astimezone(UTC)


def local(value: datetime | None) -> datetime | None:
    """Display helper: Asia/Shanghai wall time."""
    v = to_utc(value)
    return v.astimezone(SHANGHAI) if v else None

# A timeDate without an offset means Beijing time everywhere, not the server's zone.
_spiff_timer.LOCALTZ = timezone(timedelta(hours=8))


def duration(text: str, start: datetime | None = None) -> timedelta:
    """An ISO 8601 duration (P3D, PT2H, P1M ...) as a timedelta from `start` (months are calendar-aware)."""
    parsed = _spiff_timer.TimerEventDefinition.parse_iso_duration(text)
    return _spiff_timer.TimerEventDefinition.get_timedelta_from_start(parsed, start or now())
