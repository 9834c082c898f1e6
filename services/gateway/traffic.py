"""Rate-limit policy of the gateway: endpoint classes, budgets, and a slow lane for bots.

Each request falls into an :class:`EndpointClass` (:mod:`services.gateway.domain.endpoints`) and
is counted atomically, all or nothing (:mod:`shared.ratelimit`), per client
address, per account (token subject), per class and per request field (the phone of a
login-code request). Booking has budgets of its own: a release-time surge gets fast 429s
with ``Retry-After``; cancelling and checking in spend the ``appointment`` budgets.

Slow lane (OWASP API6): inside a release window a booking client that acts like a bot
(missing or scripted User-Agent, or attempts faster than ``bot_account_burst`` /
``bot_ip_burst``) is flagged in Redis until the window ends and gets the small
``slow_lane`` budget and 429 ``slow_lane``. Nothing is flagged outside windows; staff
never. If Redis cannot be asked, ``fail_closed`` classes get a 503, others pass.
"""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
import math
import re
import time as monotonic
from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, datetime, time, timedelta
from typing import Self
from zoneinfo import ZoneInfo

import structlog
from prometheus_client import CollectorRegistry, Counter
from pydantic import BaseModel, ConfigDict, Field, model_validator
from redis.asyncio import Redis

from services.gateway.domain.endpoints import EndpointClass, classify
from shared.problems import ServiceUnavailable, TooManyRequests
from shared.ratelimit import (
    Budget,
    Decision,
    Limit,
    LimiterUnavailable,
    RateLimiter,
    client_key,
    parse_address,
)

__all__ = ["ClassLimits", "EndpointClass", "RateLimitSettings", "TrafficPolicy", "classify"]

log = structlog.get_logger(__name__)


def _b(capacity: int, window_seconds: float) -> Budget:
    return Budget(capacity=capacity, window_seconds=window_seconds)


class ClassLimits(BaseModel):
    """The budgets of one endpoint class; ``None`` leaves a dimension unlimited."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    per_ip: Budget | None = None  # per client address (IPv6: per /ipv6_prefix network)
    per_account: Budget | None = None  # per token subject, authenticated calls only
    per_class: Budget | None = None  # all clients together: sheds load before it queues
    per_key: dict[str, Budget] = Field(default_factory=dict)  # request fields, e.g. phone


SCRIPTED_AGENTS = (  # matched case-insensitively anywhere in the User-Agent
    *("curl", "wget", "python-requests", "python-urllib", "httpx", "aiohttp", "okhttp", "java/"),
    *("go-http-client", "apache-httpclient", "libwww-perl", "node-fetch", "axios", "undici"),
    *("scrapy", "postmanruntime", "headless", "phantomjs", "selenium", "puppeteer", "playwright"),
)
FAIL_CLOSED = (EndpointClass.BOOKING, EndpointClass.LOGIN_CODE, EndpointClass.LOGIN)
_HHMM = re.compile(r"^([01]\d|2[0-3]):[0-5]\d$")


class RateLimitSettings(BaseModel):
    """Gateway rate limits (``GatewaySettings.rate_limits``). Per-address budgets are
    generous (carriers put many people behind one address); per-account ones bind."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    enabled: bool = True
    login_code: ClassLimits = ClassLimits(per_ip=_b(30, 3600), per_key={"phone": _b(5, 900)})
    login: ClassLimits = ClassLimits(
        per_ip=_b(60, 600), per_key={"phone": _b(10, 600), "username": _b(10, 600)}
    )
    booking: ClassLimits = ClassLimits(
        per_ip=_b(120, 60), per_account=_b(10, 60), per_class=_b(2000, 1)
    )
    appointment: ClassLimits = ClassLimits(per_ip=_b(300, 60), per_account=_b(30, 60))
    write: ClassLimits = ClassLimits(per_ip=_b(300, 60), per_account=_b(60, 60))
    read: ClassLimits = ClassLimits(per_ip=_b(1200, 60), per_account=_b(300, 60))
    stream: ClassLimits = ClassLimits(per_ip=_b(60, 60), per_account=_b(10, 60))
    staff_account_multiplier: int = Field(10, ge=1)  # agents book for many patients
    exempt_networks: list[str] = Field(default_factory=list)  # CIDRs: no per-address limits
    ipv6_prefix: int = Field(64, ge=32, le=128)
    fail_closed: list[EndpointClass] = Field(default_factory=lambda: list(FAIL_CLOSED))
    unavailable_retry_after_seconds: int = Field(5, ge=1)
    redis_timeout_seconds: float = Field(0.5, gt=0, le=10)

    # the slow lane for bots during slot releases
    release_windows: list[str] = Field(default_factory=lambda: ["07:00", "08:00", "15:00"])
    release_window_minutes: int = Field(10, ge=1, le=720)
    timezone: str = "Asia/Shanghai"
    bot_account_burst: Budget = _b(5, 3)  # booking faster than this flags the account
    bot_ip_burst: Budget = _b(60, 3)  # ... or the address (high: CGNAT)
    bot_user_agents: list[str] = Field(default_factory=lambda: list(SCRIPTED_AGENTS))
    slow_lane: Budget = _b(2, 60)  # booking budget of a flagged account or address

    @model_validator(mode="after")
    def _check(self) -> Self:
        for text in self.release_windows:
            if not _HHMM.match(text):
                raise ValueError(f"release window {text!r} is not HH:MM")
        try:
            ZoneInfo(self.timezone)
        except (KeyError, ValueError) as exc:  # ZoneInfoNotFoundError is a KeyError
            raise ValueError(f"unknown time zone {self.timezone!r}") from exc
        for net in self.exempt_networks:
            ipaddress.ip_network(net)  # strict: host bits must be zero
        if self.slow_lane.capacity < 1:
            raise ValueError("the slow lane needs a capacity of at least 1")
        return self

    def release_window_at(self, now: datetime) -> tuple[datetime, datetime] | None:
        starts = [time.fromisoformat(t) for t in self.release_windows]
        return release_window(now, starts, self.release_window_minutes, ZoneInfo(self.timezone))


