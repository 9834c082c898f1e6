"""Who may pass the front door: a valid, unrevoked token on every proxied route.

The services verify the token again and apply their own role and ownership rules; the
gateway adds what only it can know: logouts and ended logins (held in its Redis).
Provider callbacks carry their own signatures and need no token.

On the proxied path the signature and claims are checked here, in-process
(``app.state.front_verifier``, no revocation hook), and the logout and ended-login checks
run inside the front door's one Redis script with the rate limits
(:mod:`services.gateway.throttle`). :func:`authenticate` does both for callers outside
that path (the audit view), in one round trip of its own.
"""

from __future__ import annotations

import re
from urllib.parse import unquote

from fastapi import Request

from services.gateway.identity.sessions import Sessions
from shared.auth import TokenVerifier
from shared.principal import Principal
from shared.problems import BadRequest, Forbidden, Unauthorized

PUBLIC_PREFIXES = ("/v1/notifications/providers/",)
_DOT_SEGMENTS = frozenset({".", ".."})
# the service's binding route takes an openid on trust: only the gateway calls it
WECHAT_BINDING = "/v1/notifications/me/wechat"


def is_public(path: str) -> bool:
    """Whether ``path`` (as :func:`normalized_path` gives it) is a provider callback."""
    return path.startswith(PUBLIC_PREFIXES)


def _path_refused() -> BadRequest:
    return BadRequest(
        "path_invalid",
        "the path may not hold dot segments or encoded slashes",
        detail_zh="请求路径无效",
    )


def normalized_path(request: Request) -> str:
    """The request's path, percent-decoded once, as every later hop sees it; 400 problem
    ``path_invalid`` for a dot segment (``.``, ``..``, ``%2e%2e``, even encoded twice) or
    an encoded slash or backslash that a hop could resolve into another route."""
    raw = request.scope.get("raw_path") or request.url.path.encode()
    text = raw.decode("latin-1").split("?", 1)[0]
    decoded = unquote(text, encoding="latin-1")
    for segment in decoded.split("/"):
        twice = unquote(segment, encoding="latin-1")
        if segment in _DOT_SEGMENTS or twice in _DOT_SEGMENTS or any(c in twice for c in "/\\"):
            raise _path_refused()
    return decoded


def refuse_unverified(request: Request, path: str) -> None:
    """403 for a client's ``PUT /v1/notifications/me/wechat``: its openid is unverified.
    WeChat is bound through ``PUT /v1/auth/me/wechat`` (a wx.login code, code2session)."""
    if request.method == "PUT" and re.sub("/+", "/", path).rstrip("/") == WECHAT_BINDING:
        raise Forbidden(
            "wechat_binding_unverified",
            "bind WeChat with PUT /v1/auth/me/wechat and a fresh wx.login code",
            detail_zh="请通过微信登录凭证绑定微信",
        )


def bearer_principal(request: Request) -> Principal | None:
    """The caller by its token's signature and claims alone; ``None`` for public paths;
    401 problem otherwise. Whether it was logged out is for the front door's script.
    Public or not is decided on the normalized path; a path with dot segments is a 400."""
    path = normalized_path(request)
    refuse_unverified(request, path)
    if is_public(path):
        return None
    scheme, _, token = request.headers.get("authorization", "").partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise Unauthorized("token_missing", "An access token is required.", detail_zh="请先登录。")
    verifier: TokenVerifier = request.app.state.front_verifier
    principal = verifier.verify(token.strip())
    request.state.principal = principal
    return principal


async def authenticate(request: Request) -> Principal | None:
    """:func:`bearer_principal`, then logout and ended logins (401, or 503 if unknown)."""
    principal = bearer_principal(request)
    if principal is not None:
        sessions: Sessions = request.app.state.logins.sessions
        await sessions.check_token(principal)
    return principal
