"""Dependencies shared by the appointments routes."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends

from services.appointments.context import Appointments, get_appointments
from shared.auth import current_principal, require_roles
from shared.principal import Principal, Role

Ctx = Annotated[Appointments, Depends(get_appointments)]
Caller = Annotated[Principal, Depends(current_principal)]
Staff = Annotated[
    Principal,
    Depends(require_roles(Role.AGENT, Role.NURSE, Role.DOCTOR, Role.COORDINATOR, Role.ADMIN)),
]
Admin = Annotated[Principal, Depends(require_roles(Role.ADMIN, Role.SERVICE))]
PREFIX = "/v1/appointments"
