"""The whole system as separate processes (four services and the gateway) on the test stack."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from pymongo import MongoClient

from devstack.keys import DevSecrets, ensure_dev_secrets
from devstack.stack import EmbeddedStack
from devstack.system import System


@pytest.fixture(scope="session")
def dev_secrets(state_dir: Path) -> DevSecrets:
    return ensure_dev_secrets(state_dir)


# Tests call from one address with an HTTP library's User-Agent, many times a minute: exempt
# the loopback network (no per-address budget, no slow lane). Per-account and per-phone
# budgets stay as configured; tests/integration/gateway/test_front_door_limits.py covers them.
TEST_RATE_LIMITS = {"exempt_networks": ["127.0.0.0/8"], "staff_account_multiplier": 100}
EXTRA_ENV = {
    "gateway": {"CARELOOP_GATEWAY_RATE_LIMITS": json.dumps(TEST_RATE_LIMITS)},
    # no quiet hours: the journeys expect texts now, whatever the time of the run
    # (tests/integration/notifications covers quiet hours with a fixed clock)
    "notifications": {
        "CARELOOP_NOTIFICATIONS_QUIET_HOURS_START": "",
        "CARELOOP_NOTIFICATIONS_QUIET_HOURS_END": "",
    },
}


@pytest.fixture(scope="package")  # stopped when the e2e tests are done: idle services
def system(stack: EmbeddedStack, dev_secrets: DevSecrets) -> Iterator[System]:
    running = System(stack)
    try:
        running.start_services(
            dev_secrets,
            db_suffix="_e2e",
            partitions=3,
            extra_env=EXTRA_ENV,
        )
        running.wait_ready(timeout=120)
        yield running
    finally:
        for proc in running.processes.values():
            proc.stop()
        drop_databases(stack.mongo_url, suffix="_e2e")


def drop_databases(mongo_url: str, *, suffix: str) -> None:
    """Free the embedded MongoDB of the e2e data: the tests after these need no part of it."""
    client: MongoClient[dict[str, object]] = MongoClient(mongo_url)
    try:
        for name in client.list_database_names():
            if name.endswith(suffix):
                client.drop_database(name)
    finally:
        client.close()
