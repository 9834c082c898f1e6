"""Routes: Waitlist (候补): join a full session; a freed slot is offered to the first in line."""

from __future__ import annotations

from fastapi import APIRouter

from services.appointments.routes.deps import PREFIX

router = APIRouter(prefix=PREFIX, tags=["appointments: waitlist"])
