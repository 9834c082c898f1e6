"""Authenticating provider callbacks: time windows, one-time nonces, source addresses.

* WeChat's pushes carry a ``timestamp`` and a ``nonce`` under their signature. A push is
  accepted only within ``wechat_callback_window_seconds`` of our clock, and each
  (timestamp, nonce) only once: :meth:`CallbackGuard.claim_nonce` is a Redis ``SET NX``
  whose key lives as long as the timestamp could still pass the window. A push whose
  handling fails gives its nonce back (:meth:`CallbackGuard.release_nonce`), so WeChat's
  own retry of it is not taken for a replay.
* Aliyun's receipts may be limited to source networks (``aliyun_receipt_allowed_networks``,
  empty: any). The source is the peer's address, or — when the peer is one of
  ``callback_trusted_proxies`` (the gateway) — the nearest untrusted hop of
  ``X-Forwarded-For``.

Neither nonces nor addresses are logged in full: a nonce key is a hash.
"""

from __future__ import annotations

import hashlib
import ipaddress
import time
from collections.abc import Callable, Sequence
from functools import cached_property

from fastapi import Request
from redis.asyncio import Redis

from shared.problems import Forbidden, Unauthorized

NONCE_NAMESPACE = "notifications:callback-nonce:"

IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network


def networks(cidrs: Sequence[str]) -> list[IPNetwork]:
    """Parse CIDRs (a bare address is a /32 or /128); a malformed one is a ValueError."""
    return [ipaddress.ip_network(cidr.strip(), strict=False) for cidr in cidrs if cidr.strip()]


def in_networks(address: str, nets: Sequence[IPNetwork]) -> bool:
    try:
        ip = ipaddress.ip_address(address.strip())
    except ValueError:
        return False
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    return any(ip.version == net.version and ip in net for net in nets)


class CallbackGuard:
    def __init__(
        self,
        redis: Redis,
        key_prefix: str,
        *,
        window_seconds: int,
        allowed_networks: Sequence[str] = (),
        trusted_proxies: Sequence[str] = (),
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.redis = redis
        self.key_prefix = key_prefix
        self.window_seconds = window_seconds
        self._allowed = tuple(allowed_networks)
        self._proxies = tuple(trusted_proxies)
        self.clock = clock

    @cached_property
    def allowed_networks(self) -> list[IPNetwork]:
        return networks(self._allowed)

    @cached_property
    def trusted_proxies(self) -> list[IPNetwork]:
        return networks(self._proxies)

    def check_timestamp(self, timestamp: str) -> None:
        """401 unless ``timestamp`` (Unix seconds) is within the window of our clock."""
        text = timestamp.strip()
        if not text.isascii() or not text.isdigit() or len(text) > 12:
            raise Unauthorized("callback_timestamp_invalid", "missing or malformed timestamp")
        if abs(self.clock() - int(text)) > self.window_seconds:
            raise Unauthorized(
                "callback_timestamp_out_of_window",
                "the callback's timestamp is too far from our clock",
                detail_zh="回调时间戳已过期",
            )

    def _nonce_key(self, provider: str, timestamp: str, nonce: str) -> str:
        digest = hashlib.sha256(f"{provider}\x00{timestamp}\x00{nonce}".encode()).hexdigest()
        return f"{self.key_prefix}{NONCE_NAMESPACE}{digest[:40]}"

    async def claim_nonce(self, provider: str, timestamp: str, nonce: str) -> None:
        """Record (timestamp, nonce) as used; 401 ``callback_replayed`` if it was already."""
        # the timestamp passes the window until timestamp + window, at most 2 windows on
        ttl = 2 * self.window_seconds + 1
        key = self._nonce_key(provider, timestamp, nonce)
        if not await self.redis.set(key, b"1", nx=True, ex=ttl):
            raise Unauthorized(
                "callback_replayed",
                "this callback (timestamp and nonce) was received already",
                detail_zh="重复的回调",
            )

    async def release_nonce(self, provider: str, timestamp: str, nonce: str) -> None:
        await self.redis.delete(self._nonce_key(provider, timestamp, nonce))

    def source_address(self, request: Request) -> str:
        peer = request.client.host if request.client else ""
        if not self.trusted_proxies or not in_networks(peer, self.trusted_proxies):
            return peer
        hops = [h.strip() for h in request.headers.get("x-forwarded-for", "").split(",")]
        for hop in reversed([h for h in hops if h]):  # the nearest untrusted hop
            if not in_networks(hop, self.trusted_proxies):
                return hop
        return peer

    def check_source(self, request: Request) -> None:
        """403 when an allowlist is set and the callback's source is outside it."""
        if not self.allowed_networks:
            return
        if not in_networks(self.source_address(request), self.allowed_networks):
            raise Forbidden(
                "callback_source_forbidden",
                "callbacks are not accepted from this address",
                detail_zh="回调来源地址不被允许",
            )
