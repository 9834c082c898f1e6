"""Seed every part of the demo, in order: the alliance, then each domain's working data."""

from __future__ import annotations

import httpx

from devstack.demo.base import Demo, seed_base
from devstack.keys import DevSecrets


async def seed(gw: httpx.AsyncClient, secrets: DevSecrets, site: str) -> Demo:
    demo = await seed_base(gw, secrets, site)
    return demo
