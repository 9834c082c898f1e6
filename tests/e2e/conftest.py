"""The whole system as separate processes (four services and the gateway) on the test stack."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

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


@pytest.fixture(scope="session")
def system(stack: EmbeddedStack, dev_secrets: DevSecrets) -> Iterator[System]:
    running = System(stack)
    try:
        running.start_services(
            dev_secrets,
            db_suffix="_e2e",
            partitions=3,
            extra_env={"gateway": {"CARELOOP_GATEWAY_RATE_LIMITS": json.dumps(TEST_RATE_LIMITS)}},
        )
        running.wait_ready(timeout=120)
        yield running
    finally:
        for proc in running.processes.values():
            proc.stop()