def release_window(
    now: datetime, starts: Sequence[time], minutes: int, zone: ZoneInfo
) -> tuple[datetime, datetime] | None:
    """The (start, end) in UTC of the release window holding aware ``now``, else None.

    Windows start at local wall times every day and last ``minutes`` of real time, so a
    window opening at 23:55 still holds at 00:04 the next day.
    """
    if now.tzinfo is None:
        raise ValueError("now must be timezone-aware")
    today = now.astimezone(zone).date()
    for day in (today, today - timedelta(days=1)):
        for at in starts:
            start = datetime.combine(day, at, tzinfo=zone).astimezone(UTC)
            end = start + timedelta(minutes=minutes)
            if start <= now < end:
                return start, end
    return None


def is_scripted_user_agent(user_agent: str | None, markers: Sequence[str]) -> bool:
    """True for a missing User-Agent or one naming an HTTP library or headless browser."""
    agent = (user_agent or "").strip().lower()
    return not agent or any(marker.lower() in agent for marker in markers)


def is_exempt(settings: RateLimitSettings, client_ip: str | None) -> bool:
    """Whether the address is in ``exempt_networks`` (no per-address limits, no slow lane)."""
    address = parse_address(client_ip)
    nets = settings.exempt_networks
    return address is not None and any(address in ipaddress.ip_network(n) for n in nets)


def limits_for(
    settings: RateLimitSettings,
    *,
    endpoint_class: EndpointClass,
    client_ip: str | None,
    account_id: str | None,
    extra_keys: Mapping[str, str] | None = None,
    is_staff: bool = False,
) -> list[Limit]:
    """The limits one request counts against (``extra_keys`` values are used as given)."""
    rules: ClassLimits = getattr(settings, endpoint_class.value)
    name = endpoint_class.value
    wanted = [(f"{name}.all", "all", rules.per_class, 1)]
    if not is_exempt(settings, client_ip):
        wanted.append((f"{name}.ip", client_key(client_ip, settings.ipv6_prefix), rules.per_ip, 1))
    if account_id:
        multiplier = settings.staff_account_multiplier if is_staff else 1
        wanted.append((f"{name}.account", account_id, rules.per_account, multiplier))
    for field, value in sorted((extra_keys or {}).items()):
        if value:
            wanted.append((f"{name}.{field}", value, rules.per_key.get(field), 1))
    return [lim for n, key, budget, m in wanted if budget for lim in budget.limits(n, key, m)]


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


