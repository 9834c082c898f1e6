"""Booking figures of an organization for the managers' dashboard.

Counted in Mongo (aggregations on the ``org_booked_on`` and ``org_clinic_date`` indexes of
``store.py``), over the organization's local dates (its booking policy's time zone):

* bookings made in the period (``booked_on``), by channel, in total and per day; a move
  (``rescheduled_from``) is not a new booking; ``cancelled``: how many of them were
  cancelled since (by the patient, the hotline or a cancelled session);
* today's bookings by channel;
* the self-service ("smart booking") rate: bookings through the app / all bookings;
* the sessions held in the period (``clinic_date``): checked in, no-shows, cancelled,
  and the no-show rate = no-shows / (checked in + no-shows).
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from services.appointments.domain import booking_rules
from services.appointments.domain.models import AppointmentStatus, Channel
from services.appointments.policies import Policies
from services.appointments.store import APPOINTMENTS
from shared.mongo import Database

CHANNELS = tuple(c.value for c in Channel)
SESSION_STATUSES = (
    AppointmentStatus.BOOKED.value,
    AppointmentStatus.CHECKED_IN.value,
    AppointmentStatus.NO_SHOW.value,
    AppointmentStatus.CANCELLED.value,
)


def _by_channel() -> dict[str, int]:
    return dict.fromkeys(CHANNELS, 0)


def _rate(part: int, whole: int) -> float | None:
    return None if whole == 0 else round(part / whole, 4)


class AppointmentFigures:
    def __init__(self, db: Database, policies: Policies) -> None:
        self.db = db
        self.policies = policies

    async def figures(
        self, org_id: str, date_from: date, date_to: date, now: datetime
    ) -> dict[str, Any]:
        policy = await self.policies.for_org(org_id)
        today = booking_rules.clinic_date_of(now, policy.timezone)
        bookings = await self._bookings(org_id, date_from.isoformat(), date_to.isoformat())
        todays = await self._bookings(org_id, today.isoformat(), today.isoformat())
        sessions = await self._sessions(org_id, date_from.isoformat(), date_to.isoformat())
        app = bookings["by_channel"][Channel.APP.value]
        return {
            "org_id": org_id,
            "timezone": policy.timezone,
            "date_from": date_from.isoformat(),
            "date_to": date_to.isoformat(),
            "bookings": bookings,
            "today": {
                "date": today.isoformat(),
                "total": todays["total"],
                "by_channel": todays["by_channel"],
            },
            "smart_booking_rate": _rate(app, bookings["total"]),
            "cancellations": bookings["cancelled"],
            "sessions": sessions,
            "no_show_rate": sessions["no_show_rate"],
        }

    async def _bookings(self, org_id: str, first: str, last: str) -> dict[str, Any]:
        """New bookings made on the local dates ``[first, last]``: by day, channel and
        whether they were cancelled since (one ``$group`` on the ``org_booked_on`` index)."""
        pipeline: list[dict[str, Any]] = [
            {
                "$match": {
                    "org_id": org_id,
                    "booked_on": {"$gte": first, "$lte": last},
                    "rescheduled_from": {"$exists": False},
                }
            },
            {
                "$group": {
                    "_id": {"day": "$booked_on", "channel": "$channel", "status": "$status"},
                    "n": {"$sum": 1},
                }
            },
        ]
        days: dict[str, dict[str, int]] = {}
        total, cancelled, by_channel = 0, 0, _by_channel()
        async for row in await self.db[APPOINTMENTS].aggregate(pipeline):
            key, n = row["_id"], int(row["n"])
            channel = str(key.get("channel"))
            day = days.setdefault(str(key.get("day")), _by_channel())
            day[channel] = day.get(channel, 0) + n
            by_channel[channel] = by_channel.get(channel, 0) + n
            total += n
            if key.get("status") == AppointmentStatus.CANCELLED.value:
                cancelled += n
        return {
            "total": total,
            "cancelled": cancelled,
            "by_channel": by_channel,
            "by_day": [
                {"date": day, "total": sum(counts.values()), "by_channel": counts}
                for day, counts in sorted(days.items())
            ],
        }

    async def _sessions(self, org_id: str, first: str, last: str) -> dict[str, Any]:
        """The appointments of the sessions held on ``[first, last]`` by status (the
        ``org_clinic_date`` index); moved ones (``rescheduled``) count where they went."""
        pipeline: list[dict[str, Any]] = [
            {
                "$match": {
                    "org_id": org_id,
                    "clinic_date": {"$gte": first, "$lte": last},
                    "status": {"$in": list(SESSION_STATUSES)},
                }
            },
            {"$group": {"_id": "$status", "n": {"$sum": 1}}},
        ]
        counts = dict.fromkeys(SESSION_STATUSES, 0)
        async for row in await self.db[APPOINTMENTS].aggregate(pipeline):
            counts[str(row["_id"])] = int(row["n"])
        checked_in = counts[AppointmentStatus.CHECKED_IN.value]
        no_show = counts[AppointmentStatus.NO_SHOW.value]
        return {
            "booked": counts[AppointmentStatus.BOOKED.value],
            "checked_in": checked_in,
            "no_show": no_show,
            "cancelled": counts[AppointmentStatus.CANCELLED.value],
            "no_show_rate": _rate(no_show, checked_in + no_show),
        }
