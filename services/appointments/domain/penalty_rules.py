"""Penalties: bans computed from offences, and appeals.

Times are aware datetimes in UTC; clinic dates are local. A rule that refuses raises a
domain error (``domain/errors.py``) with a stable code and a Chinese detail for the
patient; nothing here reads or writes anything.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from services.appointments.domain.errors import Conflict, Forbidden
from services.appointments.domain.policy import PenaltyRule


def ban_until(offences: Sequence[datetime], rule: PenaltyRule, now: datetime) -> datetime | None:
    """When a ban from these offences ends, or None if they do not (or no longer) ban."""
    window_start = now - timedelta(days=rule.window_days)
    recent = sorted(t for t in offences if t >= window_start)
    if len(recent) < rule.threshold:
        # an older ban may still run: find the latest moment the threshold was reached
        return _older_ban(offences, rule, now)
    until = recent[-1] + timedelta(days=rule.ban_days)
    return until if until > now else None


def _older_ban(offences: Sequence[datetime], rule: PenaltyRule, now: datetime) -> datetime | None:
    ordered = sorted(offences)
    for i in range(len(ordered) - rule.threshold, -1, -1):
        group = ordered[i : i + rule.threshold]
        if group[-1] - group[0] <= timedelta(days=rule.window_days):
            until = group[-1] + timedelta(days=rule.ban_days)
            return until if until > now else None
    return None


def check_not_banned(banned_until: datetime | None, now: datetime, tz: str) -> None:
    if banned_until is not None and banned_until > now:
        local = banned_until.astimezone(ZoneInfo(tz))
        raise Forbidden(
            "patient_banned",
            f"booking is suspended until {local.isoformat()}",
            detail_zh=f"因多次爽约或临时取消，{local:%Y-%m-%d} 前暂停预约",
            extra={"banned_until": banned_until.isoformat()},
        )


def is_banned(banned_until: datetime | None, now: datetime) -> bool:
    return banned_until is not None and banned_until > now


def check_appeal_allowed(banned_until: datetime | None, now: datetime, *, pending: bool) -> None:
    """A patient appeals only a running ban, and one appeal at a time."""
    if not is_banned(banned_until, now):
        raise Conflict(
            "not_banned",
            "booking is not suspended for this patient",
            detail_zh="该就诊人当前未被暂停预约，无需申诉",
        )
    if pending:
        raise Conflict(
            "appeal_pending",
            "an appeal is already waiting for a decision",
            detail_zh="已有申诉正在处理中，请耐心等待",
        )


def check_appeal_undecided(status: str) -> None:
    if status != "pending":
        raise Conflict(
            "appeal_already_decided",
            f"this appeal is already {status}",
            detail_zh="该申诉已处理",
            extra={"current_status": status},
        )
