"""Changes to a booking: reschedule, check-in with a queue number, staff extra numbers (加号).

This is the facade the routes call (``ctx.changes``); each change lives in its own module:
``reschedule``, ``checkin`` and ``extra_numbers``.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from services.appointments.booking_common import Idempotency
from services.appointments.checkin import CheckIn
from services.appointments.extra_numbers import ExtraNumberRequest, ExtraNumbers
from services.appointments.reschedule import Reschedule, RescheduleRequest
from shared.principal import Principal

__all__ = ["AppointmentChanges", "ExtraNumberRequest", "RescheduleRequest"]


class AppointmentChanges:
    def __init__(
        self, reschedule: Reschedule, check_in: CheckIn, extra_numbers: ExtraNumbers
    ) -> None:
        self._reschedule = reschedule
        self._check_in = check_in
        self._extra_numbers = extra_numbers

    async def reschedule(
        self,
        principal: Principal,
        appointment_id: str,
        request: RescheduleRequest,
        *,
        idempotency: Idempotency | None = None,
        now: datetime | None = None,
    ) -> dict[str, Any]:
        """Move a booking to another slot: the new one secured before the old one is freed."""
        return await self._reschedule.reschedule(
            principal, appointment_id, request, idempotency=idempotency, now=now
        )

    async def check_in(
        self,
        principal: Principal,
        appointment_id: str,
        *,
        idempotency: Idempotency | None = None,
        now: datetime | None = None,
    ) -> dict[str, Any]:
        """Check a booking in inside its window and hand out the session's next queue number."""
        return await self._check_in.check_in(
            principal, appointment_id, idempotency=idempotency, now=now
        )

    async def add_extra_number(
        self,
        principal: Principal,
        schedule_id: str,
        request: ExtraNumberRequest,
        *,
        idempotency: Idempotency | None = None,
        now: datetime | None = None,
    ) -> dict[str, Any]:
        """Staff book a patient beyond the session's capacity (audited with the reason)."""
        return await self._extra_numbers.add(
            principal, schedule_id, request, idempotency=idempotency, now=now
        )
