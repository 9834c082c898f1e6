"""The whole system as separate processes (four services and the gateway) on the test stack."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from devstack.keys import DevSecrets, ensure_dev_secrets
from devstack.stack import EmbeddedStack
from devstack.system import System


@pytest.fixture(scope="session")
def dev_secrets(state_dir: Path) -> DevSecrets:
    return ensure_dev_secrets(state_dir)


@pytest.fixture(scope="session")
def system(stack: EmbeddedStack, dev_secrets: DevSecrets) -> Iterator[System]:
    running = System(stack)
    try:
        running.start_services(dev_secrets, db_suffix="_e2e", partitions=3)
        running.wait_ready(timeout=120)
        yield running
    finally:
        for proc in running.processes.values():
            proc.stop()
