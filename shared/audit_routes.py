"""The admin view of a service's audit log (docs/architecture.md §8): who read or changed which
patient.

``GET /v1/<service>/admin/audit`` lists records newest first, filtered by patient, actor,
action and a time range, one page at a time. Reading the audit log is itself audited
(action ``audit.read``). The gateway's ``GET /v1/audit`` merges these pages across services.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated, Any

import structlog
from fastapi import APIRouter, Depends, Query, Request
from pydantic import AwareDatetime

from shared.access_reason import AccessReason
from shared.audit import MAX_QUERY_LIMIT, AuditLog, AuditPage, UnknownAuditCursor
from shared.auth import require_roles
from shared.principal import Principal, Role
from shared.problems import BadRequest, Unprocessable, problem_responses_doc
from shared.scoping import org_filter

__all__ = [
    "AUDIT_READ",
    "ActionQuery",
    "ActorQuery",
    "CursorQuery",
    "LimitQuery",
    "PatientQuery",
    "ReasonQuery",
    "SinceQuery",
    "UntilQuery",
    "audit_router",
    "check_range",
]

log = structlog.get_logger(__name__)

AUDIT_READ = "audit.read"

PatientQuery = Annotated[
    str | None, Query(min_length=1, max_length=64, description="Only this patient's records.")
]
ActorQuery = Annotated[
    str | None, Query(min_length=1, max_length=128, description="Only this staff member's.")
]
ActionQuery = Annotated[
    str | None,
    Query(
        pattern=r"^[a-z][a-z0-9_.]{0,63}$",
        description="Only this action, e.g. `appointment.cancel`.",
    ),
]
SinceQuery = Annotated[
    AwareDatetime | None,
    Query(description="ISO 8601 with a zone offset; records at or after it (inclusive)."),
]
UntilQuery = Annotated[
    AwareDatetime | None,
    Query(description="ISO 8601 with a zone offset; records before it (exclusive)."),
]
LimitQuery = Annotated[int, Query(ge=1, le=MAX_QUERY_LIMIT, description="Page size.")]
CursorQuery = Annotated[
    str | None,
    Query(min_length=1, max_length=64, description="Opaque: `next_cursor` of the last page."),
]
# why the log is read (kept in the log): the shared staff access reason (query or header)
ReasonQuery = AccessReason
AuditAdmin = Annotated[Principal, Depends(require_roles(Role.ADMIN))]


def check_range(since: AwareDatetime | None, until: AwareDatetime | None) -> None:
    """422 ``audit_range_invalid`` unless ``until`` is after ``since``."""
    if since is not None and until is not None and until <= since:
        raise Unprocessable(
            "audit_range_invalid",
            "until must be later than since (since is inclusive, until exclusive)",
        )


def audit_router(service: str, audit_of: Callable[[Request], AuditLog] | None = None) -> APIRouter:
    """The audit view of ``service``; ``audit_of`` finds its log (default: the runtime's)."""
    router = APIRouter(prefix=f"/v1/{service}/admin", tags=["audit"])

    @router.get(
        "/audit",
        summary="Audit records of staff access to patients' data, newest first (admin)",
        description=(
            "Filter by `patient_id`, `actor_id`, `action` and `since` (inclusive) / `until` "
            "(exclusive). Pass `next_cursor` back as `cursor` for the next page; it is `null` "
            "on the last one. Records are kept at least 180 days. Each read of this log is "
            "itself audited (`audit.read`)."
        ),
        response_model=AuditPage,
        responses=problem_responses_doc(400, 401, 403, 422),
    )
    async def read_audit(
        request: Request,
        admin: AuditAdmin,
        patient_id: PatientQuery = None,
        actor_id: ActorQuery = None,
        action: ActionQuery = None,
        since: SinceQuery = None,
        until: UntilQuery = None,
        limit: LimitQuery = 100,
        cursor: CursorQuery = None,
        reason: ReasonQuery = None,
    ) -> AuditPage:
        check_range(since, until)
        audit: AuditLog = audit_of(request) if audit_of else request.app.state.runtime.audit
        try:
            page = await audit.page(
                patient_id=patient_id,
                actor_id=actor_id,
                action=action,
                since=since,
                until=until,
                limit=limit,
                cursor=cursor,
                org_id=org_filter(admin),
            )
        except UnknownAuditCursor as exc:
            raise BadRequest(
                "audit_cursor_invalid", "the cursor is not one this service gave out"
            ) from exc
        filters: dict[str, Any] = {
            "actor_id": actor_id,
            "action": action,
            "since": since.isoformat() if since else None,
            "until": until.isoformat() if until else None,
            "cursor": cursor,
        }
        await audit.record(
            admin,
            AUDIT_READ,
            patient_id=patient_id,
            resource="audit_log",
            reason=reason,
            details={
                "filters": {k: v for k, v in filters.items() if v is not None},
                "returned": len(page.items),
            },
        )
        log.info(
            "audit.read", service=service, returned=len(page.items), more=bool(page.next_cursor)
        )
        return page

    return router
