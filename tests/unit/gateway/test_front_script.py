"""The layout of the front door's one script call (KEYS, ARGV) and how its answer reads."""

from __future__ import annotations

import pytest

from services.gateway.front_script import FrontPlan, SlowLane, TokenKeys, outcome
from shared.ratelimit import Limit

pytestmark = pytest.mark.unit

ACCOUNT = Limit("booking.account", "acct-1", 10, 60)
EVERYONE = Limit("booking.all", "all", 2000, 1)
LANE_IP = Limit("booking.slow_lane", "ip:203.0.113.7", 2, 60)
LANE_ACCOUNT = Limit("booking.slow_lane", "account:acct-1", 2, 60)
PROBE = Limit("bot.account_burst", "account:acct-1", 5, 3)


def key_of(limit: Limit) -> str:
    return f"rl:{limit.name}:{limit.key}"


def lane(*, account: bool = True, scripted: bool = False) -> SlowLane:
    return SlowLane(
        ip_flag="flag:ip",
        account_flag="flag:account" if account else None,
        ttl_seconds=420,
        scripted=scripted,
        lane={"ip": LANE_IP, **({"account": LANE_ACCOUNT} if account else {})},
        probes={"account": PROBE} if account else {},
    )


def test_a_booking_with_a_token_in_a_release_window() -> None:
    token = TokenKeys("auth:jti:j-1", "auth:block:acct-1", 1_700_000_000)
    plan = FrontPlan.build(key_of, [EVERYONE, ACCOUNT], token, lane(scripted=True))
    assert plan.keys == [
        "auth:jti:j-1",
        "auth:block:acct-1",
        "flag:ip",
        "flag:account",
        key_of(EVERYONE),
        key_of(ACCOUNT),
        key_of(LANE_IP),
        key_of(LANE_ACCOUNT),
        key_of(PROBE),
    ]
    header, pairs = plan.args[:14], plan.args[14:]
    assert header == ["", 1_700_000_000, 1, 2, 3, 4, 420, 4, 5, 2, 7, 8, 0, 9]
    assert pairs[:8] == [0] * 8  # the token's and the flags' keys are no limits
    assert pairs[8:10] == [EVERYONE.interval_us, EVERYONE.bucket_us]
    assert plan.by_position == {5: EVERYONE, 6: ACCOUNT, 7: LANE_IP, 8: LANE_ACCOUNT, 9: PROBE}


def test_without_a_token_or_an_account_and_outside_windows() -> None:
    scripted = FrontPlan.build(key_of, [EVERYONE], None, lane(account=False, scripted=True))
    assert scripted.args[1] == ""  # no token: nothing to check
    assert scripted.args[4:8] == [1, 0, 420, 1]  # a scripted client flags its address
    plain = FrontPlan.build(key_of, [EVERYONE], None, None)
    assert plain.keys == [key_of(EVERYONE)]
    assert plain.args[:14] == ["", ""] + [0] * 6 + [1, 1, 0, 0, 0, 0]
    with pytest.raises(ValueError, match="same"):
        FrontPlan.build(key_of, [EVERYONE, EVERYONE], None, None)


def test_the_answer_reads_as_a_decision() -> None:
    plan = FrontPlan.build(key_of, [EVERYONE, ACCOUNT], None, lane())
    refused = outcome(plan, ["ok", 0, 5, 1500, 1, "account", "burst"])  # 5: LANE_IP
    assert refused.decision is not None
    assert (refused.decision.allowed, refused.decision.limit) == (False, LANE_IP)
    assert refused.decision.retry_after == 2  # 1.5 s, rounded up
    assert (refused.slow_lane, refused.flagged, refused.reason) == (True, "account", "burst")
    allowed = outcome(plan, ["ok", 1, 0, 4, 0, "", ""])
    assert allowed.decision is not None
    assert (allowed.decision.allowed, allowed.decision.remaining) == (True, 4)
    assert not allowed.slow_lane
    assert outcome(plan, ["revoked"]).token == "revoked"
    assert outcome(plan, ["ended"]).token == "ended"
