"""Pure rules of bans, appeals and a cancelled session's priority rebooking (no I/O)."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest

from services.appointments.domain import clinic_rules, errors, penalty_rules
from services.appointments.domain.policy import DEFAULT_POLICY
from services.appointments.routes.errors import to_problem
from shared.problems import Conflict, Problem

pytestmark = pytest.mark.unit

TZ = "Asia/Shanghai"
NOW = datetime(2025, 6, 1, 4, 0, tzinfo=UTC)  # 12:00 in Shanghai
SECOND = timedelta(seconds=1)
NO_SHOW = DEFAULT_POLICY.no_show_penalty  # 3 within 90 days ban for 90 days
LATE = DEFAULT_POLICY.late_cancel_penalty  # 3 within 30 days ban for 30 days


def refused(code: str, call: Callable[..., Any], *args: Any, **kw: Any) -> Problem:
    with pytest.raises(errors.DomainError) as caught:
        call(*args, **kw)
    problem = to_problem(caught.value)  # what the client gets
    assert problem.code == code
    assert problem.detail_zh, "patients must get a Chinese explanation"
    return problem


# --- bans lift by themselves -----------------------------------------------------------------


def test_a_no_show_ban_lifts_by_itself_when_it_expires() -> None:
    offences = [NOW - timedelta(days=d) for d in (30, 20, 10)]
    until = penalty_rules.ban_until(offences, NO_SHOW, NOW)
    assert until == NOW - timedelta(days=10) + timedelta(days=90)
    assert until is not None
    just_before = until - SECOND
    assert penalty_rules.ban_until(offences, NO_SHOW, just_before) == until
    with pytest.raises(errors.Forbidden):  # still banned one second before the end
        penalty_rules.check_not_banned(
            penalty_rules.ban_until(offences, NO_SHOW, just_before), just_before, TZ
        )
    # at and after the end nothing bans any more, with no one lifting anything
    for later in (until, until + timedelta(days=1), until + timedelta(days=400)):
        assert penalty_rules.ban_until(offences, NO_SHOW, later) is None
        assert not penalty_rules.is_banned(penalty_rules.ban_until(offences, NO_SHOW, later), later)
        penalty_rules.check_not_banned(penalty_rules.ban_until(offences, NO_SHOW, later), later, TZ)


def test_a_late_cancel_ban_lifts_after_thirty_days() -> None:
    offences = [NOW - timedelta(days=d) for d in (5, 3, 1)]
    until = penalty_rules.ban_until(offences, LATE, NOW)
    assert until == NOW + timedelta(days=29)
    assert penalty_rules.is_banned(until, NOW)
    assert penalty_rules.ban_until(offences, LATE, NOW + timedelta(days=29)) is None


@pytest.mark.parametrize(
    ("until", "banned"),
    [(None, False), (NOW - SECOND, False), (NOW, False), (NOW + SECOND, True)],
)
def test_is_banned_only_while_the_ban_runs(until: datetime | None, banned: bool) -> None:
    assert penalty_rules.is_banned(until, NOW) is banned


# --- appeals ---------------------------------------------------------------------------------


def test_a_banned_patient_may_appeal_once() -> None:
    penalty_rules.check_appeal_allowed(NOW + timedelta(days=3), NOW, pending=False)
    refused(
        "appeal_pending",
        penalty_rules.check_appeal_allowed,
        NOW + timedelta(days=3),
        NOW,
        pending=True,
    )


@pytest.mark.parametrize("until", [None, NOW - timedelta(days=1), NOW])
@pytest.mark.parametrize("pending", [False, True])
def test_no_appeal_without_a_running_ban(until: datetime | None, pending: bool) -> None:
    problem = refused("not_banned", penalty_rules.check_appeal_allowed, until, NOW, pending=pending)
    assert problem.status == 409


def test_an_appeal_is_decided_once() -> None:
    penalty_rules.check_appeal_undecided("pending")
    for status in ("approved", "rejected", "overridden"):
        problem = refused("appeal_already_decided", penalty_rules.check_appeal_undecided, status)
        assert problem.extra["current_status"] == status


# --- a cancelled session and priority rebooking ------------------------------------------------


def test_a_published_session_may_be_cancelled_until_it_ends() -> None:
    ends = NOW + timedelta(hours=2)
    clinic_rules.check_session_cancellable(status="published", now=NOW, ends_at=ends)
    clinic_rules.check_session_cancellable(status="published", now=ends - SECOND, ends_at=ends)
    refused(
        "schedule_ended",
        clinic_rules.check_session_cancellable,
        status="published",
        now=ends,
        ends_at=ends,
    )
    refused(
        "schedule_already_cancelled",
        clinic_rules.check_session_cancellable,
        status="cancelled",
        now=NOW,
        ends_at=ends,
    )


def test_a_rebooking_offer_runs_for_48_hours() -> None:
    assert clinic_rules.rebooking_offer_expires_at(NOW) == NOW + timedelta(hours=48)
    assert clinic_rules.rebooking_offer_expires_at(NOW, hours=2) == NOW + timedelta(hours=2)


def test_the_horizon_is_fourteen_local_days_ahead() -> None:
    late_evening_utc = datetime(2025, 6, 1, 17, 0, tzinfo=UTC)  # 01:00 on 2 June in Shanghai
    assert clinic_rules.rebooking_horizon(late_evening_utc, TZ) == (
        date(2025, 6, 2),
        date(2025, 6, 16),
    )
    assert clinic_rules.rebooking_horizon(NOW, TZ) == (date(2025, 6, 1), date(2025, 6, 15))


def test_an_alternative_is_valid_until_the_offer_expires_or_the_session_starts() -> None:
    expires = NOW + timedelta(hours=48)
    soon = NOW + timedelta(hours=5)
    later = NOW + timedelta(days=6)
    assert clinic_rules.alternative_valid_until(expires, soon) == soon
    assert clinic_rules.alternative_valid_until(expires, later) == expires


def test_an_alternative_is_refused_after_expiry_or_start() -> None:
    expires = NOW + timedelta(hours=48)
    starts = NOW + timedelta(days=5)
    clinic_rules.check_rebooking_alternative(now=NOW, offer_expires_at=expires, starts_at=starts)
    refused(
        "rebooking_offer_expired",
        clinic_rules.check_rebooking_alternative,
        now=expires,
        offer_expires_at=expires,
        starts_at=starts,
    )
    started = NOW - SECOND
    problem = refused(
        "alternative_started",
        clinic_rules.check_rebooking_alternative,
        now=NOW,
        offer_expires_at=expires,
        starts_at=started,
    )
    assert isinstance(problem, Conflict)
