"""WeChat mini-program subscription messages: ``subscribeMessage.send`` and its sent events.

The access token comes from the *stable* token endpoint (``POST /cgi-bin/stable_token``,
normal mode): unlike ``GET /cgi-bin/token`` a fetch does not invalidate the token other
replicas of this service hold, and WeChat recommends it in place of the old endpoint. The
token is cached until a minute before ``expires_in`` and fetched by one coroutine at a
time; a send answered with a token error (40001 / 42001 / 40014) refreshes it and is tried
once more.

WeChat offers no way to learn whether a send went out when its answer was lost: the send
takes no caller reference and is not idempotent, and there is no query by message (the
``subscribe_msg_sent_event`` push names only WeChat's own ``MsgID``, which the lost answer
carried). :meth:`WechatSubscribeProvider.lookup` says so (:data:`UNKNOWABLE`), and the
delivery records such a message ``unknown`` rather than send it (and spend a consent) twice.

WeChat takes the token in the query string; :class:`_HideAccessToken` keeps it out of
httpx's request log. Openids, the app secret and tokens are never logged.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import re
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime

import httpx
import structlog

from services.notifications.domain.channels import Channel
from services.notifications.providers.base import (
    UNKNOWABLE,
    Lookup,
    ProviderError,
    Receipt,
    SendRequest,
    SendResult,
    SendStatus,
    may_have_arrived,
    template_not_configured,
)
from services.notifications.settings import NotificationsSettings

__all__ = [
    "PERMANENT_ERRCODES",
    "RETRYABLE_ERRCODES",
    "TOKEN_ERRCODES",
    "WechatSubscribeProvider",
    "is_retryable",
    "parse_sent_event",
    "verify_signature",
]

log = structlog.get_logger(__name__)

PROVIDER = "wechat"
SENT_EVENT = "subscribe_msg_sent_event"
TOKEN_MARGIN_SECONDS = 60.0

TOKEN_ERRCODES = frozenset({40001, 42001, 40014})  # invalid / expired / malformed token
RETRYABLE_ERRCODES = frozenset(
    {
        -1,  # system busy
        45009,  # daily API quota reached
        45011,  # API minute quota reached
        45047,  # too many messages downstream
        43108,  # concurrent calls to the same openid
        *TOKEN_ERRCODES,  # still rejected after a refresh: try later
    }
)
PERMANENT_ERRCODES = frozenset(
    {
        43101,  # user refused / no one-time subscription left
        40003,  # invalid openid
        40037,  # invalid template id
        47003,  # template data invalid (empty or breaking a field rule)
        41030,  # page not in the released mini-program
        48001,  # API not authorised for this app
        40013,  # invalid appid (token)
        40125,  # invalid app secret (token)
        40164,  # caller IP not whitelisted (token)
    }
)


def is_retryable(errcode: int) -> bool:
    """Whether an errcode of the send or token API is worth trying again later."""
    return errcode in RETRYABLE_ERRCODES


def language_code(language: str) -> str:
    """``lang`` of the send API: ``en_US`` for any English tag, ``zh_CN`` otherwise."""
    return "en_US" if language.lower().replace("_", "-").startswith("en") else "zh_CN"


class _HideAccessToken(logging.Filter):
    """Masks ``access_token=...`` in httpx's ``HTTP Request: POST <url>`` records."""

    _token = re.compile(r"(access_token=)[^&\s\"']+")

    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.args, tuple):
            record.args = tuple(self._masked(arg) for arg in record.args)
        return True

    def _masked(self, arg: object) -> object:
        text = str(arg) if isinstance(arg, str | httpx.URL) else ""
        return self._token.sub(r"\1***", text) if "access_token=" in text else arg


def _hide_tokens_in_httpx_log() -> None:
    httpx_logger = logging.getLogger("httpx")
    if not any(isinstance(f, _HideAccessToken) for f in httpx_logger.filters):
        httpx_logger.addFilter(_HideAccessToken())


