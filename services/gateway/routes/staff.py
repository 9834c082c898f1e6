"""Routes: staff accounts, managed by admins (``/v1/auth/admin/staff``); every change audited."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any

from fastapi import APIRouter, Header, Query, Response
from pydantic import BaseModel, Field

from services.gateway.identity.logins import staff_view
from services.gateway.identity.passwords import check_strength, hash_password
from services.gateway.routes.deps import Admin, AuditDep, LoginsDep, SettingsDep
from shared.mongo import Document
from shared.principal import STAFF_ROLES, Principal, Role
from shared.problems import (
    Conflict,
    Forbidden,
    NotFound,
    PreconditionFailed,
    PreconditionRequired,
    Unprocessable,
    problem_responses_doc,
)
from shared.scoping import may_see_org, org_filter, other_org, sees_every_org

router = APIRouter(prefix="/v1/auth/admin/staff", tags=["auth: staff accounts"])

USERNAME = r"^[a-z][a-z0-9._-]{2,31}$"


class StaffIn(BaseModel):
    username: str = Field(pattern=USERNAME)
    password: str = Field(min_length=1, max_length=128)
    roles: list[Role] = Field(min_length=1, max_length=5)
    org_id: str | None = Field(None, max_length=64, pattern=r"^[\w.-]+$")
    display_name: str = Field("", max_length=64)


class StaffPatch(BaseModel):
    roles: list[Role] | None = Field(None, min_length=1, max_length=5)
    org_id: str | None = Field(None, max_length=64, pattern=r"^[\w.-]+$")
    display_name: str | None = Field(None, max_length=64)
    disabled: bool | None = None


class PasswordReset(BaseModel):
    password: str = Field(min_length=1, max_length=128)


class StaffOut(BaseModel):
    id: str
    kind: str
    username: str
    roles: list[str]
    display_name: str
    org_id: str | None
    disabled: bool
    locked_until: datetime | None
    version: int


class StaffPage(BaseModel):
    items: list[StaffOut]
    next_cursor: str | None


def _out(doc: Document, response: Response | None = None) -> StaffOut:
    if response is not None:
        response.headers["ETag"] = f'"{doc["version"]}"'
    locked = doc.get("locked_until")
    return StaffOut(
        **staff_view(doc),
        disabled=bool(doc.get("disabled")),
        locked_until=locked if locked and locked > datetime.now(UTC) else None,
        version=doc["version"],
    )


def _check_roles(admin: Principal, roles: list[Role]) -> None:
    if not set(roles) <= STAFF_ROLES:
        raise Unprocessable(
            "invalid_roles", "staff roles are: " + ", ".join(sorted(r.value for r in STAFF_ROLES))
        )
    if Role.ALLIANCE_ADMIN in roles and not sees_every_org(admin):
        raise Forbidden(
            "forbidden_role",
            "only an alliance admin may grant the alliance_admin role",
            detail_zh="只有医联体管理员可以授予医联体管理员角色",
        )


def _check_org(admin: Principal, org_id: str | None) -> None:
    """An organization's admin manages its own organization's staff only."""
    if not may_see_org(admin, org_id):
        raise other_org()


async def _managed(admin: Principal, logins: LoginsDep, staff_id: str) -> Document:
    """The account, if this admin manages it; another organization's looks like none."""
    doc = await logins.staff.get(staff_id)
    if doc is None or not may_see_org(admin, doc.get("org_id")):
        raise NotFound("staff_not_found", "no such staff account")
    return doc


def _version(if_match: str | None) -> int | None:
    """The version ``If-Match`` names (``*``: whatever is current); 428 without one."""
    if if_match is None:
        raise PreconditionRequired(
            "precondition_required",
            "send If-Match with the account's ETag (from GET), so no change is lost",
            detail_zh="请携带 If-Match（账号的 ETag）后再修改",
        )
    if if_match.strip() == "*":
        return None
    try:
        return int(if_match.strip().strip('W/"').strip('"'))
    except ValueError as exc:
        raise PreconditionFailed("bad_if_match", "If-Match must be an ETag of this API") from exc


async def _audit(
    audit: AuditDep, admin: Principal, action: str, staff_id: str, **details: Any
) -> None:
    await audit.record(
        admin, action, patient_id=None, resource=f"staff:{staff_id}", details=details
    )


