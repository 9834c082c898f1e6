"""Dependencies shared by the appointments routes."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Annotated, Any

from fastapi import Depends, Header, Response

from services.appointments.booking_common import Idempotency
from services.appointments.bootstrap import Appointments, get_appointments
from shared.auth import current_principal, require_roles
from shared.idempotency import request_fingerprint
from shared.principal import Principal, Role

Ctx = Annotated[Appointments, Depends(get_appointments)]
Caller = Annotated[Principal, Depends(current_principal)]
Staff = Annotated[
    Principal,
    Depends(require_roles(Role.AGENT, Role.NURSE, Role.DOCTOR, Role.COORDINATOR, Role.ADMIN)),
]
Admin = Annotated[Principal, Depends(require_roles(Role.ADMIN, Role.SERVICE))]
# "my account" endpoints: only patient accounts own patients (tests/security/matrix.py)
PatientAccount = Annotated[Principal, Depends(require_roles(Role.PATIENT))]
# book, cancel, move and waitlist for a patient: their account, a hotline agent or a nurse
Booker = Annotated[Principal, Depends(require_roles(Role.PATIENT, Role.AGENT, Role.NURSE))]
PatientOrStaff = Annotated[
    Principal,
    Depends(
        require_roles(
            Role.PATIENT, Role.AGENT, Role.NURSE, Role.DOCTOR, Role.COORDINATOR, Role.ADMIN
        )
    ),
]
PREFIX = "/v1/appointments"
IdempotencyKey = Annotated[str | None, Header(alias="Idempotency-Key")]


async def idempotent(
    ctx: Appointments,
    caller: Principal,
    operation: str,
    body: Any,
    key: str | None,
    response: Response,
    call: Callable[[Idempotency | None], Awaitable[dict[str, Any]]],
) -> dict[str, Any]:
    """Run a command once per caller, operation and ``Idempotency-Key``.

    A retry with the same key and body gets the stored first result (marked with
    ``Idempotent-Replayed: true``); the command stores its result in its own transaction.
    """
    key = ctx.idempotency.validate(key)
    if key is None:
        return await call(None)
    scope = f"{caller.subject}:{operation}"
    stored = await ctx.idempotency.begin(scope, key, request_fingerprint(body))
    if stored is not None:
        response.status_code = stored.status
        response.headers["Idempotent-Replayed"] = "true"
        return stored.body
    try:
        return await call(Idempotency(ctx.idempotency, scope, key))
    except BaseException:
        await ctx.idempotency.release(scope, key)
        raise
