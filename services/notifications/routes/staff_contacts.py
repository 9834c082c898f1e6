"""Routes: staff contacts, how alerts reach a staff member (the HIS and admins keep them).

Admins of the staff member's organization, alliance admins and service callers (the HIS);
an organization's admin only for its own organization. Phones are shown masked; every
call is audited.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Response

from services.notifications.routes.deps import PREFIX, Ctx, Operator
from services.notifications.staff_contacts import StaffContactIn, StaffContactOut
from shared.problems import problem_responses_doc

router = APIRouter(prefix=PREFIX, tags=["notifications: staff contacts"])
StaffId = Annotated[str, Path(min_length=1, max_length=64, description="the staff account id")]


@router.put(
    "/admin/staff-contacts/{staff_id}",
    summary="Create or replace a staff member's contact (admin of its organization, service)",
    description=(
        "The phone (a mainland mobile number) is stored encrypted and shown masked; urgent "
        "alerts to this staff member (e.g. follow-up risk flags) go to it by SMS and voice."
    ),
    responses=problem_responses_doc(403, 422),
)
async def put_staff_contact(
    ctx: Ctx, operator: Operator, staff_id: StaffId, body: StaffContactIn
) -> StaffContactOut:
    return await ctx.staff_contacts.put(operator, staff_id, body)


@router.get(
    "/admin/staff-contacts/{staff_id}",
    summary="A staff member's contact, the phone masked (admin of its organization, service)",
    responses=problem_responses_doc(403, 404),
)
async def get_staff_contact(ctx: Ctx, operator: Operator, staff_id: StaffId) -> StaffContactOut:
    return await ctx.staff_contacts.read(operator, staff_id)


@router.delete(
    "/admin/staff-contacts/{staff_id}",
    status_code=204,
    summary="Remove a staff member's contact: alerts then reach the inbox only",
    responses=problem_responses_doc(403, 404),
)
async def delete_staff_contact(ctx: Ctx, operator: Operator, staff_id: StaffId) -> Response:
    await ctx.staff_contacts.delete(operator, staff_id)
    return Response(status_code=204)
