"""Aliyun SMS adapter: ``SendSms`` and ``QuerySendDetails`` of dysmsapi 2017-05-25 (RPC
style), and its delivery reports.

Requests are signed as Aliyun's SMS "signature method" page describes: RFC 3986
percent-encoding (``~`` kept, space ``%20``, ``*`` ``%2A``), parameters sorted by name,
``StringToSign = METHOD&%2F&percentEncode(canonicalized)``, HMAC-SHA1 keyed with
``secret + "&"``, base64. The adapter POSTs the parameters as a form, so neither the phone
number nor the signature ends up in a URL (and in access logs).

Each send carries the request's key (the message id) as ``OutId``. ``SendSms`` is not
idempotent (an ``OutId`` sent twice is two SMS), so after a crash between a send and its
record the delivery asks first: :meth:`AliyunSmsProvider.lookup` pages through
``QuerySendDetails`` for the phone number and the day of the attempt (Beijing time, and the
next day when the attempt was near midnight) and matches ``OutId``. ``SendStatus`` 3 is
delivered, 1 waiting for the receipt (sent), 2 failed (``ErrCode`` says why). Aliyun lists a
send in ``QuerySendDetails`` after a short delay; the delivery looks up only after a lease
has expired (tens of seconds), well after.

Delivery reports (``SmsReport``, HTTP batch push) are parsed by :func:`parse_receipts`.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import uuid
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta, timezone
from urllib.parse import quote

import httpx
import structlog

from services.notifications.domain.channels import Channel
from services.notifications.providers.base import (
    NEVER_SENT,
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
from shared.privacy import mask_phone

__all__ = [
    "PERMANENT_CODES",
    "RETRYABLE_CODES",
    "AliyunSmsProvider",
    "is_retryable",
    "parse_receipts",
    "percent_encode",
    "receipt_token",
    "sign",
    "string_to_sign",
    "verify_receipt_token",
]

log = structlog.get_logger(__name__)

PROVIDER = "aliyun"
API_VERSION = "2017-05-25"
REGION_ID = "cn-hangzhou"
_CHINA_TZ = timezone(timedelta(hours=8))  # SmsReport times are Beijing time, no zone given
_REPORT_TIME_FORMAT = "%Y-%m-%d %H:%M:%S"
QUERY_PAGE_SIZE = 50  # the most QuerySendDetails gives per page
QUERY_MAX_PAGES = 20
SEND_STATUS_FAILED, SEND_STATUS_DELIVERED = 2, 3

# Flow control, platform faults and nonce clashes: the same send may well pass later.
RETRYABLE_CODES = frozenset(
    {
        "isv.BUSINESS_LIMIT_CONTROL",  # per-number / per-template frequency limits
        "isv.DAY_LIMIT_CONTROL",  # console daily quota
        "isv.MONTH_LIMIT_CONTROL",  # console monthly quota
        "SignatureNonceUsed",
        "isp.SYSTEM_ERROR",
        "isp.GATEWAY_ERROR",
        "isp.UNKNOWN",
        "ServiceUnavailable",
        "InternalError",
    }
)
_RETRYABLE_PREFIXES = ("Throttling", "isp.")

# The request, the number, the template, the signature or the account is wrong: sending
# again cannot help, the next channel should be tried at once.
PERMANENT_CODES = frozenset(
    {
        "isv.MOBILE_NUMBER_ILLEGAL",
        "isv.MOBILE_COUNT_OVER_LIMIT",
        "isv.DOMESTIC_NUMBER_NOT_SUPPORTED",
        "isv.TEMPLATE_MISSING_PARAMETERS",
        "isv.INVALID_PARAMETERS",
        "isv.INVALID_JSON_PARAM",
        "isv.PARAM_LENGTH_LIMIT",
        "isv.PARAM_NOT_SUPPORT_URL",
        "isv.SMS_TEMPLATE_ILLEGAL",
        "isv.SMS_SIGNATURE_ILLEGAL",
        "isv.SMS_SIGN_ILLEGAL",
        "isv.SMS_SIGNATURE_SCENE_ILLEGAL",
        "isv.SIGN_STATE_ILLEGAL",
        "isv.SMS_CONTENT_ILLEGAL",
        "isv.BLACK_KEY_CONTROL_LIMIT",
        "isv.EXTEND_CODE_ERROR",
        "isv.DENY_IP_RANGE",
        "isv.AMOUNT_NOT_ENOUGH",
        "isv.OUT_OF_SERVICE",
        "isv.PRODUCT_UN_SUBSCRIPT",
        "isv.PRODUCT_UNSUBSCRIBE",
        "isv.ACCOUNT_NOT_EXISTS",
        "isv.ACCOUNT_ABNORMAL",
        "isp.RAM_PERMISSION_DENY",
        "InvalidAccessKeyId.NotFound",
        "InvalidAccessKeyId.Inactive",
        "SignatureDoesNotMatch",
        "IncompleteSignature",
        "InvalidTimeStamp.Expired",
        "InvalidTimeStamp.Format",
        "MissingParameter",
        "Forbidden.RAM",
    }
)


def is_retryable(code: str, http_status: int = 200) -> bool:
    """Whether a failed ``SendSms`` with this ``Code`` should be tried again later.

    Known permanent codes win; then the retryable list and families (``Throttling*``,
    ``isp.*``); an unknown code is retryable only when the HTTP status was a 5xx or 429.
    """
    if code in PERMANENT_CODES:
        return False
    if code in RETRYABLE_CODES or code.startswith(_RETRYABLE_PREFIXES):
        return True
    return http_status >= 500 or http_status == 429


def percent_encode(value: str) -> str:
    """RFC 3986 encoding of UTF-8 text as Aliyun POP wants it (``~`` kept, space ``%20``)."""
    return quote(value, safe="-_.~")


def string_to_sign(method: str, params: Mapping[str, str]) -> str:
    """``METHOD&%2F&percentEncode(canonicalized query)``, parameters sorted by name."""
    canonical = "&".join(
        f"{percent_encode(key)}={percent_encode(params[key])}"
        for key in sorted(params)
        if key != "Signature"
    )
    return f"{method.upper()}&{percent_encode('/')}&{percent_encode(canonical)}"


def sign(method: str, params: Mapping[str, str], secret: str) -> str:
    """The ``Signature`` parameter: base64(HMAC-SHA1(secret + "&", StringToSign))."""
    digest = hmac.new(
        f"{secret}&".encode(), string_to_sign(method, params).encode(), hashlib.sha1
    ).digest()
    return base64.b64encode(digest).decode("ascii")


RECEIPT_TOKEN_LABEL = b"careloop/notifications/aliyun-sms-receipts/v1"


def receipt_token(secret: str) -> str:
    """The ``?token=`` of the receipt callback URL: HMAC-SHA256(secret, a fixed label), hex.

    The secret itself never appears in a URL; changing it changes the token."""
    return hmac.new(secret.encode(), RECEIPT_TOKEN_LABEL, hashlib.sha256).hexdigest()


def verify_receipt_token(secret: str, given: str | None) -> bool:
    """Check the receipt callback's ``token``; an unset secret refuses all."""
    if not secret or not isinstance(given, str):
        return False
    return hmac.compare_digest(receipt_token(secret).encode(), given.encode("utf-8", "replace"))


