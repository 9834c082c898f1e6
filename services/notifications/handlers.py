"""Where the notifications service registers its event handlers and timed jobs.

Business handlers arrive with the notifications feature work; until then the service's consumer
joins its group on the topics below and reads them tolerantly (unknown types are skipped).
"""

from __future__ import annotations

from shared.consumer import ConsumerSpec, Handler
from shared.jobs import JobHandler
from shared.kafka import topic_name
from shared.service import Runtime

CONSUMED_SERVICES: tuple[str, ...] = (
    "appointments",
    "referrals",
    "followup",
)


def consumers(runtime: Runtime) -> list[ConsumerSpec]:
    handlers: dict[str, Handler] = {}
    topics = tuple(topic_name(runtime.settings, s) for s in CONSUMED_SERVICES)
    return [ConsumerSpec(name="events", topics=topics, handlers=handlers)]


def jobs(runtime: Runtime) -> dict[str, JobHandler]:
    return {}
