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

from fastapi import Request

from services.gateway.identity.sessions import Sessions
from shared.auth import TokenVerifier
from shared.principal import Principal
from shared.problems import Unauthorized

PUBLIC_PREFIXES = ("/v1/notifications/providers/",)


def is_public(path: str) -> bool:
    return path.startswith(PUBLIC_PREFIXES)


def bearer_principal(request: Request) -> Principal | None:
    """The caller by its token's signature and claims alone; ``None`` for public paths;
    401 problem otherwise. Whether it was logged out is for the front door's script."""
    if is_public(request.url.path):
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