class AliyunSmsProvider:
    """Sends one SMS per request through Aliyun ``SendSms``."""

    name = PROVIDER
    channel = Channel.SMS

    def __init__(
        self, settings: NotificationsSettings, *, client: httpx.AsyncClient | None = None
    ) -> None:
        self._endpoint = settings.aliyun_sms_endpoint
        self._access_key_id = settings.aliyun_access_key_id
        self._secret = settings.aliyun_access_key_secret
        self._sign_name = settings.aliyun_sms_sign_name
        self._owns_client = client is None
        self._client = client or httpx.AsyncClient(timeout=settings.provider_timeout_seconds)

    async def send(self, request: SendRequest) -> SendResult:
        """Sign and POST ``SendSms``; map the answer onto a result or a :class:`ProviderError`."""
        response = await self._post(request, self._params(request))
        return self._answer(request, response)

    async def lookup(self, request: SendRequest, since: datetime) -> Lookup:
        """The send with ``OutId`` = ``request.key`` to this number since ``since``, if any."""
        days = sorted({since.astimezone(_CHINA_TZ).date(), datetime.now(_CHINA_TZ).date()})
        for day in days:
            for page in range(1, QUERY_MAX_PAGES + 1):
                body = await self._query(request, day.strftime("%Y%m%d"), page)
                items = _details(body)
                found = [item for item in items if item.get("OutId") == request.key]
                if found:
                    return Lookup(known=True, result=self._detail(request, found[-1]))
                if len(items) < QUERY_PAGE_SIZE:
                    break
        return NEVER_SENT

    async def _query(self, request: SendRequest, day: str, page: int) -> dict[str, object]:
        params = {
            **self._common("QuerySendDetails"),
            "PhoneNumber": request.address,
            "SendDate": day,
            "PageSize": str(QUERY_PAGE_SIZE),
            "CurrentPage": str(page),
        }
        response = await self._post(request, params)
        body = _json_object(response) or {}
        code = body.get("Code")
        if code != "OK":
            status = response.status_code
            text = code if isinstance(code, str) and code else f"http_{status}"
            # a lookup that cannot be made now is tried again later, whatever the code
            raise self._failed(request, text, str(body.get("Message", "")), retryable=True)
        return body

    def _detail(self, request: SendRequest, item: dict[str, object]) -> SendResult | ProviderError:
        status = item.get("SendStatus")
        log.info("aliyun_sms.found", attempt_id=request.attempt_id, send_status=status)
        if status == SEND_STATUS_FAILED:
            code = str(item.get("ErrCode") or "failed")
            return ProviderError(PROVIDER, code, "undelivered (QuerySendDetails)", retryable=False)
        delivered = status == SEND_STATUS_DELIVERED
        return SendResult(SendStatus.DELIVERED if delivered else SendStatus.SENT, PROVIDER, None)

    async def _post(self, request: SendRequest, params: dict[str, str]) -> httpx.Response:
        params["Signature"] = sign("POST", params, self._secret)
        try:
            return await self._client.post(self._endpoint, data=params)
        except httpx.TransportError as exc:
            timeout = isinstance(exc, httpx.TimeoutException)
            error = self._failed(
                request,
                "timeout" if timeout else "connection_error",
                type(exc).__name__,
                retryable=True,
                in_doubt=may_have_arrived(exc),
            )
            raise error from exc

    async def aclose(self) -> None:
        if self._owns_client:
            await self._client.aclose()

    def _params(self, request: SendRequest) -> dict[str, str]:
        if not request.provider_template:
            raise template_not_configured(PROVIDER, request.kind)
        rendered = request.rendered
        template_param = rendered.fields if rendered.fields else {"content": rendered.body}
        return {
            **self._common("SendSms"),
            "PhoneNumbers": request.address,
            "SignName": self._sign_name,
            "TemplateCode": request.provider_template,
            "TemplateParam": json.dumps(template_param, ensure_ascii=False, separators=(",", ":")),
            "OutId": request.key,
        }

    def _common(self, action: str) -> dict[str, str]:
        return {
            "AccessKeyId": self._access_key_id,
            "Action": action,
            "Format": "JSON",
            "RegionId": REGION_ID,
            "SignatureMethod": "HMAC-SHA1",
            "SignatureNonce": str(uuid.uuid4()),
            "SignatureVersion": "1.0",
            "Timestamp": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
            "Version": API_VERSION,
        }

    def _answer(self, request: SendRequest, response: httpx.Response) -> SendResult:
        body = _json_object(response) or {}
        code = body.get("Code")
        status = response.status_code
        if not isinstance(code, str) or not code:
            retryable = is_retryable("", status)
            raise self._failed(request, f"http_{status}", "no Code in answer", retryable=retryable)
        if code != "OK":
            message = str(body.get("Message", ""))
            raise self._failed(request, code, message, retryable=is_retryable(code, status))
        biz_id = body.get("BizId")
        provider_message_id = str(biz_id) if biz_id else None
        log.info(
            "aliyun_sms.sent",
            attempt_id=request.attempt_id,
            phone=mask_phone(request.address),
            biz_id=provider_message_id,
        )
        return SendResult(SendStatus.SENT, PROVIDER, provider_message_id)

    def _failed(
        self,
        request: SendRequest,
        code: str,
        message: str,
        *,
        retryable: bool,
        in_doubt: bool = False,
    ) -> ProviderError:
        log.warning(
            "aliyun_sms.failed",
            attempt_id=request.attempt_id,
            phone=mask_phone(request.address),
            code=code,
            retryable=retryable,
            in_doubt=in_doubt,
        )
        return ProviderError(PROVIDER, code, message, retryable=retryable, in_doubt=in_doubt)


