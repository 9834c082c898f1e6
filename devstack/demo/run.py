"""Seed every part of the demo, in order: the alliance, then each domain's working data."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterable

import httpx

from devstack.demo.base import Demo, seed_base
from devstack.demo.beds import seed_beds
from devstack.demo.followup import seed_complaints, seed_followup
from devstack.demo.hotline import seed_hotline
from devstack.demo.referrals import seed_referrals
from devstack.demo.transport import seed_transport
from devstack.keys import DevSecrets

Part = Callable[[httpx.AsyncClient, DevSecrets, Demo], Awaitable[None]]
PARTS: dict[str, Part] = {
    "hotline": seed_hotline,
    "referrals": seed_referrals,
    "followup": seed_followup,
    "complaints": seed_complaints,
    "beds": seed_beds,
    "transport": seed_transport,
}


async def seed(
    gw: httpx.AsyncClient, secrets: DevSecrets, site: str, parts: Iterable[str] | None = None
) -> Demo:
    """The alliance of ``site`` and the named parts of ``PARTS`` (all of them by default;
    a browser test seeds only what its screens need)."""
    wanted = set(PARTS) if parts is None else set(parts)
    if unknown := wanted - set(PARTS):
        raise ValueError(f"no demo part {sorted(unknown)}: {sorted(PARTS)}")
    demo = await seed_base(gw, secrets, site)
    for name, part in PARTS.items():
        if name in wanted:
            await part(gw, secrets, demo)
    return demo
