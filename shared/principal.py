"""Who is calling: the identity a verified JWT carries (docs/architecture.md §8)."""

from __future__ import annotations

from enum import StrEnum

from pydantic import BaseModel, ConfigDict, Field


class Role(StrEnum):
    PATIENT = "patient"
    AGENT = "agent"
    DOCTOR = "doctor"
    COORDINATOR = "coordinator"
    NURSE = "nurse"
    ADMIN = "admin"  # an organization's admin: its master data, policy and audit log
    ALLIANCE_ADMIN = "alliance_admin"  # the alliance's admin: every organization, audited
    SERVICE = "service"  # service-to-service and HIS integrations


STAFF_ROLES: frozenset[Role] = frozenset(
    {Role.AGENT, Role.DOCTOR, Role.COORDINATOR, Role.NURSE, Role.ADMIN, Role.ALLIANCE_ADMIN}
)


class Principal(BaseModel):
    """An authenticated caller.

    ``subject`` is the account id (a patient account or a staff user).
    ``patient_ids`` lists the patients a patient account may act for (themselves
    and family members); staff reach patients through their roles instead.
    """

    model_config = ConfigDict(frozen=True)

    subject: str
    roles: frozenset[Role]
    org_id: str | None = None
    patient_ids: frozenset[str] = Field(default_factory=frozenset)
    token_id: str | None = None
    issued_at: int | None = None  # the token's ``iat`` (epoch seconds)

    @property
    def is_staff(self) -> bool:
        return bool(self.roles & STAFF_ROLES)

    def has_any(self, *roles: Role) -> bool:
        """Holds one of ``roles``; an alliance admin holds every power of an admin."""
        wanted = set(roles)
        if Role.ADMIN in wanted and Role.ALLIANCE_ADMIN in self.roles:
            return True
        return bool(self.roles & wanted)

    def may_access_patient(self, patient_id: str) -> bool:
        return self.is_staff or Role.SERVICE in self.roles or patient_id in self.patient_ids

    @property
    def primary_role(self) -> str:
        for role in (
            Role.ALLIANCE_ADMIN,
            Role.ADMIN,
            Role.DOCTOR,
            Role.COORDINATOR,
            Role.NURSE,
            Role.AGENT,
        ):
            if role in self.roles:
                return role.value
        return next(iter(sorted(r.value for r in self.roles)), "anonymous")
