"""Access and refresh tokens: issuing, rotation, logout and revocation, held in Redis.

An access token is a short-lived JWT every service verifies itself. A refresh token is
an opaque secret belonging to a *family* (one login). Each refresh uses the token up and
hands out the next one of the family; presenting a used token again means it was copied,
so the whole family is revoked (RFC 9700 refresh-token rotation with reuse detection).
Logout revokes the family and the access token's ``jti`` for the rest of its life;
disabling an account or resetting its password refuses every token issued before.
"""

from __future__ import annotations

import hashlib
import secrets
import time
from dataclasses import dataclass, field

from pydantic import BaseModel
from redis.asyncio import Redis
from redis.exceptions import RedisError

from services.gateway.front_script import TokenKeys
from services.gateway.refusals import token_refused
from shared.auth import TokenMinter, auth_unavailable
from shared.principal import Principal, Role
from shared.problems import Unauthorized
from shared.revocation import ENDED, REVOKED, block_key, end_logins, jti_key, revoke_token, verdict

# KEYS: the refresh token's key -> {outcome, family}
USE = """
local family = redis.call('HGET', KEYS[1], 'family')
if not family then return {'missing', ''} end
if redis.call('HGET', KEYS[1], 'state') ~= 'live' then return {'reused', family} end
redis.call('HSET', KEYS[1], 'state', 'used')
return {'ok', family}
"""


@dataclass(frozen=True)
class Identity:
    account_id: str
    roles: tuple[Role, ...]
    org_id: str | None = None
    patient_ids: tuple[str, ...] = field(default_factory=tuple)

    @property
    def is_staff(self) -> bool:
        return any(r != Role.PATIENT for r in self.roles)


class TokenPair(BaseModel):
    access_token: str
    token_type: str = "Bearer"  # noqa: S105 - the scheme name, not a secret
    expires_in: int
    refresh_token: str
    refresh_expires_in: int


def _refused(code: str, detail: str) -> Unauthorized:
    return Unauthorized(code, detail, detail_zh="登录已失效，请重新登录。")


