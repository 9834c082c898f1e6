"""Routes: logins and sessions (``/v1/auth``). Patients by phone code or WeChat; staff by
password. Every answer carrying tokens is ``Cache-Control: no-store``."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Body, Request, Response
from pydantic import BaseModel, Field

from services.gateway.identity.logins import patient_view, staff_view
from services.gateway.identity.passwords import check_strength, hash_password, verify_password
from services.gateway.identity.sessions import TokenPair
from services.gateway.routes.deps import Caller, LoginsDep, PatientsDep, SettingsDep, StaffDep
from shared.principal import Principal, Role
from shared.problems import Forbidden, NotFound, Unauthorized, problem_responses_doc

router = APIRouter(prefix="/v1/auth", tags=["auth"])

PHONE = r"^1[3-9]\d{9}$"


class CodeRequest(BaseModel):
    phone: str = Field(pattern=PHONE, description="mainland mobile number, 11 digits")


class CodeSent(BaseModel):
    expires_in: int
    resend_after: int


class CodeLogin(BaseModel):
    phone: str = Field(pattern=PHONE)
    code: str = Field(pattern=r"^\d{4,8}$")


class WechatLoginIn(BaseModel):
    code: str = Field(min_length=1, max_length=128, pattern=r"^[\w-]+$")


class PasswordLogin(BaseModel):
    username: str = Field(min_length=1, max_length=64)
    password: str = Field(min_length=1, max_length=128)


class LoginOut(TokenPair):
    account: dict[str, Any]


class RefreshIn(BaseModel):
    refresh_token: str = Field(min_length=1, max_length=200)


class LogoutIn(BaseModel):
    refresh_token: str | None = Field(None, max_length=200)


class PasswordChange(BaseModel):
    current_password: str = Field(min_length=1, max_length=128)
    new_password: str = Field(min_length=1, max_length=128)


def _no_store(response: Response) -> None:
    response.headers["Cache-Control"] = "no-store"
    response.headers["Pragma"] = "no-cache"


@router.post(
    "/otp",
    status_code=202,
    summary="Text a one-time login code to a patient's phone",
    responses=problem_responses_doc(422, 429, 503),
)
async def send_code(request: Request, logins: LoginsDep, body: CodeRequest) -> CodeSent:
    issued = await logins.send_code(body.phone, request.state.request_id)
    return CodeSent(expires_in=issued.expires_in, resend_after=issued.resend_after)


@router.post(
    "/login/otp",
    summary="Patient login with phone number and code",
    responses=problem_responses_doc(401, 403, 422, 429),
)
async def login_with_code(logins: LoginsDep, body: CodeLogin, response: Response) -> LoginOut:
    login = await logins.with_code(body.phone, body.code)
    _no_store(response)
    return LoginOut(**login.tokens.model_dump(), account=login.account)


@router.post(
    "/login/wechat",
    summary="Patient login from the mini-program (wx.login code → code2session)",
    responses=problem_responses_doc(401, 403, 404, 422, 429, 503),
)
async def login_with_wechat(logins: LoginsDep, body: WechatLoginIn, response: Response) -> LoginOut:
    login = await logins.with_wechat(body.code)
    _no_store(response)
    return LoginOut(**login.tokens.model_dump(), account=login.account)


@router.post(
    "/login/staff",
    summary="Staff login with username and password",
    description=(
        "A wrong password and a locked, disabled or unknown account get the same 401 "
        "`invalid_credentials`. After `staff_max_failed_logins` failures in a row the "
        "account is locked for `staff_lockout_minutes` (an admin may unlock it)."
    ),
    responses=problem_responses_doc(401, 422, 429, 503),
)
async def login_with_password(
    logins: LoginsDep, body: PasswordLogin, response: Response
) -> LoginOut:
    login = await logins.with_password(body.username, body.password)
    _no_store(response)
    return LoginOut(**login.tokens.model_dump(), account=login.account)


@router.post(
    "/refresh",
    summary="Swap a refresh token for a new pair (the old one is used up)",
    responses=problem_responses_doc(401, 422),
)
async def refresh(logins: LoginsDep, body: RefreshIn, response: Response) -> TokenPair:
    tokens = await logins.refresh(body.refresh_token)
    _no_store(response)
    return tokens


@router.post(
    "/logout",
    status_code=204,
    summary="End this login: the access token and, if given, its refresh token",
    responses=problem_responses_doc(401),
)
async def logout(
    logins: LoginsDep, caller: Caller, body: Annotated[LogoutIn | None, Body()] = None
) -> Response:
    await logins.sessions.logout(caller, body.refresh_token if body else None)
    return Response(status_code=204)


class Me(BaseModel):
    """Who the caller is; the fields present depend on the kind of caller (unset ones are
    left out). Stored staff: ``id kind roles username display_name org_id stored``; stored
    patient: ``id kind roles phone wechat_login wechat_bound stored``; no account here:
    ``id kind roles org_id stored``, with ``wechat_bound`` before ``stored`` for patients.
    The field order below keeps each of these in that order."""

    id: str
    kind: Literal["patient", "staff", "service"]
    roles: list[str]
    username: str | None = Field(None, description="staff accounts")
    display_name: str | None = Field(None, description="staff accounts")
    phone: str | None = Field(None, description="patient accounts: the masked number")
    wechat_login: bool | None = Field(None, description="patient accounts: signs in with WeChat")
    org_id: str | None = Field(None, description="staff accounts and tokens without an account")
    wechat_bound: bool | None = Field(
        None, description="patients: WeChat messages reach the account (null: unknown now)"
    )
    stored: bool = Field(description="an account here (true) or only what the token says")


def token_view(caller: Principal) -> dict[str, Any]:
    """What a token says of a subject with no account here (a service, a dev token)."""
    kind = "patient"
    if Role.SERVICE in caller.roles:
        kind = "service"
    elif caller.is_staff:
        kind = "staff"
    roles = sorted(r.value for r in caller.roles)
    return {"id": caller.subject, "kind": kind, "roles": roles, "org_id": caller.org_id}


@router.get(
    "/me",
    summary="Who I am",
    description=(
        "The account (`stored: true`), or for a valid token whose subject has no account "
        "here — a service, a token minted with `devstack.token` — what the token says "
        "(`stored: false`). For patients `wechat_bound` says whether WeChat messages reach "
        "the account (`null`: unknown right now) and `wechat_login` whether it signs in "
        "with WeChat."
    ),
    response_model=Me,
    response_model_exclude_unset=True,
    responses=problem_responses_doc(401),
)
async def me(
    request: Request, caller: Caller, logins: LoginsDep, patients: PatientsDep, staff: StaffDep
) -> Me:
    if caller.subject.startswith("st-") and (doc := await staff.get(caller.subject)):
        return Me(**staff_view(doc), stored=True)
    if Role.PATIENT not in caller.roles:
        return Me(**token_view(caller), stored=False)
    bound = await logins.wechat_bound(request.headers["authorization"])
    if (doc := await patients.get(caller.subject)) is not None:
        return Me(**patient_view(doc, wechat_bound=bound), stored=True)
    return Me(**token_view(caller), wechat_bound=bound, stored=False)


class WechatBindingOut(BaseModel):
    wechat_login: bool = Field(description="the account now signs in with this WeChat user")
    wechat_bound: bool = Field(description="WeChat messages reach the account")


@router.put(
    "/me/wechat",
    summary="Patients: bind my WeChat (a fresh wx.login code, exchanged with WeChat)",
    description=(
        "The mini-program calls `wx.login` and sends the `code`; the gateway exchanges it "
        "with WeChat (code2session) for the openid, binds it to the account (sign-in with "
        "WeChat) and tells notifications (WeChat messages). An openid bound to another "
        "account is a 409 `wechat_bound_elsewhere`. A client-supplied openid is never taken."
    ),
    responses=problem_responses_doc(401, 403, 404, 409, 422, 429, 503),
)
async def bind_wechat(caller: Caller, logins: LoginsDep, body: WechatLoginIn) -> WechatBindingOut:
    if Role.PATIENT not in caller.roles:
        raise Forbidden(
            "forbidden_role",
            "This action requires one of the roles: patient.",
            detail_zh="您没有执行此操作的权限。",
        )
    bound = await logins.bind_wechat(caller.subject, body.code)
    return WechatBindingOut(wechat_login=True, wechat_bound=bound)


@router.post(
    "/me/password",
    status_code=204,
    summary="Staff: change my password (every login of the account ends)",
    responses=problem_responses_doc(401, 404, 422),
)
async def change_password(
    caller: Caller, logins: LoginsDep, settings: SettingsDep, body: PasswordChange
) -> Response:
    doc = await logins.staff.get(caller.subject)
    if doc is None:
        raise NotFound("account_not_found", "only staff accounts have passwords")
    if not await verify_password(doc["password_hash"], body.current_password):
        raise Unauthorized("invalid_credentials", "the current password is wrong")
    check_strength(
        body.new_password, min_length=settings.password_min_length, username=doc["username"]
    )
    new_hash = await hash_password(body.new_password)
    await logins.staff.update(doc["_id"], None, {"password_hash": new_hash})
    await logins.sessions.end_all(doc["_id"])
    return Response(status_code=204)
