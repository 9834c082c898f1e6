"""Rate limits at the front door: the request-side glue of :class:`TrafficPolicy`.

Proxied requests are counted after their token's signature is checked (per account, per
address, per endpoint class), in the same Redis script call that checks the token's
logout and ended logins (:func:`admit`); the gateway's own ``/v1/auth`` routes before
they run, keyed also by the phone or username in their body, so guessing and SMS
pumping meet a 429.
"""

from __future__ import annotations

import json

from fastapi import Request

from services.gateway.front_door import client_ip
from services.gateway.front_script import TokenKeys
from services.gateway.identity.sessions import Sessions
from services.gateway.settings import GatewaySettings
from services.gateway.traffic import TrafficPolicy
from shared.principal import Principal
from shared.problems import Problem

BODY_KEYS = ("phone", "username")  # request fields that are limit keys of their own
_MAX_PARSED_BYTES = 8192  # the gateway's own routes take tiny bodies: a bigger one is a 413
_BODY_METHODS = frozenset({"POST", "PUT", "PATCH"})


async def admit(request: Request, principal: Principal | None) -> None:
    """A proxied request: its token's logout and ended logins and its budgets, in one
    Redis call; raises a 401, 429 or 503 problem to refuse it."""
    sessions: Sessions = request.app.state.logins.sessions
    await rate_limit(request, principal, sessions.token_keys(principal) if principal else None)


async def rate_limit(
    request: Request, principal: Principal | None, token: TokenKeys | None = None
) -> None:
    """Count a request against its budgets; raises a 429 (or 503) problem to refuse it."""
    policy: TrafficPolicy = request.app.state.traffic
    settings: GatewaySettings = request.app.state.settings
    await policy.check(
        token=token,
        method=request.method,
        path=request.url.path,
        client_ip=client_ip(request, settings.trusted_proxies),
        account_id=principal.subject if principal else None,
        user_agent=request.headers.get("user-agent"),
        body_keys=await _body_keys(request) if principal is None else None,
        is_staff=principal.is_staff if principal else False,
        on_slow_lane=lambda: setattr(request.state, "slow_lane", True),
    )


async def rate_limit_anonymous(request: Request) -> None:
    """Dependency of the gateway's own routes: counted by address and body keys."""
    await rate_limit(request, None)


def _too_large() -> Problem:
    return Problem(
        413,
        "request_too_large",
        f"the request body is larger than {_MAX_PARSED_BYTES} bytes",
        detail_zh="请求内容过大",
    )


async def _body_keys(request: Request) -> dict[str, str]:
    """The limit keys in a gateway route's body. The body is bounded whatever its type says
    (413 past 8 KiB: a padded body must not slip past the per-username limits), and any
    JSON media type counts, in any case (``Application/JSON``)."""
    if request.method not in _BODY_METHODS:
        return {}
    declared = request.headers.get("content-length", "")
    if declared.strip().isdigit() and int(declared) > _MAX_PARSED_BYTES:
        raise _too_large()
    body = await request.body()  # cached on the request: the route reads it again
    if len(body) > _MAX_PARSED_BYTES:
        raise _too_large()
    if request.method != "POST" or not body:
        return {}
    if "json" not in request.headers.get("content-type", "").lower():
        return {}
    try:
        data = json.loads(body)
    except (ValueError, UnicodeDecodeError):
        return {}  # the route answers the malformed body with its own 422
    if not isinstance(data, dict):
        return {}
    return {k: v for k in BODY_KEYS if isinstance(v := data.get(k), str) and v}
