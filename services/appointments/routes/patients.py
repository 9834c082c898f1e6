"""Real-name patients of an account (就诊人), and staff look-up by national ID (audited)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends
from pydantic import BaseModel

from services.appointments.domain.policy import DEFAULT_POLICY
from services.appointments.patients import NationalIdInput, PatientIn, PatientOut, to_out
from services.appointments.routes.deps import PREFIX, Ctx, PatientAccount, Staff
from services.appointments.routes.models import AppointmentView
from shared.access_reason import AccessReason
from shared.audit import require_reason
from shared.auth import require_roles
from shared.principal import Principal, Role
from shared.privacy import InvalidNationalId, parse_national_id
from shared.problems import NotFound, Unprocessable, problem_responses_doc

router = APIRouter(prefix=PREFIX, tags=["appointments: patients"])


@router.post("/patients", status_code=201, summary="Add a real-name patient to my account")
async def add_patient(ctx: Ctx, caller: PatientAccount, body: PatientIn) -> PatientOut:
    org_policy = DEFAULT_POLICY  # an account with no organization (phone login)
    if caller.org_id is not None:
        org_policy = await ctx.policies.for_org(caller.org_id)
    doc = await ctx.patients.register(
        caller.subject, body, max_per_account=org_policy.max_patients_per_account
    )
    return to_out(doc, caller.subject)


@router.get("/patients", summary="The patients my account manages")
async def my_patients(ctx: Ctx, caller: PatientAccount) -> list[PatientOut]:
    return [to_out(d, caller.subject) for d in await ctx.patients.for_account(caller.subject)]


@router.delete(
    "/patients/{patient_id}", status_code=204, summary="Remove a patient from my account"
)
async def remove_patient(ctx: Ctx, caller: PatientAccount, patient_id: str) -> None:
    await ctx.patients.unlink(caller.subject, patient_id)


class PatientLookup(BaseModel):
    """A national ID to look up (in the body: it stays out of URLs and logs)."""

    national_id: NationalIdInput


@router.post(
    "/staff/patients/lookup",
    summary="Find a patient by national ID (staff, audited)",
    description="Give a `reason` (query or `X-Access-Reason`): it goes into the audit record.",
    responses=problem_responses_doc(400, 404, 422),
)
async def lookup_patient(
    ctx: Ctx, staff: Staff, body: PatientLookup, reason: AccessReason = None
) -> PatientOut:
    require_reason(staff, reason, "a patient look-up")
    try:
        normalized = parse_national_id(body.national_id)
    except InvalidNationalId as exc:
        raise Unprocessable(
            "national_id_invalid", "not a valid national ID", detail_zh="身份证号码无效"
        ) from exc
    doc = await ctx.patients.find_by_national_id(normalized)
    await ctx.audit.record(
        staff,
        "patient.lookup",
        patient_id=doc["_id"] if doc else None,
        resource="patient",
        reason=reason,
        outcome="allowed" if doc else "denied",
    )
    if doc is None:
        raise NotFound("patient_not_found", "no patient with this national ID")
    return to_out(doc, None)


# who may see a patient's full national ID and phone: the registration desk checks the ID
# card (nurse), the hotline confirms a caller and calls back (agent), admins correct records
IdentityStaff = Annotated[Principal, Depends(require_roles(Role.NURSE, Role.AGENT, Role.ADMIN))]


class PatientIdentity(BaseModel):
    id: str
    name: str
    national_id: str
    phone: str


@router.post(
    "/staff/patients/{patient_id}/identity",
    summary="A patient's full national ID and phone (nurse, agent, admin; audited)",
    description="Everywhere else both are masked. POST keeps the values out of URLs and "
    "caches; the `reason` (query or `X-Access-Reason`) goes into the audit record "
    "(`patient.identity.reveal`).",
    responses=problem_responses_doc(400, 403, 404),
)
async def reveal_identity(
    ctx: Ctx, staff: IdentityStaff, patient_id: str, reason: AccessReason = None
) -> PatientIdentity:
    require_reason(staff, reason, "a patient's identity")
    doc = await ctx.patients.get(patient_id)
    await ctx.audit.record(
        staff,
        "patient.identity.reveal",
        patient_id=patient_id,
        resource=f"patient:{patient_id}",
        reason=reason,
    )
    return PatientIdentity(
        id=doc["_id"],
        name=doc["name"],
        national_id=ctx.patients.reveal_national_id(doc),
        phone=ctx.patients.reveal_phone(doc),
    )


@router.get(
    "/staff/patients/{patient_id}/appointments",
    summary="A patient's appointments (staff, audited)",
    responses=problem_responses_doc(400, 404),
    response_model=list[AppointmentView],
)
async def patient_appointments(
    ctx: Ctx, staff: Staff, patient_id: str, reason: AccessReason = None
) -> list[dict[str, object]]:
    require_reason(staff, reason, "a patient's appointments")
    await ctx.patients.get(patient_id)
    await ctx.audit.record(
        staff,
        "appointment.list",
        patient_id=patient_id,
        resource=f"patient:{patient_id}",
        reason=reason,
    )
    return await ctx.queries.for_patient(patient_id)
