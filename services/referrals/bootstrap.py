"""The referrals composition root: every object the routes and handlers use, built once in the
lifespan with explicit constructor arguments."""

from __future__ import annotations

from dataclasses import dataclass

from shared.service import Runtime
from shared.settings import ServiceSettings


@dataclass
class Referrals:
    runtime: Runtime
    settings: ServiceSettings


def build(runtime: Runtime) -> Referrals:
    return Referrals(runtime=runtime, settings=runtime.settings)
