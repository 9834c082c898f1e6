"""Penalties: patients appeal a ban; staff decide appeals or override with a reason."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING

from shared.jobs import Job
from shared.outbox import Tx

if TYPE_CHECKING:
    from services.appointments.context import Appointments

# timed jobs of this module: kind -> handler(ctx, job, tx); registered in handlers.py
JOBS: dict[str, Callable[[Appointments, Job, Tx], Awaitable[None]]] = {}


class Penalties:
    def __init__(self, ctx: Appointments) -> None:
        self.ctx = ctx
