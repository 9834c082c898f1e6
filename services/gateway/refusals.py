"""The front door's refusals as RFC 9457 problems: 429 for limits, the slow lane and a
surge, 401 for a token found revoked or ended by the front door's script."""

from __future__ import annotations

from services.gateway.domain.endpoints import EndpointClass
from shared.problems import TooManyRequests, Unauthorized
from shared.ratelimit import Decision

_MESSAGES = {
    EndpointClass.LOGIN_CODE: ("Too many login code requests", "验证码请求过于频繁"),
    EndpointClass.LOGIN: ("Too many sign-in attempts", "登录尝试过于频繁"),
    EndpointClass.BOOKING: ("Too many booking requests right now", "当前预约请求过多"),
    EndpointClass.APPOINTMENT: ("Too many appointment changes", "预约操作过于频繁"),
}
_DEFAULT_MESSAGE = ("Too many requests", "请求过于频繁")
_SLOW_LANE_MESSAGE = (
    "Automated booking is slowed down during slot release",
    "放号期间预约过快，已限速",
)


def refusal(
    endpoint_class: EndpointClass, decision: Decision, *, slow_lane: bool
) -> TooManyRequests:
    """The 429 problem for a refused ``decision`` (``slow_lane`` for flagged bookers)."""
    seconds = max(1, decision.retry_after)
    code, (en, zh) = "rate_limited", _MESSAGES.get(endpoint_class, _DEFAULT_MESSAGE)
    if slow_lane:
        code, (en, zh) = "slow_lane", _SLOW_LANE_MESSAGE
    return TooManyRequests(
        code,
        f"{en}; retry in {seconds} {'second' if seconds == 1 else 'seconds'}.",
        detail_zh=f"{zh}，请 {seconds} 秒后再试。",
        retry_after=seconds,
        extra={"limit": decision.limit.name if decision.limit else endpoint_class.value},
    )


def overloaded(seconds: int) -> TooManyRequests:
    """The 429 of a front door whose Redis answers too late (a surge): retry shortly."""
    unit = "second" if seconds == 1 else "seconds"
    return TooManyRequests(
        "overloaded",
        f"The service is very busy right now; retry in {seconds} {unit}.",
        detail_zh=f"当前访问人数过多，请 {seconds} 秒后再试。",
        retry_after=seconds,
    )


def token_refused(kind: str) -> Unauthorized:
    """401 for a token found logged out (``revoked``) or issued before its account's
    logins were ended (``ended``): the problems the separate checks used to raise."""
    if kind == "revoked":
        return Unauthorized(
            "token_invalid",
            "The access token is invalid. Please sign in again.",
            bearer_error="invalid_token",
            detail_zh="登录凭证无效，请重新登录。",
        )
    return Unauthorized(
        "token_revoked",
        "this session has ended; please sign in again",
        detail_zh="登录已失效，请重新登录。",
    )
