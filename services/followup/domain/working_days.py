"""Working days on China's official calendar: statutory holidays and adjusted working
days (调休), from the ``chinesecalendar`` package (years 2004-2026 in v1.11.0).

A year the package does not know falls back to Monday-Friday; :func:`calendar_covers`
says whether a year is known, so the service can warn (nothing here raises for it).

Deadline rule (:func:`add_working_days`): the day of receipt is the local calendar day
in the organization's time zone and is not counted (as 民法典 第二百零一条: 开始的当日不计入).
The deadline is the closing time (default 17:30 local) of the n-th working day after it.
For n = 0 it is the closing time of the day of receipt when that is a working day and the
complaint came in no later than closing; otherwise the closing time of the next working
day. Results are aware UTC datetimes.

Pure: no I/O.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from functools import lru_cache
from zoneinfo import ZoneInfo

import chinese_calendar  # type: ignore[import-untyped]

DEFAULT_CLOSING = time(17, 30)
_MAX_STEPS = 3660  # ten years of days: a guard against runaway loops


@lru_cache(maxsize=64)
def calendar_covers(year: int) -> bool:
    """Whether the official calendar knows ``year`` (else Monday-Friday is assumed)."""
    try:
        chinese_calendar.is_workday(date(year, 6, 1))
    except NotImplementedError:
        return False
    return True


def is_working_day(d: date) -> bool:
    """A working day on the official calendar (调休 Saturdays included, holidays not)."""
    if isinstance(d, datetime):
        d = d.date()
    if not calendar_covers(d.year):
        return d.weekday() < 5
    return bool(chinese_calendar.is_workday(d))


def holiday_name(d: date) -> str | None:
    """The statutory holiday ``d`` belongs to (also set on its adjusted working days)."""
    if not calendar_covers(d.year):
        return None
    _, name = chinese_calendar.get_holiday_detail(d)
    return str(name) if name else None


def next_working_day(d: date) -> date:
    """The first working day strictly after ``d``."""
    for _ in range(_MAX_STEPS):
        d += timedelta(days=1)
        if is_working_day(d):
            return d
    raise AssertionError("no working day within ten years")  # pragma: no cover


def nth_working_day_after(d: date, n: int) -> date:
    """The n-th working day strictly after ``d`` (n >= 1)."""
    if n < 1:
        raise ValueError("n must be at least 1")
    for _ in range(n):
        d = next_working_day(d)
    return d


def _zone(tz: str) -> ZoneInfo:
    return ZoneInfo(tz)


def _local(moment: datetime, tz: str) -> datetime:
    if moment.tzinfo is None:
        raise ValueError("a timezone-aware datetime is required")
    return moment.astimezone(_zone(tz))


def closing_at(day: date, tz: str, closing: time = DEFAULT_CLOSING) -> datetime:
    """``day`` at the closing time, local, as an aware UTC datetime."""
    return datetime.combine(day, closing, tzinfo=_zone(tz)).astimezone(UTC)


def add_working_days(start: datetime, n: int, tz: str, closing: time = DEFAULT_CLOSING) -> datetime:
    """The deadline n working days after ``start`` (see the module's rule), in UTC."""
    if n < 0:
        raise ValueError("n must not be negative")
    local = _local(start, tz)
    received = local.date()
    if n == 0:
        on_time = local.time() <= closing
        day = received if is_working_day(received) and on_time else next_working_day(received)
    else:
        day = nth_working_day_after(received, n)
    return closing_at(day, tz, closing)


def working_days_between(a: datetime, b: datetime, tz: str) -> int:
    """Working days d with local(a) < d <= local(b) (by calendar day); negative when
    ``b`` is before ``a``. For n >= 1: ``working_days_between(s, add_working_days(s, n))``
    is n."""
    first, last = _local(a, tz).date(), _local(b, tz).date()
    sign = 1
    if last < first:
        first, last, sign = last, first, -1
    count = 0
    d = first
    while d < last:
        d += timedelta(days=1)
        if is_working_day(d):
            count += 1
    return sign * count
