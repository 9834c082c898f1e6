"""Working days on China's official calendar (chinesecalendar 1.11.0), and deadlines."""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import pytest

from services.followup.domain.working_days import (
    add_working_days,
    calendar_covers,
    holiday_name,
    is_working_day,
    next_working_day,
    nth_working_day_after,
    working_days_between,
)

pytestmark = pytest.mark.unit

TZ = "Asia/Shanghai"
CST = ZoneInfo(TZ)


def local(y: int, m: int, d: int, hh: int = 10, mm: int = 0) -> datetime:
    return datetime(y, m, d, hh, mm, tzinfo=CST)


def closing(y: int, m: int, d: int, at: time = time(17, 30)) -> datetime:
    return datetime.combine(date(y, m, d), at, tzinfo=CST).astimezone(UTC)


def days(start: date, end: date) -> list[date]:
    return [start + timedelta(n) for n in range((end - start).days + 1)]


# --- the 2026 calendar, as the library states it ------------------------------------------


def test_the_library_covers_2026_but_not_2027() -> None:
    assert calendar_covers(2026)
    assert calendar_covers(2004)
    assert not calendar_covers(2027)
    assert not calendar_covers(2003)


def test_national_day_2026_is_october_1_to_7() -> None:
    for d in days(date(2026, 10, 1), date(2026, 10, 7)):
        assert not is_working_day(d), d
        assert holiday_name(d) == "National Day"
    assert is_working_day(date(2026, 9, 30))
    assert is_working_day(date(2026, 10, 8))


def test_national_day_2026_adjusted_working_days_are_sep_20_and_oct_10() -> None:
    assert date(2026, 9, 20).weekday() == 6  # a Sunday
    assert is_working_day(date(2026, 9, 20))
    assert holiday_name(date(2026, 9, 20)) == "National Day"
    assert date(2026, 10, 10).weekday() == 5  # a Saturday
    assert is_working_day(date(2026, 10, 10))
    assert holiday_name(date(2026, 10, 10)) == "National Day"
    # the weekend days beside them stay off
    assert not is_working_day(date(2026, 9, 19))
    assert not is_working_day(date(2026, 10, 11))


def test_mid_autumn_2026_is_september_25_to_27() -> None:
    for d in days(date(2026, 9, 25), date(2026, 9, 27)):
        assert not is_working_day(d), d
        assert holiday_name(d) == "Mid-autumn Festival"
    assert is_working_day(date(2026, 9, 24))
    assert is_working_day(date(2026, 9, 28))


def test_spring_festival_2026_is_february_15_to_23_with_two_working_saturdays() -> None:
    for d in days(date(2026, 2, 15), date(2026, 2, 23)):
        assert not is_working_day(d), d
        assert holiday_name(d) == "Spring Festival"
    for saturday in (date(2026, 2, 14), date(2026, 2, 28)):
        assert saturday.weekday() == 5
        assert is_working_day(saturday)
        assert holiday_name(saturday) == "Spring Festival"
    assert is_working_day(date(2026, 2, 13))
    assert is_working_day(date(2026, 2, 24))


def test_new_year_2026_is_january_1_to_3_and_sunday_4_is_worked() -> None:
    assert [is_working_day(d) for d in days(date(2026, 1, 1), date(2026, 1, 5))] == [
        False,
        False,
        False,
        True,
        True,
    ]


def test_an_ordinary_week_is_monday_to_friday() -> None:
    week = days(date(2026, 3, 9), date(2026, 3, 15))  # Mon 9 .. Sun 15 March
    assert [is_working_day(d) for d in week] == [True] * 5 + [False] * 2
    assert holiday_name(date(2026, 3, 10)) is None


def test_a_year_the_library_does_not_know_falls_back_to_monday_to_friday() -> None:
    assert is_working_day(date(2027, 1, 1))  # a Friday; its New Year holiday is unknown
    assert not is_working_day(date(2027, 1, 2))
    assert holiday_name(date(2027, 1, 1)) is None
    assert next_working_day(date(2027, 1, 1)) == date(2027, 1, 4)


def test_a_datetime_counts_by_its_date() -> None:
    assert not is_working_day(datetime(2026, 10, 1, 9, 0))


def test_next_and_nth_working_day() -> None:
    assert next_working_day(date(2026, 9, 30)) == date(2026, 10, 8)
    assert nth_working_day_after(date(2026, 9, 30), 3) == date(2026, 10, 10)
    with pytest.raises(ValueError, match="at least 1"):
        nth_working_day_after(date(2026, 9, 30), 0)


# --- deadlines -----------------------------------------------------------------------------


def test_five_working_days_in_an_ordinary_week_end_the_next_monday_at_closing() -> None:
    deadline = add_working_days(local(2026, 3, 9), 5, TZ)
    assert deadline == closing(2026, 3, 16)
    assert deadline == datetime(2026, 3, 16, 9, 30, tzinfo=UTC)
    assert deadline.tzinfo is UTC


