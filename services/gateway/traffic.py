"""Rate-limit policy of the gateway: endpoint classes, budgets, and a slow lane for bots.

Each request falls into an :class:`EndpointClass` (:mod:`services.gateway.domain.endpoints`) and
is counted atomically, all or nothing (:mod:`shared.ratelimit`), per client
address, per account (token subject), per class and per request field (the phone of a
login-code request). Booking has budgets of its own: a release-time surge gets fast 429s
with ``Retry-After``; cancelling and checking in spend the ``appointment`` budgets.

Per request one Redis script call does it all, the token's revocation included
(:mod:`services.gateway.front_script`); :class:`TrafficPolicy` says what to fail with.

Slow lane (OWASP API6): inside a release window a booking client that acts like a bot
(missing or scripted User-Agent, or attempts faster than ``bot_account_burst`` /
``bot_ip_burst``) is flagged in Redis until the window ends and gets the small
``slow_lane`` budget and 429 ``slow_lane``. Nothing is flagged outside windows; staff
never. If Redis answers too late (a surge), 429 ``overloaded``; if it is down, a token
cannot be checked (503), and without one ``fail_closed`` classes get a 503, others pass.
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
from services.gateway.front_script import FRONT, FrontPlan, Outcome, SlowLane, TokenKeys, outcome
from services.gateway.refusals import overloaded, refusal, token_refused
from shared.auth import auth_unavailable
from shared.problems import ServiceUnavailable
from shared.ratelimit import (
    Budget,
    Limit,
    LimiterBusy,
    LimiterUnavailable,
    RateLimiter,
    client_key,
    parse_address,
)

__all__ = [
    "ClassLimits",
    "EndpointClass",
    "RateLimitSettings",
    "TrafficPolicy",
    "classify",
    "refusal",
]

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
    # the front door's one script call per request; past it, or with no pooled connection
    # free within GatewaySettings.front_door_redis_wait_seconds: 429 overloaded
    redis_timeout_seconds: float = Field(0.5, gt=0, le=10)
    overloaded_retry_after_seconds: int = Field(1, ge=1, le=60)

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


class TrafficPolicy:
    """The per-request entry point: :meth:`check` raises a problem or lets a request pass.

    One script call per request (:mod:`services.gateway.front_script`): the token's
    revocation when ``token`` is given, the slow lane, every limit. ``redis`` is the front
    door's own pool (``GatewaySettings.front_door_redis_*``). ``hash_key`` keys the HMAC
    that makes request fields (phone, username) limit keys, so they are never in Redis in
    clear. ``clock`` decides release windows (tests inject one); ``registry`` adds a
    Prometheus counter.

    Redis answering too late (no pooled connection within the pool's wait, or the call
    past ``redis_timeout_seconds``): 429 ``overloaded`` with ``Retry-After``, for every
    request. Redis down (refused, reset): a request with a token gets 503
    ``auth_unavailable`` (a logged-out token must not pass unseen: fail closed, as the
    services' revocation check did); without one, ``fail_closed`` classes a 503
    ``rate_limiter_unavailable`` and the others pass.
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
        self._front = redis.register_script(FRONT)
        self._events: Counter | None = None
        if registry is not None:
            self._events = Counter(
                "careloop_gateway_rate_limit_events_total",
                "Refusals (rate_limited, slow_lane, overloaded) and slow-lane flags "
                "(flagged_<reason>)",
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
        token: TokenKeys | None = None,
        on_slow_lane: Callable[[], None] | None = None,
    ) -> EndpointClass:
        """Check ``token`` and count the request; raise 401, 429 (``rate_limited``,
        ``slow_lane``, ``overloaded``) or 503 to refuse. ``on_slow_lane`` hears of a
        request let through in the slow lane (the service queues it behind people)."""
        endpoint, s = classify(method, path), self.settings
        limits: list[Limit] = []
        lane: SlowLane | None = None
        if s.enabled:
            extra = {k: self._digest(k, v) for k, v in (body_keys or {}).items() if v}
            limits = limits_for(
                s,
                endpoint_class=endpoint,
                client_ip=client_ip,
                account_id=account_id,
                extra_keys=extra,
                is_staff=is_staff,
            )
            if endpoint is EndpointClass.BOOKING and not (is_staff or is_exempt(s, client_ip)):
                lane = self._slow_lane(client_ip, account_id, user_agent)
        if token is None and not limits and lane is None:
            return endpoint
        plan = FrontPlan.build(self.limiter.redis_key, limits, token, lane)
        try:
            answer = await self.limiter.call(self._front(keys=plan.keys, args=plan.args))
        except LimiterBusy as exc:
            self._count(endpoint, "overloaded")
            raise overloaded(s.overloaded_retry_after_seconds) from exc
        except LimiterUnavailable as exc:
            self._unavailable(endpoint, exc, token is not None)
            return endpoint
        result = outcome(plan, answer)
        if result.token:
            log.info("gateway.token_refused", reason=result.token, account_id=account_id)
            raise token_refused(result.token)
        if result.flagged:
            self._flagged(result, client_ip, account_id)
        decision = result.decision
        if decision is not None and not decision.allowed:
            problem = refusal(endpoint, decision, slow_lane=result.slow_lane)
            self._count(endpoint, problem.code)
            raise problem
        if result.slow_lane and on_slow_lane is not None:
            on_slow_lane()
        return endpoint

    def _digest(self, field: str, value: str) -> str:
        material = f"ratelimit:{field}:{value.strip().lower()}".encode()
        return hmac.new(self._hash_key, material, hashlib.sha256).hexdigest()[:32]

    def _slow_lane(
        self, client_ip: str | None, account_id: str | None, user_agent: str | None
    ) -> SlowLane | None:
        """What the script needs to apply (or decide) the slow lane; None outside windows."""
        s = self.settings
        now = self._clock()
        window = s.release_window_at(now)
        if window is None:
            return None
        subjects = {"ip": f"ip:{client_key(client_ip, s.ipv6_prefix)}"}
        if account_id:
            subjects["account"] = f"account:{account_id}"
        bursts = {"ip": ("bot.ip_burst", s.bot_ip_burst)}
        bursts["account"] = ("bot.account_burst", s.bot_account_burst)
        return SlowLane(
            ip_flag=self._flag_prefix + subjects["ip"],
            account_flag=self._flag_prefix + subjects["account"] if account_id else None,
            ttl_seconds=max(1, math.ceil((window[1] - now).total_seconds())),
            scripted=is_scripted_user_agent(user_agent, s.bot_user_agents),
            lane={k: s.slow_lane.limits("booking.slow_lane", v)[0] for k, v in subjects.items()},
            probes={
                kind: limit
                for kind, subject in subjects.items()
                for limit in bursts[kind][1].limits(bursts[kind][0], subject)
            },
        )

    def _flagged(self, result: Outcome, client_ip: str | None, account_id: str | None) -> None:
        window = self.settings.release_window_at(self._clock())
        log.info(
            "gateway.bot_flagged",
            reason=result.reason,
            subject=result.flagged,
            account_id=account_id,
            client=client_key(client_ip, self.settings.ipv6_prefix),
            until=window[1].isoformat() if window else None,
        )
        self._count(EndpointClass.BOOKING, f"flagged_{result.reason}")

    def _count(self, endpoint: EndpointClass, event: str) -> None:
        if self._events is not None:
            self._events.labels(endpoint.value, event).inc()

    def _unavailable(self, endpoint: EndpointClass, exc: LimiterUnavailable, token: bool) -> None:
        closed = token or endpoint in self.settings.fail_closed
        now = monotonic.monotonic()
        if now - self._warned_at >= 10.0:  # one line per 10 s while Redis is away
            self._warned_at = now
            log.warning(
                "gateway.rate_limiter_unavailable",
                endpoint_class=endpoint.value,
                outcome="refused" if closed else "allowed",
                token=token,
                error=str(exc),
            )
        if token:
            raise auth_unavailable() from exc
        if closed:
            raise ServiceUnavailable(
                "rate_limiter_unavailable",
                "Booking and sign-in are briefly unavailable; please retry shortly.",
                detail_zh="系统繁忙，请稍后再试。",
                retry_after=self.settings.unavailable_retry_after_seconds,
            ) from exc
