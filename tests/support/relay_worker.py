"""A relay in a process of its own, so a test can SIGKILL it mid-batch.

Usage: python -m tests.support.relay_worker '<ServiceSettings as JSON>'
"""

from __future__ import annotations

import asyncio
import sys

from shared.mongo import create_client
from shared.outbox import Outbox
from shared.outbox_relay import OutboxRelay
from shared.settings import ServiceSettings


async def main(raw: str) -> None:
    settings = ServiceSettings.model_validate_json(raw)
    client = create_client(settings.mongo_url, app_name="relay-worker")
    outbox = Outbox(client, client[settings.database_name], settings.own_topic)
    await OutboxRelay(outbox, settings, replica_id="doomed").run()


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1]))
