"""Routes for reschedule, check-in with a queue number, and staff extra numbers (加号)."""

from __future__ import annotations

from fastapi import APIRouter

from services.appointments.routes.deps import PREFIX

router = APIRouter(prefix=PREFIX, tags=["appointments: changes"])
