"""Local stand-ins for the SMS and WeChat provider APIs, to serve with ``tests.support.server``.

Each class holds its state and builds a small FastAPI app (``.app``) that speaks the
provider's side of the protocol: it checks credentials and signatures the way the real
service does, records what it accepted, and can be told to fail the next sends.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import json
import re
import secrets
from collections import deque
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta, timezone
from typing import Any
from urllib.parse import parse_qsl, quote

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, PlainTextResponse, Response

__all__ = [
    "ALIYUN_KEY_ID",
    "ALIYUN_KEY_SECRET",
    "ALIYUN_SIGN_NAME",
    "WECHAT_APP_ID",
    "WECHAT_APP_SECRET",
    "AliyunSend",
    "AliyunSmsServer",
    "WechatSend",
    "WechatServer",
    "aliyun_signature",
]

ALIYUN_KEY_ID = "test-key-id"
ALIYUN_KEY_SECRET = "test-key-secret"
ALIYUN_SIGN_NAME = "CareLoop"
WECHAT_APP_ID = "wx-test-app"
WECHAT_APP_SECRET = "wx-test-secret"

_ALIYUN_COMMON = (
    "AccessKeyId",
    "Action",
    "Format",
    "SignatureMethod",
    "SignatureNonce",
    "SignatureVersion",
    "Timestamp",
    "Version",
    "Signature",
)
_ALIYUN_SEND = ("PhoneNumbers", "SignName", "TemplateCode")
_ALIYUN_QUERY = ("PhoneNumber", "SendDate", "PageSize", "CurrentPage")
_CHINA = timezone(timedelta(hours=8))
_MAINLAND_MOBILE = re.compile(r"(\+?86)?1[3-9][0-9]{9}")


def aliyun_signature(method: str, params: dict[str, str], secret: str) -> str:
    """The server's own computation of an RPC-style HMAC-SHA1 signature."""

    def enc(text: str) -> str:
        return quote(text, safe="~")  # quote never escapes letters, digits and "_.-"

    pairs = sorted((k, v) for k, v in params.items() if k != "Signature")
    canonical = "&".join(f"{enc(k)}={enc(v)}" for k, v in pairs)
    to_sign = "&".join((method, enc("/"), enc(canonical)))
    mac = hmac.new((secret + "&").encode(), to_sign.encode(), hashlib.sha1)
    return base64.b64encode(mac.digest()).decode()


@dataclass(frozen=True)
class AliyunSend:
    """One ``SendSms`` the server accepted."""

    phone: str
    sign_name: str
    template_code: str
    params: dict[str, str]
    out_id: str | None
    biz_id: str
    method: str
    sent_at: datetime = field(default_factory=lambda: datetime.now(_CHINA))


@dataclass(frozen=True)
class _Failure:
    code: str | None  # None: a bare HTTP error page without JSON
    status: int
    delay: float = 0.0


