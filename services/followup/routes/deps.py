"""Dependencies shared by the followup routes."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Header, Query

from services.followup.bootstrap import Followup, get_followup
from shared.auth import current_principal, require_roles
from shared.principal import Principal, Role

PREFIX = "/v1/followup"
Ctx = Annotated[Followup, Depends(get_followup)]
Caller = Annotated[Principal, Depends(current_principal)]
IfMatch = Annotated[str | None, Header(alias="If-Match")]
OrgQuery = Annotated[str | None, Query(max_length=64, description="alliance admins, services")]
Limit = Annotated[int, Query(ge=1, le=500)]

# the hotline's agents work the call list; nurses take the unreachable; admins oversee
CallStaff = Annotated[
    Principal,
    Depends(require_roles(Role.AGENT, Role.NURSE, Role.ADMIN, Role.ALLIANCE_ADMIN, Role.SERVICE)),
]
ClinicalStaff = Annotated[
    Principal,
    Depends(
        require_roles(
            Role.AGENT, Role.NURSE, Role.DOCTOR, Role.ADMIN, Role.ALLIANCE_ADMIN, Role.SERVICE
        )
    ),
]
Admins = Annotated[Principal, Depends(require_roles(Role.ADMIN, Role.ALLIANCE_ADMIN, Role.SERVICE))]
# what the whole alliance shares (questionnaire definitions): its admin and the HIS
AllianceKeepers = Annotated[Principal, Depends(require_roles(Role.ALLIANCE_ADMIN, Role.SERVICE))]
# the HIS integration only: a person does not post discharges
PatientAccount = Annotated[Principal, Depends(require_roles(Role.PATIENT))]
His = Annotated[Principal, Depends(require_roles(Role.SERVICE))]