class Sessions:
    """Needs a client made with ``decode_responses=True`` (``shared.redis_client``)."""

    def __init__(
        self,
        redis: Redis,
        minter: TokenMinter,
        *,
        prefix: str = "",
        access_ttl: int = 600,
        patient_refresh_ttl: int = 30 * 86_400,
        staff_refresh_ttl: int = 12 * 3600,
    ) -> None:
        self.redis = redis
        self.minter = minter
        self.prefix = prefix
        self._p = f"{prefix}auth:"
        self.access_ttl = access_ttl
        self.patient_refresh_ttl = patient_refresh_ttl
        self.staff_refresh_ttl = staff_refresh_ttl
        self._use = redis.register_script(USE)

    def _token_key(self, token: str) -> str:
        return f"{self._p}rt:{hashlib.sha256(token.encode()).hexdigest()}"

    async def open(self, identity: Identity) -> TokenPair:
        """A new login: a new family and its first pair."""
        family = secrets.token_urlsafe(12)
        ttl = self.staff_refresh_ttl if identity.is_staff else self.patient_refresh_ttl
        family_key = f"{self._p}fam:{family}"
        async with self.redis.pipeline(transaction=True) as pipe:
            pipe.hset(
                family_key,
                mapping={
                    "account": identity.account_id,
                    "expires": int(time.time()) + ttl,
                    "staff": int(identity.is_staff),
                },
            )
            pipe.expire(family_key, ttl)
            pipe.sadd(f"{self._p}acct:{identity.account_id}", family)
            pipe.expire(f"{self._p}acct:{identity.account_id}", max(ttl, self.patient_refresh_ttl))
            await pipe.execute()
        return await self._pair(identity, family, ttl)

    async def _pair(self, identity: Identity, family: str, ttl: int) -> TokenPair:
        refresh = f"{family}.{secrets.token_urlsafe(32)}"
        key = self._token_key(refresh)
        async with self.redis.pipeline(transaction=True) as pipe:
            pipe.hset(key, mapping={"family": family, "state": "live"})
            pipe.expire(key, ttl)
            await pipe.execute()
        access = self.minter.mint(
            identity.account_id,
            identity.roles,
            org_id=identity.org_id,
            patient_ids=identity.patient_ids,
            ttl_seconds=self.access_ttl,
        )
        return TokenPair(
            access_token=access,
            expires_in=self.access_ttl,
            refresh_token=refresh,
            refresh_expires_in=ttl,
        )

    async def use_refresh(self, token: str) -> tuple[str, str]:
        """Spend a refresh token: (family, account id), or 401 (reuse revokes the family)."""
        if not token or len(token) > 200:
            raise _refused("refresh_invalid", "the refresh token is not valid")
        outcome, family = await self._use(keys=[self._token_key(token)])
        if outcome == "reused":
            await self.revoke_family(family)
            raise _refused(
                "refresh_reused",
                "this refresh token was already used: every session of this login is ended",
            )
        if outcome != "ok":
            raise _refused("refresh_invalid", "the refresh token is not valid or has expired")
        values = await self.redis.hgetall(f"{self._p}fam:{family}")
        if not values or values.get("revoked"):
            raise _refused("refresh_revoked", "this login has ended; please sign in again")
        return str(family), str(values["account"])

    async def rotate(self, family: str, identity: Identity) -> TokenPair:
        """The next pair of a family whose token was just spent (``use_refresh``)."""
        family_key = f"{self._p}fam:{family}"
        expires = await self.redis.hget(family_key, "expires")
        if identity.is_staff:  # staff logins end at a fixed time; patients' slide
            ttl = int(expires or 0) - int(time.time())
            if ttl <= 0:
                raise _refused("refresh_invalid", "this login has expired")
        else:
            ttl = self.patient_refresh_ttl
            await self.redis.expire(family_key, ttl)
        return await self._pair(identity, family, ttl)

    async def revoke_family(self, family: str) -> None:
        key = f"{self._p}fam:{family}"
        if await self.redis.exists(key):
            await self.redis.hset(key, "revoked", 1)

    async def revoke_access(self, principal: Principal) -> None:
        if principal.token_id:
            await revoke_token(self.redis, self.prefix, principal.token_id, self.access_ttl + 60)

    async def logout(self, principal: Principal, refresh_token: str | None) -> None:
        """End this login: the access token now, and its refresh family if given."""
        await self.revoke_access(principal)
        if refresh_token:
            family = refresh_token.split(".", 1)[0]
            values = await self.redis.hgetall(f"{self._p}fam:{family}")
            if values.get("account") == principal.subject:
                await self.revoke_family(family)

    async def end_all(self, account_id: str) -> None:
        """Every login of an account ends: its families, and tokens issued until now."""
        families = await self.redis.smembers(f"{self._p}acct:{account_id}")
        for family in families:
            await self.revoke_family(str(family))
        await end_logins(self.redis, self.prefix, account_id, self.access_ttl + 60)

    async def is_revoked(self, token_id: str) -> bool:
        return bool(await self.redis.exists(jti_key(self.prefix, token_id)))

    def token_keys(self, principal: Principal) -> TokenKeys:
        """Where the front door's script finds this token's logout and its account's end."""
        jti = jti_key(self.prefix, principal.token_id) if principal.token_id else None
        block = block_key(self.prefix, principal.subject)
        return TokenKeys(jti, block, principal.issued_at or 0)

    async def check_token(self, principal: Principal) -> None:
        """Outside the front door's script (the audit view): logout and ended logins in
        one round trip; 401 ``token_invalid``/``token_revoked``, 503 if Redis fails."""
        keys = self.token_keys(principal)
        try:
            jti, blocked = await self.redis.mget([keys.jti_key or keys.block_key, keys.block_key])
        except (RedisError, OSError) as exc:
            raise auth_unavailable() from exc
        state = verdict(keys.issued_at, jti if keys.jti_key else None, blocked)
        if state in (REVOKED, ENDED):
            raise token_refused(state)

    async def check_not_ended(self, principal: Principal) -> None:
        """401 when the account's logins were ended after this token was issued."""
        blocked = await self.redis.get(block_key(self.prefix, principal.subject))
        if verdict(principal.issued_at or 0, None, blocked) == ENDED:
            raise _refused("token_revoked", "this session has ended; please sign in again")