class AliyunSmsServer:
    """dysmsapi ``SendSms`` and ``QuerySendDetails``: verifies the AccessKeyId, signature,
    nonce and parameters. Like Aliyun, it does not deduplicate sends by ``OutId``."""

    def __init__(
        self,
        access_key_id: str = ALIYUN_KEY_ID,
        access_key_secret: str = ALIYUN_KEY_SECRET,
        sign_name: str = ALIYUN_SIGN_NAME,
    ) -> None:
        self.access_key_id = access_key_id
        self.access_key_secret = access_key_secret
        self.sign_name = sign_name
        self.reset()
        self.app = FastAPI()
        self.app.add_api_route("/", self._handle, methods=["GET", "POST"])

    def reset(self) -> None:
        """Forget every send, refusal and pending failure (between tests)."""
        self.sends: list[AliyunSend] = []
        self.requests = 0
        self.refused: list[str] = []  # codes answered for invalid requests
        self.queries = 0  # QuerySendDetails requests answered
        self._nonces: set[str] = set()
        self._next: deque[_Failure] = deque()
        self._late: deque[float] = deque()

    def fail_next(self, count: int, code: str | None, *, status: int = 200) -> None:
        """Answer the next ``count`` valid sends with ``code`` (or a bare ``status`` page)."""
        self._next.extend(_Failure(code, status) for _ in range(count))

    def delay_next(self, count: int, seconds: float) -> None:
        """Accept the next ``count`` valid sends, but only after ``seconds``."""
        self._next.extend(_Failure("OK", 200, seconds) for _ in range(count))

    def answer_late(self, count: int, seconds: float) -> None:
        """Accept the next ``count`` valid sends at once (the SMS goes out), but answer only
        after ``seconds``: a caller killed meanwhile never learns it was sent."""
        self._late.extend(seconds for _ in range(count))

    async def _handle(self, request: Request) -> Response:
        self.requests += 1
        params = dict(request.query_params)
        if request.method == "POST":
            params.update(parse_qsl((await request.body()).decode(), keep_blank_values=True))
        refusal = self._check(request.method, params)
        if refusal is not None:
            self.refused.append(refusal[1])
            return _aliyun_answer(refusal[0], refusal[1], refusal[2])
        if params["Action"] == "QuerySendDetails":
            return self._query(params)
        if self._late:
            answer = self._accept(request.method, params)
            await asyncio.sleep(self._late.popleft())
            return answer
        failure = self._next.popleft() if self._next else _Failure("OK", 200)
        await asyncio.sleep(failure.delay)
        if failure.delay and await request.is_disconnected():
            return Response(status_code=499)  # the caller gave up: record nothing
        if failure.code is None:
            return PlainTextResponse("upstream unavailable", status_code=failure.status)
        if failure.code != "OK":
            return _aliyun_answer(failure.status, failure.code, "injected failure")
        return self._accept(request.method, params)

    def _check(self, method: str, params: dict[str, str]) -> tuple[int, str, str] | None:
        """The first reason to refuse the request, as (HTTP status, Code, Message)."""
        query = params.get("Action") == "QuerySendDetails"
        own = _ALIYUN_QUERY if query else _ALIYUN_SEND
        missing = [name for name in (*_ALIYUN_COMMON, *own) if not params.get(name)]
        if missing:
            return 400, "MissingParameter", f"missing {missing[0]}"
        if params["AccessKeyId"] != self.access_key_id:
            return 404, "InvalidAccessKeyId.NotFound", "Specified access key is not found."
        expected = aliyun_signature(method, params, self.access_key_secret)
        if not secrets.compare_digest(expected, params["Signature"]):
            return 400, "SignatureDoesNotMatch", "Specified signature is not matched."
        if params["SignatureNonce"] in self._nonces:
            return 400, "SignatureNonceUsed", "Specified signature nonce was used already."
        self._nonces.add(params["SignatureNonce"])
        fixed = {
            "Action": "QuerySendDetails" if query else "SendSms",
            "Version": "2017-05-25",
            "Format": "JSON",
            "SignatureMethod": "HMAC-SHA1",
            "SignatureVersion": "1.0",
            "RegionId": "cn-hangzhou",
        }
        wrong = [name for name, value in fixed.items() if params.get(name) != value]
        if wrong:
            return 400, "InvalidParameter", f"unexpected {wrong[0]}"
        return self._check_query(params) if query else self._check_send(params)

    def _check_query(self, params: dict[str, str]) -> tuple[int, str, str] | None:
        if not re.fullmatch(r"[0-9]{8}", params["SendDate"]):
            return 200, "isv.INVALID_PARAMETERS", "SendDate must be yyyyMMdd"
        if not params["PageSize"].isdigit() or not 1 <= int(params["PageSize"]) <= 50:
            return 200, "isv.INVALID_PARAMETERS", "PageSize must be 1 to 50"
        if not params["CurrentPage"].isdigit() or int(params["CurrentPage"]) < 1:
            return 200, "isv.INVALID_PARAMETERS", "CurrentPage must be 1 or more"
        return None

    def _query(self, params: dict[str, str]) -> Response:
        """The sends to one number on one day (Beijing time), a page of them."""
        self.queries += 1
        day = datetime.strptime(params["SendDate"], "%Y%m%d").date()
        matching = [
            s for s in self.sends if s.phone == params["PhoneNumber"] and s.sent_at.date() == day
        ]
        size, page = int(params["PageSize"]), int(params["CurrentPage"])
        items = [
            {
                "PhoneNum": s.phone,
                "SendStatus": 3,
                "ErrCode": "DELIVERED",
                "TemplateCode": s.template_code,
                "Content": json.dumps(s.params, ensure_ascii=False),
                "SendDate": s.sent_at.strftime("%Y-%m-%d %H:%M:%S"),
                "ReceiveDate": s.sent_at.strftime("%Y-%m-%d %H:%M:%S"),
                "OutId": s.out_id or "",
            }
            for s in matching[(page - 1) * size : page * size]
        ]
        body = {
            "Code": "OK",
            "Message": "OK",
            "RequestId": secrets.token_hex(8),
            "TotalCount": len(matching),
            "SmsSendDetailDTOs": {"SmsSendDetailDTO": items},
        }
        return JSONResponse(body)

    def _check_send(self, params: dict[str, str]) -> tuple[int, str, str] | None:
        try:
            at = datetime.strptime(params["Timestamp"], "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC)
        except ValueError:
            return 400, "InvalidTimeStamp.Format", "Specified time stamp is not valid."
        if abs(datetime.now(UTC) - at) > timedelta(minutes=15):
            return 400, "InvalidTimeStamp.Expired", "Specified time stamp is expired."
        if not _MAINLAND_MOBILE.fullmatch(params["PhoneNumbers"]):
            return 200, "isv.MOBILE_NUMBER_ILLEGAL", "invalid mobile number"
        if params["SignName"] != self.sign_name:
            return 200, "isv.SMS_SIGNATURE_ILLEGAL", "unknown sign name"
        template_param = _json_or_none(params.get("TemplateParam", "{}"))
        if not isinstance(template_param, dict) or not all(
            isinstance(v, str) for v in template_param.values()
        ):
            return 200, "isv.INVALID_JSON_PARAM", "TemplateParam must map names to strings"
        return None

    def _accept(self, method: str, params: dict[str, str]) -> Response:
        biz_id = f"{900000000000 + len(self.sends)}^0"
        self.sends.append(
            AliyunSend(
                phone=params["PhoneNumbers"],
                sign_name=params["SignName"],
                template_code=params["TemplateCode"],
                params=json.loads(params.get("TemplateParam", "{}")),
                out_id=params.get("OutId"),
                biz_id=biz_id,
                method=method,
            )
        )
        return JSONResponse({"Code": "OK", "Message": "OK", "BizId": biz_id, "RequestId": "r"})


def _aliyun_answer(status: int, code: str, message: str) -> JSONResponse:
    body = {"Code": code, "Message": message, "RequestId": secrets.token_hex(8)}
    return JSONResponse(body, status_code=status)


def _json_or_none(text: str) -> Any:
    try:
        return json.loads(text)
    except ValueError:
        return None


@dataclass(frozen=True)
class WechatSend:
    """One subscription message the server accepted."""

    touser: str
    template_id: str
    page: str | None
    data: dict[str, Any]
    miniprogram_state: str | None
    lang: str | None
    msgid: int
    access_token: str


class WechatServer:
    """``POST /cgi-bin/stable_token`` and ``POST /cgi-bin/message/subscribe/send``."""

    def __init__(self, app_id: str = WECHAT_APP_ID, app_secret: str = WECHAT_APP_SECRET) -> None:
        self.app_id = app_id
        self.app_secret = app_secret
        self.reset()
        self.app = FastAPI()
        self.app.add_api_route("/cgi-bin/stable_token", self._token, methods=["POST"])
        self.app.add_api_route("/cgi-bin/message/subscribe/send", self._send, methods=["POST"])

    def reset(self) -> None:
        """Forget tokens, sends and pending answers; back to default timings (between tests)."""
        self.expires_in = 7200  # seconds, as issued with each token
        self.token_requests = 0
        self.token_delay = 0.0  # seconds each token request takes
        self.send_requests = 0
        self.send_delay = 0.0
        self.sends: list[WechatSend] = []
        self.current_token: str | None = None
        self._refused_tokens: dict[str, int] = {}  # revoked / expired token -> errcode
        self._token_answers: deque[int] = deque()
        self._send_answers: deque[tuple[int, int]] = deque()  # (errcode, HTTP status)

    def invalidate_token(self, errcode: int = 40001) -> None:
        """Make the current token fail sends with ``errcode`` (40001 revoked, 42001 expired)."""
        if self.current_token is not None:
            self._refused_tokens[self.current_token] = errcode
            self.current_token = None

    def answer_next_sends(self, count: int, errcode: int, *, status: int = 200) -> None:
        """Answer the next ``count`` sends that carry a valid token with ``errcode``."""
        self._send_answers.extend((errcode, status) for _ in range(count))

    def answer_next_tokens(self, count: int, errcode: int) -> None:
        """Answer the next ``count`` valid token requests with ``errcode``."""
        self._token_answers.extend(errcode for _ in range(count))

    async def _token(self, request: Request) -> Response:
        self.token_requests += 1
        await asyncio.sleep(self.token_delay)
        body = _json_or_none((await request.body()).decode() or "null")
        if not isinstance(body, dict) or body.get("grant_type") != "client_credential":
            return _wechat_error(40002, "invalid grant_type")
        if body.get("appid") != self.app_id:
            return _wechat_error(40013, "invalid appid")
        if body.get("secret") != self.app_secret:
            return _wechat_error(40125, "invalid appsecret")
        if self._token_answers:
            return _wechat_error(self._token_answers.popleft(), "injected failure")
        if self.current_token is None or body.get("force_refresh") is True:
            self.invalidate_token()
            self.current_token = secrets.token_urlsafe(24)
        return JSONResponse({"access_token": self.current_token, "expires_in": self.expires_in})

    async def _send(self, request: Request) -> Response:
        self.send_requests += 1
        await asyncio.sleep(self.send_delay)
        token = request.query_params.get("access_token")
        if not token:
            return _wechat_error(41001, "access_token missing")
        if token != self.current_token:
            code = self._refused_tokens.get(token, 40001)
            return _wechat_error(code, "invalid credential, access_token is invalid or not latest")
        if self._send_answers:
            errcode, status = self._send_answers.popleft()
            if status != 200:
                return PlainTextResponse("bad gateway", status_code=status)
            return _wechat_error(errcode, "injected failure")
        body = _json_or_none((await request.body()).decode() or "null")
        refusal = _check_send_body(body)
        if refusal is not None:
            return _wechat_error(*refusal)
        return self._accept(body, token)

    def _accept(self, body: dict[str, Any], token: str) -> Response:
        msgid = 3248682510344192008 + len(self.sends)  # beyond 2**53, as WeChat's are
        self.sends.append(
            WechatSend(
                touser=body["touser"],
                template_id=body["template_id"],
                page=body.get("page"),
                data=body["data"],
                miniprogram_state=body.get("miniprogram_state"),
                lang=body.get("lang"),
                msgid=msgid,
                access_token=token,
            )
        )
        return JSONResponse({"errcode": 0, "errmsg": "ok", "msgid": msgid})


def _check_send_body(body: Any) -> tuple[int, str] | None:
    """The errcode and errmsg WeChat gives a malformed send body, or None if it is fine."""
    if not isinstance(body, dict):
        return 47001, "data format error"
    if not isinstance(body.get("touser"), str) or not body["touser"]:
        return 40003, "invalid openid"
    if not isinstance(body.get("template_id"), str) or not body["template_id"]:
        return 40037, "invalid template_id"
    data = body.get("data")
    if not isinstance(data, dict) or not all(
        isinstance(v, dict) and isinstance(v.get("value"), str) and v["value"]
        for v in data.values()
    ):
        return 47003, "argument invalid! data.value is empty or not a string"
    if body.get("miniprogram_state", "formal") not in ("developer", "trial", "formal"):
        return 47003, "argument invalid! miniprogram_state"
    if body.get("lang", "zh_CN") not in ("zh_CN", "en_US", "zh_HK", "zh_TW"):
        return 47003, "argument invalid! lang"
    return None


def _wechat_error(errcode: int, errmsg: str) -> JSONResponse:
    return JSONResponse({"errcode": errcode, "errmsg": f"{errmsg} rid: {secrets.token_hex(4)}"})
