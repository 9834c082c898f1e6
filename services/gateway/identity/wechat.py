"""The mini-program login: exchange a ``wx.login`` code for the user's openid.

WeChat's ``code2session`` (GET ``/sns/jscode2session``) answers ``openid``,
``session_key`` and, for apps bound to an open platform account, ``unionid``; errors come
as ``errcode``/``errmsg`` with HTTP 200. The ``session_key`` never leaves this module: we
keep no copy. Off unless ``wechat_appid`` and ``wechat_secret`` are configured.
"""

from __future__ import annotations

from dataclasses import dataclass

import httpx
import structlog

from shared.problems import NotFound, ServiceUnavailable, TooManyRequests, Unauthorized

log = structlog.get_logger(__name__)

INVALID_CODE = {40029, 40163}  # invalid code, code already used
RATE_LIMITED = {45011}
BUSY = {-1}


@dataclass(frozen=True)
class WechatUser:
    openid: str
    unionid: str | None


class WechatLogin:
    def __init__(self, client: httpx.AsyncClient, appid: str, secret: str, base: str) -> None:
        self.client = client
        self.appid = appid
        self.secret = secret
        self.base = base.rstrip("/")

    @property
    def enabled(self) -> bool:
        return bool(self.appid and self.secret)

    async def code_to_user(self, code: str) -> WechatUser:
        if not self.enabled:
            raise NotFound(
                "wechat_login_disabled",
                "WeChat login is not configured on this installation",
                detail_zh="未开通微信登录",
            )
        params = {
            "appid": self.appid,
            "secret": self.secret,
            "js_code": code,
            "grant_type": "authorization_code",
        }
        try:
            response = await self.client.get(
                f"{self.base}/sns/jscode2session", params=params, timeout=5.0
            )
            body = response.json()
        except (httpx.HTTPError, ValueError) as exc:
            log.warning("wechat.code2session_unreachable", error=type(exc).__name__)
            raise _busy() from exc
        errcode = int(body.get("errcode") or 0)
        if errcode == 0 and isinstance(body.get("openid"), str) and body["openid"]:
            unionid = body.get("unionid")
            return WechatUser(body["openid"], unionid if isinstance(unionid, str) else None)
        log.info("wechat.code2session_refused", errcode=errcode)
        if errcode in INVALID_CODE:
            raise Unauthorized(
                "wechat_code_invalid",
                "the WeChat login code is invalid or was already used",
                detail_zh="微信登录凭证无效，请重试",
            )
        if errcode in RATE_LIMITED:
            raise TooManyRequests(
                "wechat_rate_limited",
                "WeChat refused: too many logins",
                retry_after=5,
                detail_zh="登录过于频繁，请稍后再试",
            )
        raise _busy()


def _busy() -> ServiceUnavailable:
    return ServiceUnavailable(
        "wechat_unavailable",
        "WeChat login cannot be reached right now",
        retry_after=3,
        detail_zh="微信登录暂不可用，请稍后再试",
    )
