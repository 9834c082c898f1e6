"""The gateway's event handlers and timed jobs: none.

The gateway handles no event with effects and runs no timed job: it authenticates, limits
and routes requests, and keeps its state (accounts in Mongo, sessions and limits in Redis)
through its own HTTP routes. Its one Kafka reader, the console's live changes
(``console_changes.py``), only tells open dashboards that an organization's figures moved:
it changes nothing and commits no offset, so it is not a consumer of this registry. The
module is here so every service has the same shape (docs/architecture.md §11).
"""

from __future__ import annotations

CONSUMED_SERVICES: tuple[str, ...] = ()
HANDLERS: dict[str, object] = {}
JOBS: dict[str, object] = {}
