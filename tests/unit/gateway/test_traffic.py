"""The gateway's rate-limit policy without Redis: classes, release windows, limits, problems."""

from __future__ import annotations

import re
from datetime import UTC, datetime, time, timedelta
from zoneinfo import ZoneInfo

import pytest
from fastapi import APIRouter
from fastapi.routing import APIRoute
from pydantic import ValidationError

from services.appointments.routes import admin, bookings, changes, clinic, waitlist
from services.gateway.traffic import (
    SCRIPTED_AGENTS,
    ClassLimits,
    EndpointClass,
    RateLimitSettings,
    classify,
    is_exempt,
    is_scripted_user_agent,
    limits_for,
    refusal,
    release_window,
)
from shared.ratelimit import Budget, Decision, Limit, client_key

pytestmark = pytest.mark.unit

SHANGHAI = ZoneInfo("Asia/Shanghai")
B = EndpointClass.BOOKING
A = EndpointClass.APPOINTMENT


@pytest.mark.parametrize(
    ("method", "path", "expected"),
    [
        ("POST", "/v1/auth/otp", EndpointClass.LOGIN_CODE),
        ("POST", "/v1/auth/login/otp", EndpointClass.LOGIN),
        ("POST", "/v1/auth/login/password", EndpointClass.LOGIN),
        ("POST", "/v1/auth/login/wechat", EndpointClass.LOGIN),
        ("POST", "/v1/auth/refresh", EndpointClass.LOGIN),
        ("POST", "/v1/auth/logout", EndpointClass.WRITE),
        ("GET", "/v1/auth/otp", EndpointClass.READ),
        ("POST", "/v1/appointments/appointments", B),
        ("post", "/v1/appointments/appointments/", B),
        ("POST", "/v1/appointments//appointments", B),
        ("POST", "/v1/appointments/appointments/a1/cancel", A),
        ("POST", "/v1/appointments/appointments/a1/reschedule", B),
        ("POST", "/v1/appointments/appointments/a1/check-in", A),
        ("POST", "/v1/appointments/appointments/a1/check-in/", A),
        ("POST", "/v1/appointments/waitlist", B),
        ("DELETE", "/v1/appointments/waitlist/w1", A),
        ("POST", "/v1/appointments/waitlist/w1/confirm", B),
        ("POST", "/v1/appointments/rebooking-offers/o1/accept", B),
        ("POST", "/v1/appointments/rebooking-offers/o1/decline", A),
        ("POST", "/v1/appointments/schedules/s1/extra-numbers", A),
        ("PUT", "/v1/appointments/appointments", A),  # not a booking: the service refuses
        ("POST", "/v1/appointments/appointmentsx", EndpointClass.WRITE),
        ("POST", "/v1/appointments/patients", EndpointClass.WRITE),
        ("PUT", "/v1/appointments/admin/policies/h1", EndpointClass.WRITE),
        ("POST", "/v1/notifications/inbox/read", EndpointClass.WRITE),
        ("GET", "/v1/appointments/appointments", EndpointClass.READ),
        ("HEAD", "/v1/appointments/schedules", EndpointClass.READ),
        ("OPTIONS", "/v1/appointments/appointments", EndpointClass.READ),
        ("GET", "/v1/notifications/inbox/stream", EndpointClass.STREAM),
        ("GET", "/v1/notifications/me/inbox/stream", EndpointClass.STREAM),
        ("GET", "/v1/notifications/inbox", EndpointClass.READ),
    ],
)
def test_classify(method: str, path: str, expected: EndpointClass) -> None:
    assert classify(method, path) is expected


def _changes_of(*routers: APIRouter) -> list[tuple[str, str]]:
    """(method, concrete path) of every non-GET route, path parameters filled in."""
    out: list[tuple[str, str]] = []
    for router in routers:
        for route in router.routes:
            assert isinstance(route, APIRoute)
            path = re.sub(r"\{[^}]+\}", "x1", route.path)
            out += [(m, path) for m in route.methods or () if m not in {"GET", "HEAD"}]
    return out