@router.post(
    "",
    status_code=201,
    summary="Open a staff account",
    responses=problem_responses_doc(401, 403, 409, 422),
)
async def create_staff(
    admin: Admin,
    logins: LoginsDep,
    settings: SettingsDep,
    audit: AuditDep,
    body: StaffIn,
    response: Response,
) -> StaffOut:
    _check_roles(admin, body.roles)
    _check_org(admin, body.org_id)
    check_strength(body.password, min_length=settings.password_min_length, username=body.username)
    doc = await logins.staff.create(
        username=body.username,
        password_hash=await hash_password(body.password),
        roles=body.roles,
        org_id=body.org_id,
        display_name=body.display_name,
        created_by=admin.subject,
    )
    if doc is None:
        raise Conflict("username_taken", f"the username {body.username!r} is taken")
    await _audit(audit, admin, "staff.create", doc["_id"], roles=doc["roles"])
    return _out(doc, response)


@router.get("", summary="Staff accounts", responses=problem_responses_doc(401, 403))
async def list_staff(
    admin: Admin,
    logins: LoginsDep,
    role: Role | None = None,
    cursor: Annotated[str | None, Query(max_length=64)] = None,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
) -> StaffPage:
    docs = await logins.staff.list(
        limit=limit + 1, after=cursor, role=role, org_id=org_filter(admin)
    )
    more = len(docs) > limit
    docs = docs[:limit]
    return StaffPage(items=[_out(d) for d in docs], next_cursor=docs[-1]["_id"] if more else None)


@router.get(
    "/{staff_id}", summary="One staff account", responses=problem_responses_doc(401, 403, 404)
)
async def get_staff(admin: Admin, logins: LoginsDep, staff_id: str, response: Response) -> StaffOut:
    return _out(await _managed(admin, logins, staff_id), response)


@router.patch(
    "/{staff_id}",
    summary="Change roles, organisation, name, or disable (If-Match: the ETag)",
    description=(
        "`If-Match` is required: the `ETag` of the account as last read (GET). Without it "
        "428 `precondition_required`; a stale one 412 `version_mismatch`."
    ),
    responses=problem_responses_doc(401, 403, 404, 412, 422, 428),
)
async def update_staff(
    admin: Admin,
    logins: LoginsDep,
    audit: AuditDep,
    staff_id: str,
    body: StaffPatch,
    response: Response,
    if_match: Annotated[str | None, Header(max_length=64)] = None,
) -> StaffOut:
    expected = _version(if_match)
    changes = body.model_dump(exclude_unset=True)
    await _managed(admin, logins, staff_id)
    if body.roles is not None:
        _check_roles(admin, body.roles)
        changes["roles"] = sorted(r.value for r in body.roles)
    if "org_id" in changes:
        _check_org(admin, changes["org_id"])
    if staff_id == admin.subject and (changes.get("disabled") or "roles" in changes):
        raise Conflict("own_account", "admins may not disable themselves or change their own roles")
    try:
        doc = await logins.staff.update(staff_id, expected, changes)
    except LookupError as exc:
        raise NotFound("staff_not_found", "no such staff account") from exc
    except ValueError as exc:
        raise PreconditionFailed("version_mismatch", "the account changed meanwhile") from exc
    if "roles" in changes or changes.get("disabled"):
        await logins.sessions.end_all(staff_id)  # new rights take effect at once
    await _audit(audit, admin, "staff.update", staff_id, changes=sorted(changes))
    return _out(doc, response)


@router.post(
    "/{staff_id}/password",
    status_code=204,
    summary="Set a new password (every login of the account ends)",
    responses=problem_responses_doc(401, 403, 404, 422),
)
async def reset_password(
    admin: Admin,
    logins: LoginsDep,
    settings: SettingsDep,
    audit: AuditDep,
    staff_id: str,
    body: PasswordReset,
) -> Response:
    doc = await _managed(admin, logins, staff_id)
    check_strength(body.password, min_length=settings.password_min_length, username=doc["username"])
    await logins.staff.update(
        staff_id,
        None,
        {
            "password_hash": await hash_password(body.password),
            "password_changed_at": datetime.now(UTC),
        },
    )
    await logins.sessions.end_all(staff_id)
    await _audit(audit, admin, "staff.password_reset", staff_id)
    return Response(status_code=204)


@router.post(
    "/{staff_id}/unlock",
    summary="Lift a lock after too many failed logins",
    responses=problem_responses_doc(401, 403, 404),
)
async def unlock_staff(
    admin: Admin, logins: LoginsDep, audit: AuditDep, staff_id: str, response: Response
) -> StaffOut:
    await _managed(admin, logins, staff_id)
    try:
        doc = await logins.staff.update(staff_id, None, {"locked_until": None, "failed_logins": 0})
    except LookupError as exc:
        raise NotFound("staff_not_found", "no such staff account") from exc
    await _audit(audit, admin, "staff.unlock", staff_id)
    return _out(doc, response)
