"""Routes: the gateway's own operator endpoints (admins)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Request

from services.gateway.identity.accounts import ENCRYPTED_FIELDS
from services.gateway.routes.deps import Admin, AuditDep
from shared.pii_rotation import RotationReport, rotate_audited
from shared.problems import problem_responses_doc

router = APIRouter(prefix="/v1/auth/admin", tags=["auth: operations"])


@router.post(
    "/pii/rotate",
    summary="Re-encrypt account phone numbers under the active PII key (until remaining is 0)",
    responses=problem_responses_doc(401, 403),
)
async def rotate_pii(
    request: Request,
    admin: Admin,
    audit: AuditDep,
    limit: Annotated[int, Query(ge=1, le=10_000)] = 1000,
) -> RotationReport:
    logins = request.app.state.logins
    accounts = logins.patients
    return await rotate_audited(
        accounts.collection.database,
        accounts.cipher,
        ENCRYPTED_FIELDS,
        audit=audit,
        admin=admin,
        limit=limit,
    )