BOOKING_ROUTES = {  # the calls that take a bookable number: the booking budget
    ("POST", "/v1/appointments/appointments"),
    ("POST", "/v1/appointments/appointments/x1/reschedule"),
    ("POST", "/v1/appointments/waitlist"),
    ("POST", "/v1/appointments/waitlist/x1/confirm"),
    ("POST", "/v1/appointments/rebooking-offers/x1/accept"),
}


def test_only_calls_that_take_a_number_spend_the_booking_budget() -> None:
    routes = _changes_of(bookings.router, waitlist.router, changes.router)
    routes += [r for r in _changes_of(clinic.router) if r[1].endswith("/accept")]
    assert len(routes) >= 8
    assert set(routes) >= BOOKING_ROUTES
    for method, path in routes:
        expected = B if (method, path) in BOOKING_ROUTES else A
        assert classify(method, path) is expected, (method, path)
    assert classify("POST", "/v1/appointments/appointments/x1/check-in") is A
    assert {classify(m, p) for m, p in _changes_of(admin.router)} == {EndpointClass.WRITE}


def _utc(
    year: int,
    month: int,
    day: int,
    hour: int,
    minute: int,
    second: int = 0,
    *,
    zone: ZoneInfo = SHANGHAI,
) -> datetime:
    """A local wall time in ``zone`` (Shanghai unless given), as UTC."""
    return datetime(year, month, day, hour, minute, second, tzinfo=zone).astimezone(UTC)


def test_release_windows_of_the_default_settings() -> None:
    s = RateLimitSettings()
    assert s.release_window_at(_utc(2025, 3, 1, 8, 0)) == (
        datetime(2025, 3, 1, 0, 0, tzinfo=UTC),
        datetime(2025, 3, 1, 0, 10, tzinfo=UTC),
    )
    assert s.release_window_at(_utc(2025, 3, 1, 7, 9, 59)) is not None
    assert s.release_window_at(_utc(2025, 3, 1, 15, 5)) is not None
    assert s.release_window_at(_utc(2025, 3, 1, 8, 10)) is None  # the end is exclusive
    assert s.release_window_at(_utc(2025, 3, 1, 7, 59, 59)) is None
    assert s.release_window_at(_utc(2025, 3, 1, 12, 0)) is None
    # the same instant however it is written: 00:05 UTC is 08:05 in Shanghai
    assert s.release_window_at(datetime(2025, 3, 1, 0, 5, tzinfo=UTC)) is not None
    assert s.release_window_at(datetime(2025, 3, 1, 8, 5, tzinfo=UTC)) is None


def test_a_window_crosses_midnight() -> None:
    s = RateLimitSettings(release_windows=["23:55"], release_window_minutes=10)
    start = _utc(2025, 12, 31, 23, 55)
    inside = s.release_window_at(_utc(2026, 1, 1, 0, 4, 59))
    assert inside == (start, start + timedelta(minutes=10))
    assert s.release_window_at(_utc(2026, 1, 1, 0, 5)) is None
    assert s.release_window_at(_utc(2025, 12, 31, 23, 54, 59)) is None
    assert s.release_window_at(_utc(2025, 12, 31, 23, 55)) == inside


def test_windows_follow_the_configured_zone_and_last_real_minutes_over_dst() -> None:
    london = RateLimitSettings(release_windows=["08:00"], timezone="Europe/London")
    assert london.release_window_at(datetime(2025, 1, 15, 8, 5, tzinfo=UTC)) is not None
    assert london.release_window_at(datetime(2025, 7, 15, 7, 5, tzinfo=UTC)) is not None  # BST
    assert london.release_window_at(datetime(2025, 7, 15, 8, 5, tzinfo=UTC)) is None
    new_york = ZoneInfo("America/New_York")
    # 01:55 EST on the spring-forward night; ten real minutes later the clocks read 03:05
    window = release_window(_utc(2024, 3, 10, 3, 2, zone=new_york), [time(1, 55)], 10, new_york)
    assert window == (
        datetime(2024, 3, 10, 6, 55, tzinfo=UTC),
        datetime(2024, 3, 10, 7, 5, tzinfo=UTC),
    )
    assert (
        release_window(_utc(2024, 3, 10, 3, 5, zone=new_york), [time(1, 55)], 10, new_york) is None
    )


