"""Patient transports over HTTP (thin: the rules are in ``transports.py``, ``dispatch.py``
and ``domain/transport.py``): ask for one, the dispatcher's board and figures, read one
(and its FHIR Task), assign by hand, cancel, and the porters' steps."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Path, Query, Response

from services.referrals.domain.transport import State
from services.referrals.domain.transport_request import AssignIn, ReasonIn, StepIn, TransportIn
from services.referrals.routes.deps import PREFIX, Caller, Ctx, IdempotencyKey
from services.referrals.routes.fhir import FhirJSONResponse, _resource_doc
from services.referrals.transport_changes import patient_view, staff_view
from services.referrals.transport_fhir import transport_task_of
from shared.access_reason import AccessReason
from shared.auth import require_roles
from shared.principal import STAFF_ROLES, Principal, Role

router = APIRouter(prefix=f"{PREFIX}/transports", tags=["referrals: transports"])
fhir_router = APIRouter(prefix=f"{PREFIX}/fhir/Task/transport", tags=["referrals: FHIR"])
# the ward (nurses, doctors), the service center's coordinators, and the HIS
Requester = Annotated[
    Principal, Depends(require_roles(Role.NURSE, Role.DOCTOR, Role.COORDINATOR, Role.SERVICE))
]
# the dispatcher: a coordinator of the organization (the service center), or the HIS
Dispatcher = Annotated[Principal, Depends(require_roles(Role.COORDINATOR, Role.SERVICE))]
# the board: the dispatcher, the organization's admins (alliance admins any), the HIS
Board = Annotated[
    Principal,
    Depends(require_roles(Role.COORDINATOR, Role.ADMIN, Role.SERVICE)),
]
FigureReader = Annotated[
    Principal,
    Depends(require_roles(Role.COORDINATOR, Role.ADMIN, Role.ALLIANCE_ADMIN, Role.SERVICE)),
]
# the porter's handheld (nurse role, on the roster) and the dispatcher in their place
Stepper = Annotated[Principal, Depends(require_roles(Role.NURSE, Role.COORDINATOR))]
# the FHIR view is for staff and partner systems; a patient's account reads the status only
FhirReader = Annotated[Principal, Depends(require_roles(*STAFF_ROLES, Role.SERVICE))]
TransportId = Annotated[str, Path(pattern=r"^[A-Za-z0-9-]{1,64}$")]
OrgQuery = Annotated[str | None, Query(pattern=r"^[A-Za-z0-9._:-]{1,64}$")]


def _reply(doc: dict[str, Any], response: Response) -> dict[str, Any]:
    response.headers["ETag"] = f'"{doc["version"]}"'
    return staff_view(doc)


@router.post(
    "", status_code=201, summary="Ask for a patient transport or escort (dispatched at once)"
)
async def request_transport(
    ctx: Ctx,
    principal: Requester,
    body: TransportIn,
    response: Response,
    idempotency_key: IdempotencyKey = None,
) -> dict[str, Any]:
    doc = await ctx.transports.request(principal, body, idempotency_key)
    response.headers["Location"] = f"{PREFIX}/transports/{doc['_id']}"
    return _reply(doc, response)


@router.get("", summary="The dispatcher's board: the organization's transports, newest first")
async def list_transports(
    ctx: Ctx,
    principal: Board,
    org_id: OrgQuery = None,
    state: Annotated[State | None, Query()] = None,
) -> dict[str, Any]:
    docs = await ctx.transport_board.list_for(principal, org_id, state.value if state else None)
    return {"items": [staff_view(d) for d in docs]}


@router.get("/figures", summary="Response and pickup times, jobs per porter, late exam arrivals")
async def figures(
    ctx: Ctx,
    principal: FigureReader,
    org_id: OrgQuery = None,
    days: Annotated[int, Query(ge=1, le=366)] = 30,
) -> dict[str, Any]:
    return await ctx.transport_board.figures(principal, org_id, days)


@router.get("/{transport_id}", summary="One transport: its state, porter, times and history")
async def get_transport(
    ctx: Ctx,
    principal: Caller,
    transport_id: TransportId,
    response: Response,
    reason: AccessReason = None,
) -> dict[str, Any]:
    doc, as_staff = await ctx.transports.get_for(principal, transport_id, reason=reason)
    if not as_staff:
        return patient_view(doc)
    return _reply(doc, response)


@router.post("/{transport_id}/assign", summary="Assign by hand, with a reason (the dispatcher)")
async def assign(
    ctx: Ctx, principal: Dispatcher, transport_id: TransportId, body: AssignIn, response: Response
) -> dict[str, Any]:
    doc = await ctx.dispatcher.override(principal, transport_id, body.porter_id, body.reason)
    return _reply(doc, response)


@router.post("/{transport_id}/cancel", summary="Cancel, with a reason, until the patient is taken")
async def cancel(
    ctx: Ctx, principal: Requester, transport_id: TransportId, body: ReasonIn, response: Response
) -> dict[str, Any]:
    doc = await ctx.transports.cancel(principal, transport_id, body.reason)
    return _reply(doc, response)


@router.post("/{transport_id}/steps", summary="A porter's step (the assigned porter only)")
async def step(
    ctx: Ctx, principal: Stepper, transport_id: TransportId, body: StepIn, response: Response
) -> dict[str, Any]:
    doc = await ctx.transports.step(principal, transport_id, body.step, body.reason)
    return _reply(doc, response)


@fhir_router.get(
    "/{transport_id}",
    summary="A transport as a FHIR Task (its states as the business status)",
    response_class=FhirJSONResponse,
    responses=_resource_doc("Task"),
)
async def get_transport_task(
    ctx: Ctx, principal: FhirReader, transport_id: TransportId
) -> FhirJSONResponse:
    doc, _ = await ctx.transports.get_for(principal, transport_id)
    return FhirJSONResponse(transport_task_of(doc), headers={"ETag": f'W/"{doc["version"]}"'})
