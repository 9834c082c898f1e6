"""Login flows: patients by phone code or WeChat, staff by password; refresh and logout."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import structlog
from pymongo.errors import DuplicateKeyError

from services.gateway.identity.accounts import PatientAccounts, StaffAccounts
from services.gateway.identity.codes import Issued, LoginCodes
from services.gateway.identity.lockout import LoginAttempts
from services.gateway.identity.passwords import hash_password, needs_rehash, verify_password
from services.gateway.identity.sessions import Identity, Sessions, TokenPair
from services.gateway.identity.wechat import WechatLogin
from shared.auth import TokenMinter
from shared.ids import new_id
from shared.mongo import Document
from shared.principal import Role
from shared.privacy import mask_phone
from shared.problems import Conflict, Forbidden, NotFound, ServiceUnavailable, Unauthorized

log = structlog.get_logger(__name__)


@dataclass(frozen=True)
class Login:
    tokens: TokenPair
    account: dict[str, Any]


def patient_view(doc: Document, *, wechat_bound: bool | None) -> dict[str, Any]:
    """A patient account. ``wechat_login``: the account signs in with WeChat (the gateway
    holds that binding). ``wechat_bound``: WeChat messages reach it (notifications holds
    that binding); ``None`` when notifications could not be asked."""
    return {
        "id": doc["_id"],
        "kind": "patient",
        "roles": [Role.PATIENT.value],
        "phone": doc.get("phone_masked"),
        "wechat_login": bool(doc.get("wechat_openid")),
        "wechat_bound": wechat_bound,
    }


def staff_view(doc: Document) -> dict[str, Any]:
    return {
        "id": doc["_id"],
        "kind": "staff",
        "roles": list(doc["roles"]),
        "username": doc["username"],
        "display_name": doc.get("display_name", ""),
        "org_id": doc.get("org_id"),
    }


def _invalid_credentials() -> Unauthorized:
    """The one answer to a wrong password and a locked, disabled or unknown account."""
    return Unauthorized(
        "invalid_credentials",
        "the username or password is wrong",
        detail_zh="用户名或密码错误",
    )


class CodeSender:
    """Hands a login code to notifications, which texts it at once (service token)."""

    def __init__(self, client: httpx.AsyncClient, notifications_url: str, minter: TokenMinter):
        self.client = client
        self.url = notifications_url.rstrip("/") + "/v1/notifications/login-codes"
        self.minter = minter

    async def send(self, phone: str, code: str, minutes: int, request_id: str) -> None:
        """Text ``code``; ``request_id`` (the gateway's) only names the call in logs."""
        token = self.minter.mint("gateway", [Role.SERVICE], ttl_seconds=60)
        # notifications sends one SMS per key: a key of our own for each code, so a
        # replayed request id can never make a fresh code go unsent
        body = {"phone": phone, "code": code, "minutes": minutes, "request_id": new_id()}
        try:
            response = await self.client.post(
                self.url,
                json=body,
                headers={"authorization": f"Bearer {token}", "x-request-id": request_id},
            )
        except httpx.HTTPError as exc:
            log.warning("login_code.send_failed", error=type(exc).__name__)
            raise _sms_down() from exc
        if response.status_code != 202:
            log.warning("login_code.refused", status=response.status_code)
            raise _sms_down()


def _sms_down() -> ServiceUnavailable:
    return ServiceUnavailable(
        "code_not_sent",
        "the login code could not be sent; please try again shortly",
        retry_after=5,
        detail_zh="验证码发送失败，请稍后再试",
    )


class Logins:
    def __init__(
        self,
        *,
        codes: LoginCodes,
        sender: CodeSender,
        patients: PatientAccounts,
        staff: StaffAccounts,
        sessions: Sessions,
        wechat: WechatLogin,
        notifications_url: str,
        attempts: LoginAttempts,
        max_failed_logins: int,
        lockout: timedelta,
        lookup_timeout: float = 1.0,
    ) -> None:
        self.codes = codes
        self.sender = sender
        self.patients = patients
        self.staff = staff
        self.sessions = sessions
        self.wechat = wechat
        self.notifications_url = notifications_url.rstrip("/")
        self.attempts = attempts
        self.max_failed_logins = max_failed_logins
        self.lockout = lockout
        self.lookup_timeout = lookup_timeout

    async def send_code(self, phone: str, request_id: str) -> Issued:
        issued = await self.codes.issue(phone)
        await self.sender.send(phone, issued.code, max(1, issued.expires_in // 60), request_id)
        log.info("login_code.sent", phone=mask_phone(phone))
        return issued

    async def with_code(self, phone: str, code: str) -> Login:
        await self.codes.check(phone, code)
        account = await self.patients.for_phone(phone)
        self._refuse_disabled(account)
        tokens = await self.sessions.open(Identity(account["_id"], (Role.PATIENT,)))
        log.info("login.patient", method="code", account_id=account["_id"])
        bound = await self.wechat_bound(f"Bearer {tokens.access_token}")
        return Login(tokens, patient_view(account, wechat_bound=bound))

    async def with_wechat(self, code: str) -> Login:
        user = await self.wechat.code_to_user(code)
        account, _new = await self.patients.for_openid(user.openid, user.unionid)
        self._refuse_disabled(account)
        tokens = await self.sessions.open(Identity(account["_id"], (Role.PATIENT,)))
        bound = await self._bind_openid(account["_id"], user.openid)
        log.info("login.patient", method="wechat", account_id=account["_id"])
        return Login(tokens, patient_view(account, wechat_bound=bound or None))

    async def bind_wechat(self, account_id: str, code: str) -> bool:
        """Bind the WeChat user of a fresh ``wx.login`` ``code`` to a patient account: the
        openid comes from WeChat's code2session, never from the client. 409 when it is
        bound to another account; whether notifications took the binding is returned."""
        user = await self.wechat.code_to_user(code)
        accounts = self.patients.collection
        taken = await accounts.find_one({"wechat_openid": user.openid, "_id": {"$ne": account_id}})
        try:
            if taken is not None:
                raise DuplicateKeyError("wechat_openid")
            done = await accounts.update_one(
                {"_id": account_id, "disabled": {"$ne": True}},
                {"$set": {"wechat_openid": user.openid, "wechat_unionid": user.unionid}},
            )
        except DuplicateKeyError as exc:
            log.info("wechat.bind_conflict", account_id=account_id)
            raise Conflict(
                "wechat_bound_elsewhere",
                "this WeChat user is bound to another account",
                detail_zh="该微信已绑定其他账号",
            ) from exc
        if done.matched_count == 0:
            raise NotFound("account_not_found", "no patient account to bind WeChat to")
        log.info("wechat.bound", account_id=account_id)
        return await self._bind_openid(account_id, user.openid)

    async def _bind_openid(self, account_id: str, openid: str) -> bool:
        """Notifications learns where to send WeChat messages (a service call: the openid
        came from WeChat, not the client); a failure waits for the next login."""
        token = self.sender.minter.mint("gateway", [Role.SERVICE], ttl_seconds=60)
        try:
            response = await self.sender.client.put(
                f"{self.notifications_url}/v1/notifications/accounts/{account_id}/wechat",
                json={"openid": openid},
                headers={"authorization": f"Bearer {token}"},
            )
            if response.status_code >= 300:
                log.warning("wechat.bind_refused", status=response.status_code)
            return response.status_code < 300
        except httpx.HTTPError as exc:
            log.warning("wechat.bind_failed", error=type(exc).__name__)
            return False

    async def wechat_bound(self, authorization: str) -> bool | None:
        """Whether notifications can send the caller WeChat messages (it holds the binding,
        ``PUT /v1/notifications/me/wechat``), asked with the caller's own ``authorization``;
        ``None`` (unknown) when it does not answer in time or at all."""
        try:
            response = await self.sender.client.get(
                f"{self.notifications_url}/v1/notifications/me/wechat",
                headers={"authorization": authorization},
                timeout=self.lookup_timeout,
            )
            bound = response.json().get("bound") if response.status_code == 200 else None
        except (httpx.HTTPError, ValueError, AttributeError) as exc:
            log.warning("wechat.binding_unknown", error=type(exc).__name__)
            return None
        if not isinstance(bound, bool):
            log.warning("wechat.binding_unknown", status=response.status_code)
            return None
        return bound

    async def with_password(self, username: str, password: str) -> Login:
        """A staff login. The attempt takes its place first (:mod:`.lockout`): past the
        limit it is refused unchecked. A locked, disabled or unknown account and a wrong
        password get one answer (401 ``invalid_credentials``), each after one hash check."""
        doc = await self.staff.by_username(username)
        key = self.attempts.key(username, doc.get("version") if doc else None)
        locked_until = doc.get("locked_until") if doc else None
        locked = locked_until is not None and locked_until > datetime.now(UTC)
        place = 0 if locked else await self.attempts.reserve(key)
        if place == 0:  # locked: the same work as a wrong password, and the same answer
            await verify_password(None, password)
            log.info("login.staff_refused", reason="locked")
            raise _invalid_credentials()
        if not await verify_password(doc["password_hash"] if doc else None, password):
            locks = await self.attempts.failed(key, place)
            if doc is not None:
                await self.staff.record_failure(
                    doc["_id"], limit=1 if locks else self.max_failed_logins, lockout=self.lockout
                )
                log.info("login.staff_failed", account_id=doc["_id"], locked=locks)
            raise _invalid_credentials()
        assert doc is not None
        if doc.get("disabled"):
            log.info("login.staff_refused", reason="disabled", account_id=doc["_id"])
            raise _invalid_credentials()
        await self.attempts.succeeded(key)
        rehashed = await hash_password(password) if needs_rehash(doc["password_hash"]) else None
        await self.staff.record_success(doc["_id"], rehashed)
        tokens = await self.sessions.open(self.staff_identity(doc))
        log.info("login.staff", account_id=doc["_id"], roles=doc["roles"])
        return Login(tokens, staff_view(doc))

    @staticmethod
    def staff_identity(doc: Document) -> Identity:
        return Identity(doc["_id"], tuple(Role(r) for r in doc["roles"]), doc.get("org_id"))

    async def refresh(self, refresh_token: str) -> TokenPair:
        """Rotate; the account is read again, so a disabled one or changed roles take effect."""
        family, account_id = await self.sessions.use_refresh(refresh_token)
        if account_id.startswith("st-"):
            doc = await self.staff.get(account_id)
            identity = self.staff_identity(doc) if doc else None
        else:
            doc = await self.patients.get(account_id)
            identity = Identity(account_id, (Role.PATIENT,)) if doc else None
        if doc is None or identity is None or doc.get("disabled"):
            await self.sessions.revoke_family(family)
            raise Unauthorized("refresh_revoked", "this account can no longer sign in")
        return await self.sessions.rotate(family, identity)

    @staticmethod
    def _refuse_disabled(doc: Document) -> None:
        if doc.get("disabled"):
            raise Forbidden(
                "account_disabled", "this account is disabled", detail_zh="该账号已停用"
            )
