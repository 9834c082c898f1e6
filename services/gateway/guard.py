"""Who may pass the front door: a valid, unrevoked token on every proxied route.

The services verify the token again and apply their own role and ownership rules; the
gateway adds what only it can know: logouts and ended logins (held in its Redis).
Provider callbacks carry their own signatures and need no token.
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


async def authenticate(request: Request) -> Principal | None:
    """The caller of a proxied request; ``None`` for public paths; 401 problem otherwise."""
    if is_public(request.url.path):
        return None
    scheme, _, token = request.headers.get("authorization", "").partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise Unauthorized("token_missing", "An access token is required.", detail_zh="请先登录。")
    verifier: TokenVerifier = request.app.state.token_verifier
    principal = await verifier.verify_async(token.strip())
    sessions: Sessions = request.app.state.logins.sessions
    await sessions.check_not_ended(principal)
    request.state.principal = principal
    return principal