@dataclass(frozen=True)
class _Token:
    value: str
    good_until: float  # on the provider's clock


class WechatSubscribeProvider:
    """Sends one subscription message per request to the user's openid."""

    name = PROVIDER
    channel = Channel.WECHAT

    def __init__(
        self,
        settings: NotificationsSettings,
        *,
        client: httpx.AsyncClient | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._base = settings.wechat_api_base.rstrip("/")
        self._app_id = settings.wechat_app_id
        self._app_secret = settings.wechat_app_secret
        self._state = settings.wechat_miniprogram_state
        self._owns_client = client is None
        self._client = client or httpx.AsyncClient(timeout=settings.provider_timeout_seconds)
        self._clock = clock
        self._token: _Token | None = None
        self._token_lock = asyncio.Lock()
        _hide_tokens_in_httpx_log()

    async def send(self, request: SendRequest) -> SendResult:
        """Send; on a token error refresh the token and send once more."""
        try:
            return await self._send(request)
        except ProviderError as error:
            log.warning(
                "wechat.send_failed",
                attempt_id=request.attempt_id,
                code=error.code,
                retryable=error.retryable,
            )
            raise

    async def lookup(self, request: SendRequest, since: datetime) -> Lookup:
        """WeChat cannot be asked about a send (see the module's docstring)."""
        return UNKNOWABLE

    async def _send(self, request: SendRequest) -> SendResult:
        body = self._body(request)
        url = f"{self._base}/cgi-bin/message/subscribe/send"
        token = await self._access_token()
        answer = await self._post_json(url, body, {"access_token": token}, sending=True)
        if answer.get("errcode") in TOKEN_ERRCODES:
            log.info("wechat.token_rejected", errcode=answer.get("errcode"))
            token = await self._access_token(rejected=token)
            answer = await self._post_json(url, body, {"access_token": token}, sending=True)
        return self._result(request, answer)

    async def aclose(self) -> None:
        if self._owns_client:
            await self._client.aclose()

    def _body(self, request: SendRequest) -> dict[str, object]:
        if not request.provider_template:
            raise template_not_configured(PROVIDER, request.kind)
        body: dict[str, object] = {
            "touser": request.address,
            "template_id": request.provider_template,
            "data": {name: {"value": value} for name, value in request.rendered.fields.items()},
            "miniprogram_state": self._state,
            "lang": language_code(request.language),
        }
        if request.rendered.page:
            body["page"] = request.rendered.page
        return body

    async def _access_token(self, rejected: str | None = None) -> str:
        """The cached token, or a fresh one; ``rejected`` is a token WeChat just refused."""
        async with self._token_lock:
            cached = self._token
            if cached and cached.value != rejected and self._clock() < cached.good_until:
                return cached.value
            self._token = None
            self._token = await self._fetch_token()
            return self._token.value

    async def _fetch_token(self) -> _Token:
        payload = {
            "grant_type": "client_credential",
            "appid": self._app_id,
            "secret": self._app_secret,
            "force_refresh": False,
        }
        answer = await self._post_json(f"{self._base}/cgi-bin/stable_token", payload, None)
        token, expires_in = answer.get("access_token"), answer.get("expires_in")
        if not isinstance(token, str) or not token or not isinstance(expires_in, int):
            raise self._error(answer, "access token")
        log.info("wechat.token_fetched", expires_in=expires_in)
        return _Token(token, self._clock() + max(0.0, expires_in - TOKEN_MARGIN_SECONDS))

    async def _post_json(
        self,
        url: str,
        payload: dict[str, object],
        params: dict[str, str] | None,
        *,
        sending: bool = False,
    ) -> dict[str, object]:
        """POST JSON and return the JSON object answered; transport faults are retryable
        (and, for a send, in doubt when the request may have arrived)."""
        try:
            response = await self._client.post(url, json=payload, params=params)
        except httpx.TransportError as exc:
            code = "timeout" if isinstance(exc, httpx.TimeoutException) else "connection_error"
            error = ProviderError(
                PROVIDER,
                code,
                type(exc).__name__,
                retryable=True,
                in_doubt=sending and may_have_arrived(exc),
            )
            raise error from exc
        status = response.status_code
        if status >= 400:
            retryable = status >= 500 or status == 429
            raise ProviderError(
                PROVIDER, f"http_{status}", response.reason_phrase, retryable=retryable
            )
        try:
            answer = response.json()
        except ValueError:
            answer = None
        if not isinstance(answer, dict):
            raise ProviderError(
                PROVIDER, "bad_response", "answer is not a JSON object", retryable=True
            )
        return answer

    def _result(self, request: SendRequest, answer: dict[str, object]) -> SendResult:
        if answer.get("errcode", 0) != 0:
            raise self._error(answer, "send")
        msgid = answer.get("msgid")
        provider_message_id = str(msgid) if msgid is not None and msgid != "" else None
        log.info("wechat.sent", attempt_id=request.attempt_id, msgid=provider_message_id)
        return SendResult(SendStatus.SENT, PROVIDER, provider_message_id)

    @staticmethod
    def _error(answer: dict[str, object], what: str) -> ProviderError:
        errcode = answer.get("errcode")
        if not isinstance(errcode, int) or isinstance(errcode, bool):
            return ProviderError(PROVIDER, "bad_response", f"{what}: no errcode", retryable=True)
        message = f"{what}: {answer.get('errmsg', '')}"
        return ProviderError(PROVIDER, str(errcode), message, retryable=is_retryable(errcode))


def verify_signature(token: str, signature: str, timestamp: str, nonce: str) -> bool:
    """Check a message-push ``signature``: sha1 of token, timestamp, nonce sorted and joined."""
    parts = (token, signature, timestamp, nonce)
    if not all(isinstance(part, str) for part in parts) or not token or not signature:
        return False
    joined = "".join(sorted((token, timestamp, nonce))).encode()
    expected = hashlib.sha1(joined).hexdigest()  # noqa: S324 - the push protocol's hash
    return secrets.compare_digest(expected.encode(), signature.encode())


def parse_sent_event(body: object) -> list[Receipt]:
    """Receipts from a JSON ``subscribe_msg_sent_event`` push; anything malformed yields none.

    ``List`` is an object for one message and an array for several; the XML-shaped nesting
    ``SubscribeMsgSentEvent.List`` is accepted too.
    """
    if not isinstance(body, dict) or body.get("Event") != SENT_EVENT:
        return []
    items = body.get("List")
    nested = body.get("SubscribeMsgSentEvent")
    if items is None and isinstance(nested, dict):
        items = nested.get("List")
    if isinstance(items, dict):
        items = [items]
    if not isinstance(items, list):
        return []
    reported_at = _event_time(body.get("CreateTime"))
    receipts = [_receipt(item, reported_at) for item in items]
    return [receipt for receipt in receipts if receipt is not None]


def _receipt(item: object, reported_at: datetime | None) -> Receipt | None:
    if not isinstance(item, dict):
        return None
    msg_id, code = _as_int(item.get("MsgID")), _as_int(item.get("ErrorCode"))
    if msg_id is None or code is None:
        return None
    status = item.get("ErrorStatus")
    return Receipt(
        provider=PROVIDER,
        provider_message_id=str(msg_id),
        delivered=code == 0,
        error_code=None if code == 0 else str(code),
        error_message=status if code != 0 and isinstance(status, str) else None,
        reported_at=reported_at,
    )


def _as_int(value: object) -> int | None:
    """An int, or the decimal text of one (WeChat sends both); anything else is None."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, str) and re.fullmatch(r"-?[0-9]{1,20}", value.strip()):
        return int(value)
    return None


def _event_time(value: object) -> datetime | None:
    seconds = _as_int(value)
    if seconds is None:
        return None
    try:
        return datetime.fromtimestamp(seconds, UTC)
    except (OverflowError, OSError, ValueError):
        return None
