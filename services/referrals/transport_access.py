"""Whether a transport may be asked for this patient at this organization.

A transport is asked for a patient known at the organization where it happens: one who
booked or checked in there (appointments' events, ``patients.py``) or was referred from or
to it. One that crosses organizations (``from`` or ``to`` another), or is for a patient of
another organization, needs an accepted (or in-progress) referral of this patient between
those organizations (``referral_id``): 403 ``referral_required`` /
``patient_of_another_org`` otherwise, before anything is written.
"""

from __future__ import annotations

from services.referrals.patients import KnownPatients
from services.referrals.store import CASES
from shared.domain_errors import Forbidden, Invalid
from shared.mongo import Database
from shared.principal import Principal, Role
from shared.scoping import other_org

LINKING = ("accepted", "in-progress")  # a referral that links two organizations for a transfer


def transport_org(principal: Principal, named: str | None) -> str:
    """Where the transport happens: the caller's organization; the HIS and the alliance
    admin name it."""
    if Role.SERVICE in principal.roles or Role.ALLIANCE_ADMIN in principal.roles:
        if named is None:
            raise Invalid(
                "org_required",
                "name the organization where the transport happens (org_id)",
                detail_zh="缺少转运所属机构",
                extra={"field": "org_id"},
            )
        return named
    if principal.org_id is None or named not in (None, principal.org_id):
        raise other_org()
    return principal.org_id


class TransportAccess:
    def __init__(self, db: Database, patients: KnownPatients) -> None:
        self.db = db
        self.patients = patients

    async def check_patient(
        self,
        patient_id: str,
        org_id: str,
        from_org: str,
        to_org: str,
        referral_id: str | None,
    ) -> None:
        if not await self.patients.exists(patient_id):
            raise Invalid(
                "unknown_patient",
                "no real-name patient with this id (register the patient first)",
                detail_zh="未找到该实名患者",
                extra={"field": "patient_id"},
            )
        crossing = {from_org, to_org} != {org_id}
        if referral_id is not None:
            case = await self.db[CASES].find_one({"_id": referral_id})
            linked = {from_org, to_org, org_id}
            ends = {case["sending_org_id"], case.get("receiving_org_id")} if case else set()
            if (
                case is None
                or case["patient_id"] != patient_id
                or case["status"] not in LINKING
                or not linked <= ends
            ):
                raise referral_required(
                    "the referral named is not an accepted referral of this patient between "
                    "these organizations"
                )
            return
        if crossing:
            raise referral_required(
                "a transport between organizations is made from an accepted referral: "
                "name it (referral_id)"
            )
        if not await self.patients.known_at(patient_id, org_id):
            raise Forbidden(
                "patient_of_another_org",
                "this patient is not known at your organization; a transport for a patient "
                "of another organization needs an accepted referral (referral_id)",
                detail_zh="该患者不属于本机构，需凭已接收的转诊单申请转运",
            )


def referral_required(detail: str) -> Forbidden:
    return Forbidden("referral_required", detail, detail_zh="跨机构转运需凭已接收的转诊单")