def test_the_day_of_receipt_is_not_counted_even_at_midnight() -> None:
    assert add_working_days(local(2026, 3, 9, 0, 0), 1, TZ) == closing(2026, 3, 10)
    assert add_working_days(local(2026, 3, 9, 23, 59), 1, TZ) == closing(2026, 3, 10)


def test_a_weekend_receipt_counts_from_monday() -> None:
    assert add_working_days(local(2026, 3, 14), 1, TZ) == closing(2026, 3, 16)
    assert add_working_days(local(2026, 3, 14), 5, TZ) == closing(2026, 3, 20)


def test_zero_working_days_is_the_same_day_by_closing_time() -> None:
    assert add_working_days(local(2026, 3, 9, 9, 0), 0, TZ) == closing(2026, 3, 9)
    assert add_working_days(local(2026, 3, 9, 17, 30), 0, TZ) == closing(2026, 3, 9)


def test_zero_working_days_after_closing_or_on_a_holiday_is_the_next_working_day() -> None:
    assert add_working_days(local(2026, 3, 9, 17, 31), 0, TZ) == closing(2026, 3, 10)
    assert add_working_days(local(2026, 3, 14), 0, TZ) == closing(2026, 3, 16)
    assert add_working_days(local(2026, 10, 3), 0, TZ) == closing(2026, 10, 8)


def test_five_and_ten_working_days_across_national_day_2026() -> None:
    received = local(2026, 9, 30)  # Wed; then Oct 8, 9, Sat 10, 12, 13, ...
    assert add_working_days(received, 5, TZ) == closing(2026, 10, 13)
    assert add_working_days(received, 10, TZ) == closing(2026, 10, 20)


def test_five_working_days_across_mid_autumn_and_national_day_2026() -> None:
    received = local(2026, 9, 24)  # Thu; then Sep 28, 29, 30, Oct 8, 9
    assert add_working_days(received, 5, TZ) == closing(2026, 10, 9)


def test_a_saturday_receipt_before_the_adjusted_sunday() -> None:
    assert add_working_days(local(2026, 9, 19), 1, TZ) == closing(2026, 9, 20)


def test_five_and_ten_working_days_across_spring_festival_2026() -> None:
    received = local(2026, 2, 13, 14, 0)  # Fri; then Sat 14, Feb 24-27, Sat 28, Mar 2-5
    assert add_working_days(received, 5, TZ) == closing(2026, 2, 27)
    assert add_working_days(received, 10, TZ) == closing(2026, 3, 5)


def test_the_day_of_receipt_is_the_local_day() -> None:
    received = datetime(2026, 3, 9, 20, 0, tzinfo=UTC)  # Tue 10 March, 04:00 in Beijing
    assert add_working_days(received, 1, TZ) == closing(2026, 3, 11)


def test_the_closing_time_is_a_parameter() -> None:
    assert add_working_days(local(2026, 3, 9), 1, TZ, time(18, 0)) == closing(
        2026, 3, 10, time(18, 0)
    )


def test_a_deadline_running_into_an_unknown_year_counts_monday_to_friday() -> None:
    # real 2027 holidays are not known: 1 Jan 2027 (Fri) is counted as a working day
    assert add_working_days(local(2026, 12, 30), 5, TZ) == closing(2027, 1, 6)


def test_naive_datetimes_and_negative_counts_are_refused() -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        add_working_days(datetime(2026, 3, 9, 10, 0), 1, TZ)
    with pytest.raises(ValueError, match="negative"):
        add_working_days(local(2026, 3, 9), -1, TZ)


# --- working days between --------------------------------------------------------------------


def test_working_days_between_counts_days_after_the_first_up_to_the_second() -> None:
    assert working_days_between(local(2026, 3, 9), local(2026, 3, 16), TZ) == 5
    assert working_days_between(local(2026, 3, 9), local(2026, 3, 9, 18), TZ) == 0
    assert working_days_between(local(2026, 9, 30), local(2026, 10, 13), TZ) == 5
    assert working_days_between(local(2026, 2, 13), local(2026, 2, 27), TZ) == 5


def test_working_days_between_is_negative_backwards() -> None:
    assert working_days_between(local(2026, 3, 16), local(2026, 3, 9), TZ) == -5


@pytest.mark.parametrize(
    "received",
    [local(2026, 3, 9), local(2026, 9, 19), local(2026, 9, 30), local(2026, 2, 13, 22)],
)
@pytest.mark.parametrize("n", [1, 2, 5, 10])
def test_between_undoes_add(received: datetime, n: int) -> None:
    assert working_days_between(received, add_working_days(received, n, TZ), TZ) == n
