"""Demo data: referrals (see devstack/demo/__init__.py)."""

from __future__ import annotations

import httpx

from devstack.demo.base import Demo
from devstack.keys import DevSecrets


async def seed_referrals(gw: httpx.AsyncClient, secrets: DevSecrets, demo: Demo) -> None:
    """Nothing yet."""