class TrafficPolicy:
    """The per-request entry point: :meth:`check` raises a problem or lets a request pass.

    ``hash_key`` keys the HMAC that makes request fields (phone, username) limit keys, so
    they are never in Redis in clear. ``clock`` decides release windows (tests inject
    one); ``registry`` adds a Prometheus counter.
    """

    def __init__(
        self,
        redis: Redis,
        settings: RateLimitSettings,
        *,
        prefix: str = "",
        hash_key: bytes = b"",
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
        registry: CollectorRegistry | None = None,
    ) -> None:
        self.redis = redis
        self.settings = settings
        self.limiter = RateLimiter(redis, prefix, timeout_seconds=settings.redis_timeout_seconds)
        self._flag_prefix = f"{prefix}botflag:"
        self._hash_key = hash_key
        self._clock = clock
        self._warned_at = -math.inf
        self._events: Counter | None = None
        if registry is not None:
            self._events = Counter(
                "careloop_gateway_rate_limit_events_total",
                "Refusals (rate_limited, slow_lane) and slow-lane flags (flagged_<reason>)",
                ["endpoint_class", "event"],
                registry=registry,
            )

    async def check(
        self,
        *,
        method: str,
        path: str,
        client_ip: str | None,
        account_id: str | None,
        user_agent: str | None,
        body_keys: Mapping[str, str] | None = None,
        is_staff: bool = False,
    ) -> EndpointClass:
        """Count the request; raise 429 (``rate_limited``/``slow_lane``) or 503 to refuse."""
        endpoint, s = classify(method, path), self.settings
        if not s.enabled:
            return endpoint
        extra = {k: self._digest(k, v) for k, v in (body_keys or {}).items() if v}
        limits = limits_for(
            s,
            endpoint_class=endpoint,
            client_ip=client_ip,
            account_id=account_id,
            extra_keys=extra,
            is_staff=is_staff,
        )
        lane: list[Limit] = []
        try:
            if endpoint is EndpointClass.BOOKING and not (is_staff or is_exempt(s, client_ip)):
                lane = await self._slow_lane(client_ip, account_id, user_agent)
            decision = await self.limiter.hit(limits + lane)
        except LimiterUnavailable as exc:
            self._unavailable(endpoint, exc)
            return endpoint
        if not decision.allowed:
            problem = refusal(endpoint, decision, slow_lane=bool(lane))
            if self._events is not None:
                self._events.labels(endpoint.value, problem.code).inc()
            raise problem
        return endpoint

    def _digest(self, field: str, value: str) -> str:
        material = f"ratelimit:{field}:{value.strip().lower()}".encode()
        return hmac.new(self._hash_key, material, hashlib.sha256).hexdigest()[:32]

    async def _slow_lane(
        self, client_ip: str | None, account_id: str | None, user_agent: str | None
    ) -> list[Limit]:
        """The slow-lane limits of a flagged booker, flagging it now if it acts like a bot."""
        s = self.settings
        now = self._clock()
        window = s.release_window_at(now)
        if window is None:
            return []
        address = client_key(client_ip, s.ipv6_prefix)
        subjects = {"ip": f"ip:{address}"}
        if account_id:
            subjects["account"] = f"account:{account_id}"
        keys = {kind: self._flag_prefix + subject for kind, subject in subjects.items()}
        found = await self.limiter.call(self.redis.mget(list(keys.values())))
        flagged = [kind for kind, value in zip(keys, found, strict=True) if value]
        if not flagged:
            reason, kind = await self._looks_like_bot(subjects, user_agent)
            if reason is None:
                return []
            ttl = max(1, math.ceil((window[1] - now).total_seconds()))
            await self.limiter.call(self.redis.set(keys[kind], reason, ex=ttl, nx=True))
            log.info(
                "gateway.bot_flagged",
                reason=reason,
                subject=kind,
                account_id=account_id,
                client=address,
                until=window[1].isoformat(),
            )
            if self._events is not None:
                self._events.labels("booking", f"flagged_{reason}").inc()
            flagged = [kind]
        return [x for k in flagged for x in s.slow_lane.limits("booking.slow_lane", subjects[k])]

    async def _looks_like_bot(
        self, subjects: Mapping[str, str], user_agent: str | None
    ) -> tuple[str | None, str]:
        """(reason, subject kind to flag); the burst probes count attempts as they go."""
        s = self.settings
        kind = "account" if "account" in subjects else "ip"
        if is_scripted_user_agent(user_agent, s.bot_user_agents):
            return "user_agent", kind
        probes = s.bot_ip_burst.limits("bot.ip_burst", subjects["ip"])
        if "account" in subjects:
            probes += s.bot_account_burst.limits("bot.account_burst", subjects["account"])
        burst = await self.limiter.hit(probes)
        if burst.allowed or burst.limit is None:
            return None, kind
        return "burst", "ip" if burst.limit.name == "bot.ip_burst" else "account"

    def _unavailable(self, endpoint: EndpointClass, exc: LimiterUnavailable) -> None:
        closed = endpoint in self.settings.fail_closed
        now = monotonic.monotonic()
        if now - self._warned_at >= 10.0:  # one line per 10 s while Redis is away
            self._warned_at = now
            log.warning(
                "gateway.rate_limiter_unavailable",
                endpoint_class=endpoint.value,
                outcome="refused" if closed else "allowed",
                error=str(exc),
            )
        if closed:
            raise ServiceUnavailable(
                "rate_limiter_unavailable",
                "Booking and sign-in are briefly unavailable; please retry shortly.",
                detail_zh="系统繁忙，请稍后再试。",
                retry_after=self.settings.unavailable_retry_after_seconds,
            ) from exc
