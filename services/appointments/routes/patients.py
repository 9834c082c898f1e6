"""Real-name patients of an account (就诊人), and staff look-up by national ID (audited)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Literal

from fastapi import APIRouter, Depends
from pydantic import BaseModel, Field

from services.appointments.bootstrap import Appointments
from services.appointments.domain.policy import DEFAULT_POLICY
from services.appointments.patient_links import CodeIn, LinkRequested
from services.appointments.patients import NationalIdInput, PatientIn, PatientOut, to_out
from services.appointments.routes.deps import PREFIX, Ctx, PatientAccount, Staff
from services.appointments.routes.models import AppointmentView
from shared.access_reason import AccessReason
from shared.audit import require_reason
from shared.auth import require_roles
from shared.principal import Principal, Role
from shared.privacy import InvalidNationalId, parse_national_id
from shared.problems import NotFound, Unprocessable, problem_responses_doc
from shared.scoping import org_filter, other_org, sees_every_org

router = APIRouter(prefix=PREFIX, tags=["appointments: patients"])


async def patient_cap(ctx: Appointments, caller: Principal) -> int:
    """How many patients the caller's account may manage (its organization's policy)."""
    org_policy = DEFAULT_POLICY  # an account with no organization (phone login)
    if caller.org_id is not None:
        org_policy = await ctx.policies.for_org(caller.org_id)
    return org_policy.max_patients_per_account


@router.post(
    "/patients",
    status_code=202,
    summary="Add a real-name patient to my account: a code is texted to prove control",
    description="The answer is the same whether or not the hospital knows the national ID: "
    "a code goes to the phone number on record for the patient (the number given, for a "
    "patient new to the hospital), and nothing of the patient is shown until it is "
    "confirmed (`POST /patients/verifications/{verification_id}`). A patient without a "
    "phone of their own (a child, an elder) is linked at a counter or by the hotline.",
    responses=problem_responses_doc(409, 422, 429),
)
async def add_patient(ctx: Ctx, caller: PatientAccount, body: PatientIn) -> LinkRequested:
    cap = await patient_cap(ctx, caller)
    return await ctx.links.request(caller.subject, body, max_per_account=cap, now=datetime.now(UTC))


@router.post(
    "/patients/verifications/{verification_id}",
    status_code=201,
    summary="Confirm the texted code: the patient is added to my account",
    description="Five wrong codes or ten minutes end a verification (409 "
    "`verification_expired`); a wrong code is 422 `verification_code_invalid`.",
    responses=problem_responses_doc(404, 409, 422),
)
async def confirm_patient(
    ctx: Ctx, caller: PatientAccount, verification_id: str, body: CodeIn
) -> PatientOut:
    cap = await patient_cap(ctx, caller)
    doc = await ctx.links.confirm(caller.subject, verification_id, body.code, max_per_account=cap)
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
    # a patient not treated at the caller's organization is not found there (audited)
    visible = doc is not None and await ctx.patients.orgs.visible_to(staff, doc)
    await ctx.audit.record(
        staff,
        "patient.lookup",
        patient_id=doc["_id"] if doc else None,
        resource="patient",
        reason=reason,
        outcome="allowed" if visible else "denied",
    )
    if doc is None or not visible:
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
    doc = await ctx.patients.get_for(staff, patient_id)  # 403 for another organization's
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
    await ctx.patients.get_for(staff, patient_id)  # 403 for another organization's
    await ctx.audit.record(
        staff,
        "appointment.list",
        patient_id=patient_id,
        resource=f"patient:{patient_id}",
        reason=reason,
    )
    # at the caller's organization only: another hospital's visits are not theirs to read
    return await ctx.queries.for_patient(patient_id, org_id=org_filter(staff))


class StaffLinkIn(BaseModel):
    """A link staff verified: the ID card at the counter, or the caller's identity on the
    hotline. ``guardian_patient_id``: for a child or an elder without a phone, the account
    holder's own (relation ``self``) record, whose identity the staff member checked too."""

    account_id: str = Field(min_length=1, max_length=64, pattern=r"^[\w.:-]+$")
    patient: PatientIn
    method: Literal["counter", "hotline"]
    guardian_patient_id: str | None = Field(None, max_length=64)


@router.post(
    "/staff/patients/links",
    status_code=201,
    summary="Link a patient to an account after checking their identity (nurse, agent, "
    "admin; audited)",
    description="For patients who cannot take a texted code: the counter checks the ID card, "
    "the hotline the caller's identity; children and elders are linked through a verified "
    "guardian. Give a `reason`; the link is audited (`patient.link.verified`) and the "
    "patient is then treated at the staff member's organization.",
    responses=problem_responses_doc(400, 403, 409, 422),
)
async def staff_link(
    ctx: Ctx, staff: IdentityStaff, body: StaffLinkIn, reason: AccessReason = None
) -> PatientOut:
    require_reason(staff, reason, "linking a patient to an account")
    if staff.org_id is None and not sees_every_org(staff):
        raise other_org()
    if body.guardian_patient_id is not None:
        guardian = await ctx.patients.get(body.guardian_patient_id)
        if guardian.get("relations", {}).get(body.account_id) != "self":
            raise Unprocessable(
                "guardian_not_verified",
                "the guardian must be the account holder's own patient record (relation self)",
                detail_zh="监护人须为该账号本人的就诊人",
            )
    cap = await patient_cap(ctx, staff)
    doc = await ctx.patients.register(
        body.account_id, body.patient, max_per_account=cap, org_id=staff.org_id
    )
    await ctx.audit.record(
        staff,
        "patient.link.verified",
        patient_id=doc["_id"],
        resource=f"patient:{doc['_id']}",
        reason=reason,
        details={
            "account_id": body.account_id,
            "method": body.method,
            "guardian_patient_id": body.guardian_patient_id,
        },
    )
    return to_out(doc, body.account_id)
