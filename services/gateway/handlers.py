"""The gateway's event handlers and timed jobs: none.

The gateway consumes no Kafka topic and runs no timed job: it authenticates, limits and
routes requests, and keeps its state (accounts in Mongo, sessions and limits in Redis)
through its own HTTP routes. The module is here so every service has the same shape
(docs/architecture.md §11); a handler or job the gateway ever needs is registered here.
"""

from __future__ import annotations

CONSUMED_SERVICES: tuple[str, ...] = ()
HANDLERS: dict[str, object] = {}
JOBS: dict[str, object] = {}
