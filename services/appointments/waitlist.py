"""Waitlist (候补): join a full session; a freed slot is offered to the first in line."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING

from shared.jobs import Job
from shared.outbox import Tx

if TYPE_CHECKING:
    from services.appointments.context import Appointments

# timed jobs of this module: kind -> handler(ctx, job, tx); registered in handlers.py
JOBS: dict[str, Callable[[Appointments, Job, Tx], Awaitable[None]]] = {}


class Waitlist:
    def __init__(self, ctx: Appointments) -> None:
        self.ctx = ctx

    async def offer_freed_slot(
        self, tx: Tx, appointment: dict[str, object], slot: dict[str, object]
    ) -> bool:
        """Offer a slot freed by a cancellation to the waitlist; True if it was offered."""
        return False
