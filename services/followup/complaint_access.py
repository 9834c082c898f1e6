"""Who may reach a complaint, and at which version: the checks every complaint route
shares (complaint staff of its organization, or the complainant's patient account)."""

from __future__ import annotations

from services.followup.patients import KnownPatients
from shared.auth import ensure_patient_access
from shared.mongo import Document
from shared.principal import Principal, Role
from shared.problems import Forbidden, PreconditionFailed, PreconditionRequired


def check_version(if_match: str | None, version: int) -> None:
    """428 without ``If-Match``, 412 when it names another version."""
    if if_match is None:
        raise PreconditionRequired(
            "if_match_required",
            "send If-Match with the complaint's version (the ETag)",
            detail_zh="请携带 If-Match 版本号",
        )
    if if_match.strip().removeprefix("W/").strip('"') != str(version):
        raise stale(version)


def stale(version: int) -> PreconditionFailed:
    return PreconditionFailed(
        "version_conflict",
        f"the complaint changed since you read it (it is now version {version})",
        detail_zh="投诉已被他人修改，请刷新后重试",
        extra={"current_version": version},
    )


COMPLAINT_STAFF = (
    Role.AGENT,
    Role.NURSE,
    Role.DOCTOR,
    Role.ADMIN,
    Role.ALLIANCE_ADMIN,
    Role.SERVICE,
)


def is_patient_account(principal: Principal) -> bool:
    """A patient account (acting for its patients); 403 ``forbidden_role`` for a caller
    who is neither that nor complaint staff (agents, nurses, doctors, admins, services)."""
    if principal.has_any(*COMPLAINT_STAFF):
        return False
    if Role.PATIENT in principal.roles:
        return True
    raise Forbidden(
        "forbidden_role",
        "complaints are for patients and their staff",
        detail_zh="当前角色无权处理投诉",
    )


async def complainant_patients(
    patients: KnownPatients, principal: Principal, doc: Document
) -> frozenset[str]:
    """The complaint's patient, if this patient account acts for it; 403
    ``forbidden_patient`` when the account is neither the complainant nor the patient's."""
    patient_id: str | None = doc.get("patient_id")
    if patient_id is not None and (
        patient_id in principal.patient_ids or await patients.manages(principal.subject, patient_id)
    ):
        return frozenset({patient_id})
    if doc.get("complainant_account_id") != principal.subject:
        ensure_patient_access(principal, patient_id or f"complaint:{doc['_id']}")
    return frozenset()
