"""The alliance's directory: organizations, their intake settings and referral relationships.

Every staff role and service caller reads it (it is the alliance's shared directory, no
patient data); contacts' office phones are shown to staff only. The structure (new
organizations, levels, alliances, relationships) is the alliance admin's and the HIS's;
an organization's admin keeps its own master data, its coordinators its intake settings.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Body, Depends, Path, Query, Response
from pydantic import BaseModel

from services.referrals.directory import INTAKE_ROLES
from services.referrals.domain.directory import (
    ALLIANCE_ID,
    ORG_ID,
    REGION,
    SPECIALTY,
    Direction,
    IntakeSettings,
    Organization,
    OrganizationIn,
    OrgKind,
    Relationship,
)
from services.referrals.routes.deps import PREFIX, Ctx, IfMatch
from shared.auth import require_roles
from shared.principal import STAFF_ROLES, Principal, Role
from shared.problems import PreconditionFailed

router = APIRouter(prefix=PREFIX, tags=["referrals: directory"])

Reader = Annotated[Principal, Depends(require_roles(*STAFF_ROLES, Role.SERVICE))]
# an organization's admin (its own organization), the alliance's admin and the HIS
OrgWriter = Annotated[Principal, Depends(require_roles(Role.ADMIN, Role.SERVICE))]
AllianceWriter = Annotated[Principal, Depends(require_roles(Role.ALLIANCE_ADMIN, Role.SERVICE))]
IntakeWriter = Annotated[Principal, Depends(require_roles(*INTAKE_ROLES))]
OrgPath = Annotated[str, Path(pattern=ORG_ID)]


class SavedIds(BaseModel):
    ids: list[str]


class SavedRelationships(BaseModel):
    saved: int


class OrganizationList(BaseModel):
    items: list[Organization]


class RelationshipList(BaseModel):
    items: list[Relationship]


def shown_to(principal: Principal, org: Organization) -> Organization:
    """Office phones are for staff; service callers get the rest."""
    if principal.is_staff:
        return org
    contacts = [c.model_copy(update={"office_phone": None}) for c in org.contacts]
    return org.model_copy(update={"contacts": contacts})


def etag(org: Organization) -> str:
    return f'"{org.version}"'


def expected_version(if_match: str | None) -> int | None:
    if if_match is None:
        return None
    try:
        return int(if_match.strip().removeprefix("W/").strip('"'))
    except ValueError as exc:
        raise PreconditionFailed(
            "if_match_invalid", "If-Match must be the ETag of the organization"
        ) from exc


@router.put(
    "/admin/organizations",
    summary="Create or update organizations of the alliance (bulk, from HIS)",
    description="Up to 500 organizations; every item is checked before any is written "
    "(a bad one: 422 naming its index, nothing saved). An organization's admin may update "
    "its own organization's name, departments, contacts and intake only "
    "(403 `forbidden_org_fields`, `forbidden_org_create`, `forbidden_org`).",
    response_model=SavedIds,
)
async def put_organizations(
    ctx: Ctx, principal: OrgWriter, items: Annotated[list[OrganizationIn], Body(max_length=500)]
) -> dict[str, Any]:
    return {"ids": await ctx.directory.upsert_organizations(principal, items)}


@router.get(
    "/organizations",
    summary="The alliance's organizations, filtered",
    response_model=OrganizationList,
)
async def list_organizations(
    ctx: Ctx,
    principal: Reader,
    region: Annotated[str | None, Query(pattern=REGION)] = None,
    level: Annotated[int | None, Query(ge=1, le=3)] = None,
    kind: OrgKind | None = None,
    alliance_id: Annotated[str | None, Query(pattern=ALLIANCE_ID)] = None,
    specialty: Annotated[str | None, Query(pattern=SPECIALTY)] = None,
    accepting: bool | None = None,
) -> dict[str, Any]:
    orgs = await ctx.directory.list_organizations(
        region=region,
        level=level,
        kind=kind,
        alliance_id=alliance_id,
        specialty=specialty,
        accepting=accepting,
    )
    return {"items": [shown_to(principal, o) for o in orgs]}


@router.get(
    "/organizations/{org_id}",
    summary="One organization of the alliance (ETag: its version)",
    description="Readable by staff of every organization: the directory is the alliance's.",
    response_model=Organization,
)
async def get_organization(
    ctx: Ctx, principal: Reader, org_id: OrgPath, response: Response
) -> Organization:
    org = await ctx.directory.require(org_id)
    response.headers["ETag"] = etag(org)
    return shown_to(principal, org)


@router.put(
    "/organizations/{org_id}/intake",
    summary="Replace the organization's intake settings (accepting, capacity, hours)",
    description="By the organization's admin or coordinators (403 `forbidden_org` for "
    "another organization's), the alliance's admin or the HIS. `If-Match` (the ETag) is "
    "optional; a stale one is 409 `version_conflict`.",
    response_model=Organization,
)
async def put_intake(
    ctx: Ctx,
    principal: IntakeWriter,
    org_id: OrgPath,
    intake: IntakeSettings,
    response: Response,
    if_match: IfMatch = None,
) -> Organization:
    org = await ctx.directory.set_intake(
        principal, org_id, intake, expected_version=expected_version(if_match)
    )
    response.headers["ETag"] = etag(org)
    return shown_to(principal, org)


@router.put(
    "/admin/relationships",
    summary="Create or update referral relationships (bulk)",
    description="Up to 500; each must join two known organizations of one alliance whose "
    "levels fit its direction (422 `unknown_organization`, `relationship_level_mismatch`, "
    "`relationship_outside_alliance`, `relationship_self`, naming the item's index); a bad "
    "item saves nothing.",
    response_model=SavedRelationships,
)
async def put_relationships(
    ctx: Ctx,
    principal: AllianceWriter,
    items: Annotated[list[Relationship], Body(max_length=500)],
) -> dict[str, Any]:
    return {"saved": await ctx.directory.upsert_relationships(principal, items)}


@router.get(
    "/relationships",
    summary="Referral relationships, all or those from or to one organization",
    response_model=RelationshipList,
)
async def list_relationships(
    ctx: Ctx,
    principal: Reader,
    org_id: Annotated[str | None, Query(pattern=ORG_ID)] = None,
) -> dict[str, Any]:
    return {"items": await ctx.directory.list_relationships(org_id)}


@router.delete(
    "/admin/relationships/{from_org_id}/{to_org_id}/{direction}",
    status_code=204,
    summary="Remove a referral relationship",
    response_class=Response,
)
async def delete_relationship(
    ctx: Ctx,
    principal: AllianceWriter,
    from_org_id: OrgPath,
    to_org_id: OrgPath,
    direction: Direction,
) -> Response:
    await ctx.directory.remove_relationship(principal, from_org_id, to_org_id, direction)
    return Response(status_code=204)