def test_window_needs_an_aware_now_and_no_windows_means_none() -> None:
    with pytest.raises(ValueError, match="aware"):
        RateLimitSettings().release_window_at(datetime(2025, 3, 1, 8, 0))
    assert RateLimitSettings(release_windows=[]).release_window_at(_utc(2025, 3, 1, 8, 0)) is None


@pytest.mark.parametrize(
    "bad",
    [
        {"release_windows": ["8:00"]},
        {"release_windows": ["24:00"]},
        {"timezone": "Mars/Olympus"},
        {"exempt_networks": ["10.0.0.1/8"]},
        {"slow_lane": {"capacity": 0, "window_seconds": 60}},
        {"release_window_minutes": 0},
        {"booking": {"per_ip": {"capacity": -1, "window_seconds": 60}}},
        {"no_such_setting": 1},
    ],
)
def test_settings_are_validated(bad: dict[str, object]) -> None:
    with pytest.raises(ValidationError):
        RateLimitSettings.model_validate(bad)


def test_settings_are_overridable_from_json_as_in_the_environment() -> None:
    s = RateLimitSettings.model_validate_json(
        '{"booking": {"per_account": {"capacity": 3, "window_seconds": 30}},'
        ' "release_windows": ["09:30"]}'
    )
    assert s.booking.per_account == Budget(capacity=3, window_seconds=30)
    assert s.booking.per_ip is None  # a class given is replaced as a whole
    assert s.read == RateLimitSettings().read


@pytest.mark.parametrize(
    ("agent", "scripted"),
    [
        (None, True),
        ("", True),
        ("   ", True),
        ("curl/8.5.0", True),
        ("python-requests/2.31.0", True),
        ("python-httpx/0.27.0", True),
        ("Go-http-client/1.1", True),
        ("okhttp/4.12.0", True),
        ("Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 HeadlessChrome/120.0", True),
        ("Mozilla/5.0 (iPhone; CPU iPhone OS 17_0) MicroMessenger/8.0.47 NetType/WIFI", False),
        ("Mozilla/5.0 (Windows NT 10.0; Win64; x64) Chrome/124.0 Safari/537.36", False),
    ],
)
def test_scripted_user_agents(agent: str | None, scripted: bool) -> None:
    assert is_scripted_user_agent(agent, SCRIPTED_AGENTS) is scripted


def test_client_keys() -> None:
    assert client_key("203.0.113.7") == "203.0.113.7"
    assert client_key("::ffff:203.0.113.7") == "203.0.113.7"
    same_host = {client_key("2001:db8:1:2::1"), client_key("2001:db8:1:2:ffff::9")}
    assert same_host == {"2001:db8:1:2::/64"}
    assert client_key("2001:db8:1:3::1") != client_key("2001:db8:1:2::1")
    garbage = client_key("not an address; DROP")
    assert garbage.startswith("x")
    assert "DROP" not in garbage


def test_limits_for_a_booking_by_a_patient() -> None:
    s = RateLimitSettings()
    limits = limits_for(s, endpoint_class=B, client_ip="203.0.113.7", account_id="acct-1")
    assert {(x.name, x.key, x.capacity, x.window_seconds) for x in limits} == {
        ("booking.all", "all", 2000, 1),
        ("booking.ip", "203.0.113.7", 120, 60),
        ("booking.account", "acct-1", 10, 60),
    }


def test_limits_for_anonymous_staff_and_exempt_callers() -> None:
    s = RateLimitSettings(exempt_networks=["10.20.0.0/16"])
    anonymous = limits_for(s, endpoint_class=B, client_ip="203.0.113.7", account_id=None)
    assert {x.name for x in anonymous} == {"booking.all", "booking.ip"}
    staff = limits_for(
        s, endpoint_class=B, client_ip="10.20.3.4", account_id="agent-1", is_staff=True
    )
    assert {(x.name, x.capacity) for x in staff} == {
        ("booking.all", 2000),
        ("booking.account", 100),
    }
    assert is_exempt(s, "10.20.3.4")
    assert not is_exempt(s, "10.21.3.4")
    assert not is_exempt(s, "garbage")


