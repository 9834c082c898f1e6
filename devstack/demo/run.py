"""Seed every part of the demo, in order: the alliance, then each domain's working data."""

from __future__ import annotations

import httpx

from devstack.demo.base import Demo, seed_base
from devstack.demo.beds import seed_beds
from devstack.demo.followup import seed_followup
from devstack.demo.hotline import seed_hotline
from devstack.demo.referrals import seed_referrals
from devstack.demo.transport import seed_transport
from devstack.keys import DevSecrets


async def seed(gw: httpx.AsyncClient, secrets: DevSecrets, site: str) -> Demo:
    demo = await seed_base(gw, secrets, site)
    for part in (seed_hotline, seed_referrals, seed_followup, seed_beds, seed_transport):
        await part(gw, secrets, demo)
    return demo
