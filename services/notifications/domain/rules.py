"""Pure delivery rules: preferences, quiet hours, channel choice, retries. No I/O here.

* Quiet hours (default 22:00–07:00 hospital time) hold a push message until they end;
  urgent kinds pass.
* A patient may turn a push channel off, except for mandatory kinds.
* The push channels of a kind are tried in its fallback order (WeChat → SMS → voice);
  a channel without an address or turned off is skipped with its reason recorded.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, time, timedelta
from zoneinfo import ZoneInfo

from services.notifications.domain.channels import Channel


@dataclass(frozen=True)
class QuietHours:
    start: time
    end: time

    @classmethod
    def parse(cls, start: str, end: str) -> QuietHours:
        return cls(time.fromisoformat(start), time.fromisoformat(end))

    def contains(self, clock: time) -> bool:
        if self.start == self.end:
            return False
        if self.start < self.end:  # e.g. 12:00-14:00
            return self.start <= clock < self.end
        return clock >= self.start or clock < self.end  # across midnight, e.g. 22:00-07:00


@dataclass(frozen=True)
class Preferences:
    language: str = "zh-CN"
    disabled: frozenset[Channel] = frozenset()  # push channels the patient turned off
    quiet_hours: QuietHours | None = field(
        default_factory=lambda: QuietHours.parse("22:00", "07:00")
    )


def quiet_until(now: datetime, quiet: QuietHours | None, timezone: str) -> datetime | None:
    """When the quiet hours around ``now`` end (an aware datetime), or None outside them."""
    if quiet is None:
        return None
    local = now.astimezone(ZoneInfo(timezone))
    if not quiet.contains(local.time().replace(tzinfo=None)):
        return None
    end = local.replace(hour=quiet.end.hour, minute=quiet.end.minute, second=0, microsecond=0)
    if end <= local:
        end += timedelta(days=1)
    return end.astimezone(now.tzinfo)


def send_at(now: datetime, *, urgent: bool, prefs: Preferences, timezone: str) -> datetime:
    """When a push message may go out: now, or the end of the patient's quiet hours."""
    if urgent:
        return now
    return quiet_until(now, prefs.quiet_hours, timezone) or now


@dataclass(frozen=True)
class Skipped:
    channel: Channel
    reason: str  # channel_off | no_address


@dataclass(frozen=True)
class ChannelPlan:
    """The push channels to try in order, and the ones left out with why."""

    chain: tuple[Channel, ...]
    skipped: tuple[Skipped, ...]


def plan_channels(
    push: Sequence[Channel],
    *,
    mandatory: bool,
    prefs: Preferences,
    reachable: Mapping[Channel, bool],
) -> ChannelPlan:
    chain: list[Channel] = []
    skipped: list[Skipped] = []
    for channel in push:
        if not mandatory and channel in prefs.disabled:
            skipped.append(Skipped(channel, "channel_off"))
        elif not reachable.get(channel, False):
            skipped.append(Skipped(channel, "no_address"))
        else:
            chain.append(channel)
    return ChannelPlan(tuple(chain), tuple(skipped))


def retry_delay(attempt: int, *, base: float, cap: float) -> timedelta:
    """Backoff before attempt ``attempt + 1`` on the same channel (attempt counts from 1)."""
    return timedelta(seconds=min(base * 2 ** (attempt - 1), cap))


def is_expired(now: datetime, expires_at: datetime | None) -> bool:
    return expires_at is not None and now >= expires_at


def reminder_times(
    starts_at: datetime, offsets_minutes: Sequence[int], now: datetime
) -> list[tuple[int, datetime]]:
    """The reminders still ahead for a visit at ``starts_at``: (minutes before, due time)."""
    due = [
        (m, starts_at - timedelta(minutes=m)) for m in sorted(set(offsets_minutes), reverse=True)
    ]
    return [(m, at) for m, at in due if at > now and m > 0]


def fallback_after(chain: Sequence[Channel], channel: Channel) -> Channel | None:
    """The channel to try after ``channel`` failed, if the plan has one."""
    if channel not in chain:
        return None
    index = chain.index(channel)
    return chain[index + 1] if index + 1 < len(chain) else None