def _json_object(response: httpx.Response) -> dict[str, object] | None:
    try:
        body = response.json()
    except ValueError:
        return None
    return body if isinstance(body, dict) else None


def _details(body: dict[str, object]) -> list[dict[str, object]]:
    """The ``SmsSendDetailDTO`` items of a ``QuerySendDetails`` answer (one may be bare)."""
    holder = body.get("SmsSendDetailDTOs")
    items = holder.get("SmsSendDetailDTO") if isinstance(holder, dict) else None
    if isinstance(items, dict):
        items = [items]
    return [item for item in items if isinstance(item, dict)] if isinstance(items, list) else []


def parse_receipts(body: object) -> list[Receipt]:
    """Receipts from one ``SmsReport`` push (a JSON array); malformed items are skipped."""
    items = body if isinstance(body, list) else [body] if isinstance(body, dict) else []
    receipts = [_receipt(item) for item in items]
    return [receipt for receipt in receipts if receipt is not None]


def _receipt(item: object) -> Receipt | None:
    if not isinstance(item, dict):
        return None
    biz_id = (_as_text(item.get("biz_id")) or "").strip()
    success = _as_bool(item.get("success"))
    if not biz_id or success is None:
        return None
    return Receipt(
        provider=PROVIDER,
        provider_message_id=biz_id,
        delivered=success,
        error_code=None if success else _as_text(item.get("err_code")),
        error_message=None if success else _as_text(item.get("err_msg")),
        reported_at=_report_time(item.get("report_time")),
    )


def _as_bool(value: object) -> bool | None:
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.lower() in ("true", "false"):
        return value.lower() == "true"
    return None


def _as_text(value: object) -> str | None:
    if isinstance(value, bool) or not isinstance(value, str | int):
        return None
    return str(value) or None


def _report_time(value: object) -> datetime | None:
    if not isinstance(value, str):
        return None
    try:
        return datetime.strptime(value, _REPORT_TIME_FORMAT).replace(tzinfo=_CHINA_TZ)
    except ValueError:
        return None
