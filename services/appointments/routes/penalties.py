"""Routes: Penalties: patients appeal a ban; staff decide appeals or override with a reason."""

from __future__ import annotations

from fastapi import APIRouter

from services.appointments.routes.deps import PREFIX

router = APIRouter(prefix=PREFIX, tags=["appointments: penalties"])
