"""What the gateway's own routes need from ``app.state``."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from services.gateway.identity.accounts import PatientAccounts, StaffAccounts
from services.gateway.identity.logins import Logins
from services.gateway.identity.sessions import Sessions
from services.gateway.settings import GatewaySettings
from shared.audit import AuditLog
from shared.auth import current_principal
from shared.principal import Principal, Role
from shared.problems import Forbidden


def get_logins(request: Request) -> Logins:
    logins: Logins = request.app.state.logins
    return logins


def get_settings(request: Request) -> GatewaySettings:
    settings: GatewaySettings = request.app.state.settings
    return settings


def get_audit(request: Request) -> AuditLog:
    audit: AuditLog = request.app.state.audit
    return audit


async def caller(
    request: Request, principal: Annotated[Principal, Depends(current_principal)]
) -> Principal:
    """The verified caller whose login has not been ended since the token was issued."""
    sessions: Sessions = request.app.state.logins.sessions
    await sessions.check_not_ended(principal)
    return principal


async def admin(principal: Annotated[Principal, Depends(caller)]) -> Principal:
    if not principal.has_any(Role.ADMIN):
        raise Forbidden(
            "forbidden_role",
            "This action requires one of the roles: admin.",
            detail_zh="您没有执行此操作的权限。",
        )
    return principal


LoginsDep = Annotated[Logins, Depends(get_logins)]
SettingsDep = Annotated[GatewaySettings, Depends(get_settings)]
AuditDep = Annotated[AuditLog, Depends(get_audit)]
Caller = Annotated[Principal, Depends(caller)]
Admin = Annotated[Principal, Depends(admin)]


def patients(request: Request) -> PatientAccounts:
    accounts: PatientAccounts = request.app.state.logins.patients
    return accounts


def staff(request: Request) -> StaffAccounts:
    accounts: StaffAccounts = request.app.state.logins.staff
    return accounts


PatientsDep = Annotated[PatientAccounts, Depends(patients)]
StaffDep = Annotated[StaffAccounts, Depends(staff)]
