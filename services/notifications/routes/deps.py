"""Dependencies shared by the notifications routes."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from services.notifications.bootstrap import Notifications
from shared.auth import current_principal, require_roles
from shared.principal import Principal, Role


def get_notifications(request: Request) -> Notifications:
    ctx: Notifications = request.app.state.runtime.extras["notifications"]
    return ctx


Ctx = Annotated[Notifications, Depends(get_notifications)]
Caller = Annotated[Principal, Depends(current_principal)]
PatientAccount = Annotated[Principal, Depends(require_roles(Role.PATIENT))]
Staff = Annotated[
    Principal,
    Depends(require_roles(Role.AGENT, Role.NURSE, Role.DOCTOR, Role.COORDINATOR, Role.ADMIN)),
]
Admin = Annotated[Principal, Depends(require_roles(Role.ADMIN))]
Operator = Annotated[Principal, Depends(require_roles(Role.ADMIN, Role.SERVICE))]
Service = Annotated[Principal, Depends(require_roles(Role.SERVICE))]
# changes to a patient's settings: their account or staff (audited); no service caller
PatientOrStaff = Annotated[
    Principal,
    Depends(
        require_roles(
            Role.PATIENT, Role.AGENT, Role.NURSE, Role.DOCTOR, Role.COORDINATOR, Role.ADMIN
        )
    ),
]
PREFIX = "/v1/notifications"