def test_limits_for_request_fields_and_disabled_budgets() -> None:
    s = RateLimitSettings(
        login_code=ClassLimits(
            per_ip=Budget(capacity=0, window_seconds=60),  # 0 turns a limit off
            per_key={"phone": Budget(capacity=3, window_seconds=900)},
        )
    )
    limits = limits_for(
        s,
        endpoint_class=EndpointClass.LOGIN_CODE,
        client_ip="203.0.113.7",
        account_id=None,
        extra_keys={"phone": "digest-1", "username": "digest-2", "empty": ""},
    )
    assert [(x.name, x.key, x.capacity) for x in limits] == [("login_code.phone", "digest-1", 3)]
    login = limits_for(
        RateLimitSettings(),
        endpoint_class=EndpointClass.LOGIN,
        client_ip="203.0.113.7",
        account_id=None,
        extra_keys={"username": "digest-2"},
    )
    assert {x.name for x in login} == {"login.ip", "login.username"}


def test_limit_validation() -> None:
    with pytest.raises(ValueError, match="capacity"):
        Limit("x", "k", 0, 60)
    with pytest.raises(ValueError, match="window"):
        Limit("x", "k", 1, 0)
    assert Limit("x", "k", 3, 1).interval_us == 333_333


def test_refusal_problems() -> None:
    limit = Limit("booking.account", "acct-1", 10, 60)
    decision = Decision(allowed=False, retry_after=7, limit=limit, remaining=0)
    problem = refusal(B, decision, slow_lane=False)
    assert (problem.status, problem.code) == (429, "rate_limited")
    assert problem.headers == {"Retry-After": "7"}
    assert problem.extra == {"limit": "booking.account"}
    assert "7" in problem.detail
    assert problem.detail_zh is not None
    assert "预约" in problem.detail_zh
    slow = refusal(B, decision, slow_lane=True)
    assert slow.code == "slow_lane"
    assert slow.headers == {"Retry-After": "7"}
    read = refusal(EndpointClass.READ, Decision(False, 0, None, 0), slow_lane=False)
    assert read.headers == {"Retry-After": "1"}
    assert read.extra == {"limit": "read"}


@pytest.mark.parametrize(
    ("seconds", "english", "chinese"),
    [
        (
            1,
            "Too many booking requests right now; retry in 1 second.",
            "当前预约请求过多，请 1 秒后再试。",
        ),
        (
            2,
            "Too many booking requests right now; retry in 2 seconds.",
            "当前预约请求过多，请 2 秒后再试。",
        ),
        (
            0,
            "Too many booking requests right now; retry in 1 second.",
            "当前预约请求过多，请 1 秒后再试。",
        ),
        (
            61,
            "Too many booking requests right now; retry in 61 seconds.",
            "当前预约请求过多，请 61 秒后再试。",
        ),
    ],
)
def test_the_wait_reads_naturally(seconds: int, english: str, chinese: str) -> None:
    limit = Limit("booking.account", "acct-1", 10, 60)
    problem = refusal(B, Decision(False, seconds, limit, 0), slow_lane=False)
    assert (problem.detail, problem.detail_zh) == (english, chinese)
    assert problem.headers == {"Retry-After": str(max(1, seconds))}


def test_appointment_changes_have_their_own_budget() -> None:
    s = RateLimitSettings()
    limits = limits_for(s, endpoint_class=A, client_ip="198.51.100.1", account_id="acct-1")
    assert {x.name for x in limits} == {"appointment.ip", "appointment.account"}
    assert A not in s.fail_closed  # checking in at the hospital works while Redis is away
    problem = refusal(A, Decision(False, 3, limits[0], 0), slow_lane=False)
    assert problem.detail_zh == "预约操作过于频繁，请 3 秒后再试。"
