"""Routes for a cancelled session (停诊) and priority rebooking."""

from __future__ import annotations

from fastapi import APIRouter

from services.appointments.routes.deps import PREFIX

router = APIRouter(prefix=PREFIX, tags=["appointments: clinic"])
