"""One-time login codes for patients, held in Redis as keyed hashes, never in clear.

A code lives ``otp_ttl_seconds``, may be tried ``otp_max_attempts`` times (the last
wrong try destroys it) and is gone once used. A phone may ask again after
``otp_resend_seconds`` and at most ``otp_daily_limit`` times a day.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum

from redis.asyncio import Redis

from shared.problems import TooManyRequests, Unauthorized

# KEYS: the code's hash; ARGV: the candidate's digest, the attempt limit
# -> {outcome, attempts left}
VERIFY = """
local stored = redis.call('HGET', KEYS[1], 'digest')
if not stored then return {'missing', 0} end
if stored == ARGV[1] then
  redis.call('DEL', KEYS[1])
  return {'ok', 0}
end
local tries = redis.call('HINCRBY', KEYS[1], 'tries', 1)
local left = tonumber(ARGV[2]) - tries
if left <= 0 then
  redis.call('DEL', KEYS[1])
  return {'exhausted', 0}
end
return {'wrong', left}
"""


class Outcome(StrEnum):
    OK = "ok"
    WRONG = "wrong"
    MISSING = "missing"  # never sent, expired, used or destroyed
    EXHAUSTED = "exhausted"


@dataclass(frozen=True)
class Issued:
    code: str
    expires_in: int
    resend_after: int


class LoginCodes:
    def __init__(
        self,
        redis: Redis,
        hash_key: bytes,
        *,
        prefix: str = "",
        length: int = 6,
        ttl_seconds: int = 300,
        max_attempts: int = 5,
        resend_seconds: int = 60,
        daily_limit: int = 10,
    ) -> None:
        self.redis = redis
        self._hash_key = hash_key
        self._prefix = f"{prefix}otp:"
        self.length = length
        self.ttl = ttl_seconds
        self.max_attempts = max_attempts
        self.resend = resend_seconds
        self.daily_limit = daily_limit
        self._verify = redis.register_script(VERIFY)

    def _subject(self, phone: str) -> str:
        return hmac.new(self._hash_key, b"otp-phone:" + phone.encode(), hashlib.sha256).hexdigest()

    def _digest(self, subject: str, code: str) -> str:
        message = f"otp-code:{subject}:{code}".encode()
        return hmac.new(self._hash_key, message, hashlib.sha256).hexdigest()

    async def issue(self, phone: str) -> Issued:
        """A fresh code for ``phone`` (replacing any earlier one), or 429 when asked too often."""
        subject = self._subject(phone)
        cooldown = f"{self._prefix}cool:{subject}"
        if self.resend and not await self.redis.set(cooldown, "1", ex=self.resend, nx=True):
            wait = max(1, int(await self.redis.ttl(cooldown)))
            raise TooManyRequests(
                "code_resend_too_soon",
                f"a code was sent moments ago; ask again in {wait} s",
                retry_after=wait,
                detail_zh=f"验证码已发送，请 {wait} 秒后再试",
            )
        day = datetime.now(UTC).strftime("%Y%m%d")
        daily = f"{self._prefix}day:{subject}:{day}"
        async with self.redis.pipeline(transaction=True) as pipe:
            pipe.incr(daily)
            pipe.expire(daily, 86_400 * 2)
            count, _ = await pipe.execute()
        if int(count) > self.daily_limit:
            raise TooManyRequests(
                "code_daily_limit",
                "too many codes were asked for this phone number today",
                retry_after=_seconds_to_midnight_utc(),
                detail_zh="今日获取验证码次数过多，请明天再试",
            )
        code = "".join(secrets.choice("0123456789") for _ in range(self.length))
        key = f"{self._prefix}code:{subject}"
        async with self.redis.pipeline(transaction=True) as pipe:
            pipe.delete(key)
            pipe.hset(key, mapping={"digest": self._digest(subject, code), "tries": 0})
            pipe.expire(key, self.ttl)
            await pipe.execute()
        return Issued(code=code, expires_in=self.ttl, resend_after=self.resend)

    async def check(self, phone: str, code: str) -> None:
        """Use the code; 401 problems tell a wrong, expired or exhausted code apart."""
        subject = self._subject(phone)
        outcome, left = await self._verify(
            keys=[f"{self._prefix}code:{subject}"],
            args=[self._digest(subject, code), self.max_attempts],
        )
        result = Outcome(outcome)
        if result == Outcome.OK:
            return
        if result == Outcome.WRONG:
            raise Unauthorized(
                "code_wrong",
                f"the code is wrong; {left} attempt(s) left",
                detail_zh=f"验证码错误，还可尝试 {left} 次",
                extra={"attempts_left": int(left)},
            )
        if result == Outcome.EXHAUSTED:
            raise Unauthorized(
                "code_attempts_exhausted",
                "too many wrong codes: ask for a new code",
                detail_zh="验证码错误次数过多，请重新获取",
            )
        raise Unauthorized(
            "code_expired",
            "no valid code for this phone number: it expired or was used; ask for a new one",
            detail_zh="验证码已失效，请重新获取",
        )


def _seconds_to_midnight_utc() -> int:
    now = datetime.now(UTC)
    return max(1, 86_400 - (now.hour * 3600 + now.minute * 60 + now.second))
