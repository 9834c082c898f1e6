"""Everything the front door asks Redis about one request, in one script (one EVALSHA).

In order, as separate calls used to do it (docs/architecture.md §8, ADR 0003):

1. the token (when there is one): its ``jti`` logged out (``auth:jti:<jti>`` exists) ->
   ``revoked``; its account's logins ended at or after its ``iat``
   (``auth:block:<account>`` holds that time) -> ``ended``. Nothing is counted then.
2. the slow lane (a booking in a release window, not staff, not an exempt address): the
   flags of the address and the account are read; if neither is set and the client acts
   like a bot (a scripted User-Agent, decided by the caller, or attempts faster than the
   ``bot_*_burst`` probes, which count as they go), its flag is set (``NX``) until the
   window ends, and the slow-lane limits of every flagged subject join the request's.
3. every GCRA limit of the request, all or nothing (``gcra_hit`` of
   :mod:`shared.ratelimit`, on Redis ``TIME``).

:class:`FrontPlan` lays out KEYS and ARGV; :func:`outcome` reads the answer.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from shared.ratelimit import GCRA_FUNCTIONS, Decision, Limit, gcra_decision

_HEADER = 14  # ARGV slots before the per-key interval and bucket pairs

# ARGV: [1] now in µs ('' for Redis TIME), [2] the token's iat ('' without a token),
# [3] jti key, [4] block key, [5] address flag key, [6] account flag key, [7] flag TTL in
# seconds, [8] flag key to set for a scripted User-Agent, [9] first limit key and [10]
# their count, [11] address slow-lane limit key, [12] account slow-lane limit key, [13]
# address burst probe key, [14] account burst probe key (key positions in KEYS, 0: none);
# then for key k its interval at ARGV[14 + 2k - 1] and its bucket at ARGV[14 + 2k].
# -> {'revoked'} | {'ended'} | {'ok', allowed, refusing key, remaining or wait in ms,
#    slow-lane limits applied, flagged subject ('', 'ip', 'account'), flag reason}
FRONT = (
    GCRA_FUNCTIONS
    + """
local function arg(i) return tonumber(ARGV[i]) or 0 end
local function spec(positions)
  local keys, intervals, buckets = {}, {}, {}
  for j, k in ipairs(positions) do
    keys[j] = KEYS[k]
    intervals[j] = tonumber(ARGV[14 + 2 * k - 1])
    buckets[j] = tonumber(ARGV[14 + 2 * k])
  end
  return keys, intervals, buckets
end

local iat = tonumber(ARGV[2])
if iat then
  if arg(3) > 0 and redis.call('EXISTS', KEYS[arg(3)]) == 1 then return {'revoked'} end
  if arg(4) > 0 then
    local blocked = tonumber(redis.call('GET', KEYS[arg(4)]) or '')
    if blocked and iat <= blocked then return {'ended'} end
  end
end

