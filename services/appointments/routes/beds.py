"""Routes: wards and beds (住院床位) — master data from the HIS, the bed board, housekeeping,
candidates, figures and the FHIR Location view.

Bed managers are nurses (the head nurse / bed-management desk) and admins of the
organization; housekeeping's confirmation that a bed is clean comes through them too.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Annotated, Any

from fastapi import APIRouter, Body, Depends, Path, Query
from fastapi.responses import JSONResponse

from services.appointments.bed_fhir import location_of
from services.appointments.beds import BedIn, WardIn
from services.appointments.domain.bed_rules import BedPolicy, BedStatus
from services.appointments.domain.models import ORG_ID
from services.appointments.routes.admin import check_org
from services.appointments.routes.deps import PREFIX, Admin, Ctx
from services.appointments.routes.models import SavedIds
from shared.access_reason import AccessReason
from shared.audit import require_reason
from shared.auth import require_roles
from shared.principal import STAFF_ROLES, Principal, Role
from shared.problems import Unprocessable, problem_responses_doc
from shared.scoping import ensure_org

router = APIRouter(prefix=PREFIX, tags=["appointments: beds"])
BedManager = Annotated[Principal, Depends(require_roles(Role.NURSE, Role.ADMIN))]
BedReader = Annotated[Principal, Depends(require_roles(*STAFF_ROLES))]
FhirReader = Annotated[Principal, Depends(require_roles(*STAFF_ROLES, Role.SERVICE))]
OrgAdmin = Annotated[Principal, Depends(require_roles(Role.ADMIN))]
OrgQuery = Annotated[str, Query(pattern=ORG_ID)]
BedId = Annotated[str, Path(pattern=r"^[A-Za-z0-9.-]{1,64}$", description="the bed id")]
FHIR_MEDIA_TYPE = "application/fhir+json"


class FhirJSONResponse(JSONResponse):
    media_type = FHIR_MEDIA_TYPE


@router.put(
    "/admin/wards",
    summary="Create or update inpatient wards (bulk, from HIS)",
    description="Each ward's department must be known (else 422 `unknown_department` and "
    "nothing is written).",
    response_model=SavedIds,
    responses=problem_responses_doc(403, 422),
)
async def put_wards(
    ctx: Ctx, principal: Admin, items: Annotated[list[WardIn], Body(max_length=500)]
) -> dict[str, Any]:
    check_org(principal, {i.org_id for i in items})
    return {"ids": await ctx.beds.upsert_wards(items)}


@router.put(
    "/admin/beds",
    summary="Create or update beds (bulk, from HIS)",
    description="Each bed's ward must be known (else 422 `unknown_ward`, nothing written). "
    "`blocked` takes a free bed out of use (and a blocked one back); a bed in use keeps "
    "its status.",
    response_model=SavedIds,
    responses=problem_responses_doc(403, 422),
)
async def put_beds(
    ctx: Ctx, principal: Admin, items: Annotated[list[BedIn], Body(max_length=2000)]
) -> dict[str, Any]:
    check_org(principal, {i.org_id for i in items})
    return {"ids": await ctx.beds.upsert_beds(items, principal)}


@router.put(
    "/admin/bed-policies/{org_id}",
    summary="Replace the organization's bed policy (offer window, borrowing between departments)",
)
async def put_bed_policy(
    ctx: Ctx,
    principal: Admin,
    org_id: Annotated[str, Path(pattern=ORG_ID)],
    policy: BedPolicy,
) -> BedPolicy:
    check_org(principal, {org_id})
    await ctx.beds.save_policy(org_id, policy, principal.subject)
    return policy


@router.get(
    "/beds",
    summary="The organization's beds and their status",
    responses=problem_responses_doc(403),
)
async def list_beds(
    ctx: Ctx,
    principal: BedReader,
    org_id: OrgQuery,
    ward_id: Annotated[str | None, Query(max_length=110)] = None,
    status: BedStatus | None = None,
    limit: Annotated[int, Query(ge=1, le=2000)] = 500,
) -> dict[str, Any]:
    state = status.value if status else None
    return {"items": await ctx.beds.listing(principal, org_id, ward_id, state, limit)}


@router.get(
    "/beds/candidates",
    summary="Candidates: the beds that fit a notice, or the waiting patients a bed fits",
    description=(
        "With `notice_id`: the free beds that fit the admission notice (gender policy, "
        "isolation, monitoring, borrowing policy), the department's own first. With "
        "`bed_id`: the waiting notices the bed fits, by urgency then waiting time. Bed "
        "managers (nurses, admins) of the organization; the read is audited (give a "
        "`reason`)."
    ),
    responses=problem_responses_doc(400, 403, 404, 422),
)
async def candidates(
    ctx: Ctx,
    principal: BedManager,
    notice_id: Annotated[str | None, Query(max_length=64)] = None,
    bed_id: Annotated[str | None, Query(max_length=64)] = None,
    reason: AccessReason = None,
) -> dict[str, Any]:
    if (notice_id is None) == (bed_id is None):
        raise Unprocessable("candidates_query", "give either notice_id or bed_id")
    require_reason(principal, reason, "bed candidates")
    if notice_id is not None:
        found = await ctx.bed_queries.beds_for_notice(principal, notice_id)
        patient_id = found["notice"]["patient_id"]
        resource = f"admission_notice:{notice_id}"
    else:
        assert bed_id is not None
        found = await ctx.bed_queries.patients_for_bed(principal, bed_id)
        patient_id, resource = None, f"bed:{bed_id}"
    await ctx.audit.record(
        principal, "bed.candidates", patient_id=patient_id, resource=resource, reason=reason
    )
    return found


@router.get(
    "/beds/figures",
    summary="Bed figures: waits (average, P90) by department and urgency, occupancy, "
    "turnover, borrowed beds",
    responses=problem_responses_doc(403, 422),
)
async def figures(
    ctx: Ctx,
    principal: OrgAdmin,
    org_id: OrgQuery,
    since: datetime | None = None,
    until: datetime | None = None,
) -> dict[str, Any]:
    ensure_org(principal, org_id)
    until = until or datetime.now(UTC)
    since = since or until - timedelta(days=30)
    if since.tzinfo is None or until.tzinfo is None or since >= until:
        raise Unprocessable("period_invalid", "since and until: times with a zone, since < until")
    return await ctx.bed_queries.figures(org_id, since, until)


@router.post(
    "/beds/{bed_id}/cleaned",
    summary="Housekeeping confirms the bed is clean: cleaning → free",
    description="409 `bed_not_cleaning` for a bed in any other status.",
    responses=problem_responses_doc(403, 404, 409),
)
async def cleaned(ctx: Ctx, principal: BedManager, bed_id: BedId) -> dict[str, Any]:
    return await ctx.beds.cleaned(principal, bed_id)


@router.get(
    "/fhir/Location/{bed_id}",
    summary="A bed as a FHIR R4 Location (R4B models), read-only",
    response_class=FhirJSONResponse,
    responses={
        200: {
            "description": "the FHIR Location",
            "content": {FHIR_MEDIA_TYPE: {"schema": {"type": "object"}}},
        },
        **problem_responses_doc(403, 404),
    },
)
async def fhir_location(ctx: Ctx, principal: FhirReader, bed_id: BedId) -> FhirJSONResponse:
    bed = await ctx.beds.get_for(principal, bed_id)
    return FhirJSONResponse(location_of(bed), headers={"ETag": f'W/"{bed.get("version", 0)}"'})