local now = gcra_now(ARGV[1])
local ip_flag, account_flag = arg(5), arg(6)
local lane, flagged, reason = {}, '', ''
if ip_flag > 0 then
  local ip_on = redis.call('GET', KEYS[ip_flag])
  local account_on = account_flag > 0 and redis.call('GET', KEYS[account_flag])
  if not ip_on and not account_on then
    local target = 0
    if arg(8) > 0 then
      target, reason = arg(8), 'user_agent'
    else
      local probes = {}
      if arg(13) > 0 then probes[#probes + 1] = arg(13) end
      if arg(14) > 0 then probes[#probes + 1] = arg(14) end
      local keys, intervals, buckets = spec(probes)
      local probe = gcra_hit(now, keys, intervals, buckets)
      if probe[1] == 0 then
        reason = 'burst'
        if probes[probe[2]] == arg(13) then target = ip_flag else target = account_flag end
      end
    end
    if target > 0 then
      redis.call('SET', KEYS[target], reason, 'EX', arg(7), 'NX')
      if target == ip_flag then
        ip_on, flagged = true, 'ip'
      else
        account_on, flagged = true, 'account'
      end
    end
  end
  if ip_on and arg(11) > 0 then lane[#lane + 1] = arg(11) end
  if account_on and arg(12) > 0 then lane[#lane + 1] = arg(12) end
end

local positions = {}
for k = arg(9), arg(9) + arg(10) - 1 do positions[#positions + 1] = k end
for _, k in ipairs(lane) do positions[#positions + 1] = k end
local keys, intervals, buckets = spec(positions)
local hit = gcra_hit(now, keys, intervals, buckets)
local refusing = 0
if hit[1] == 0 then refusing = positions[hit[2]] end
return {'ok', hit[1], refusing, hit[3], #lane, flagged, reason}
"""
)


@dataclass(frozen=True)
class TokenKeys:
    """Where a token's revocation lives: its ``jti`` key, its account's block key, its iat."""

    jti_key: str | None
    block_key: str
    issued_at: int


@dataclass(frozen=True)
class SlowLane:
    """A booking in a release window: the flags, and what flagging would mean."""

    ip_flag: str
    account_flag: str | None
    ttl_seconds: int
    scripted: bool  # a scripted User-Agent: flag at once (the account, else the address)
    lane: dict[str, Limit]  # 'ip' / 'account' -> the slow-lane limit of that subject
    probes: dict[str, Limit]  # 'ip' / 'account' -> the burst probe of that subject


@dataclass
class FrontPlan:
    """KEYS and ARGV of :data:`FRONT` for one request; ``limits[i]`` is at KEYS position
    ``positions[i]`` (1-based), for mapping a refusal back to its limit."""

    keys: list[str] = field(default_factory=list)
    args: list[int | str] = field(default_factory=list)
    by_position: dict[int, Limit] = field(default_factory=dict)

    @classmethod
    def build(
        cls,
        key_of: Callable[[Limit], str],
        limits: Sequence[Limit],
        token: TokenKeys | None,
        lane: SlowLane | None,
    ) -> FrontPlan:
        """``key_of(limit)`` names a limit's Redis key (``RateLimiter.redis_key``)."""
        plan = cls()
        header: list[int | str] = ["", "" if token is None else token.issued_at] + [0] * 12
        pairs: list[int] = []

        def add(key: str, limit: Limit | None = None) -> int:
            plan.keys.append(key)
            position = len(plan.keys)
            pairs.extend((limit.interval_us, limit.bucket_us) if limit else (0, 0))
            if limit is not None:
                plan.by_position[position] = limit
            return position

        if token is not None:
            header[2] = add(token.jti_key) if token.jti_key else 0
            header[3] = add(token.block_key)
        if lane is not None:
            header[4] = add(lane.ip_flag)
            header[5] = add(lane.account_flag) if lane.account_flag else 0
            header[6] = lane.ttl_seconds
            if lane.scripted:
                header[7] = header[5] or header[4]
        header[8] = len(plan.keys) + 1
        header[9] = len(limits)
        for limit in limits:
            add(key_of(limit), limit)
        if lane is not None:
            for slot, kind in ((10, "ip"), (11, "account")):
                if (wanted := lane.lane.get(kind)) is not None:
                    header[slot] = add(key_of(wanted), wanted)
            for slot, kind in ((12, "ip"), (13, "account")):
                if (probe := lane.probes.get(kind)) is not None:
                    header[slot] = add(key_of(probe), probe)
        if len(set(plan.keys)) != len(plan.keys):
            raise ValueError("two keys of one front-door check are the same")
        plan.args = [*header, *pairs]
        assert len(header) == _HEADER
        return plan


@dataclass(frozen=True)
class Outcome:
    """The script's answer: ``token`` ('' when fine, 'revoked', 'ended'), the decision,
    whether slow-lane limits applied, and the subject flagged now (with the reason)."""

    token: str
    decision: Decision | None = None
    slow_lane: bool = False
    flagged: str = ""
    reason: str = ""


def outcome(plan: FrontPlan, answer: Sequence[Any]) -> Outcome:
    if answer[0] != "ok":
        return Outcome(token=str(answer[0]))
    allowed, refusing, value, lane, flagged, reason = answer[1:7]
    limits = [plan.by_position[int(refusing)]] if int(refusing) else []
    decision = gcra_decision(limits, [allowed, 1 if limits else 0, value])
    return Outcome("", decision, int(lane) > 0, str(flagged), str(reason))
