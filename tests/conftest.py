"""Test session fixtures: the real embedded stack on free ports, fresh names per test.

One Tansu broker, one SecantusDB and one Redis serve the whole session; each test gets
its own database name and its own topic prefix, so tests never see each other's data.
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
from pymongo import AsyncMongoClient

from devstack.stack import EmbeddedStack
from shared.auth import TokenMinter, generate_ed25519_keypair
from shared.crypto import generate_key
from shared.ids import new_id
from shared.mongo import Document
from shared.settings import ServiceSettings


@pytest.fixture(scope="session")
def state_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("careloop")


@pytest.fixture(scope="session")
def stack(state_dir: Path) -> Iterator[EmbeddedStack]:
    # a killed process's open transaction holds its writes until it is reaped: 60 s in
    # mongod and under make up, 15 s here, so crash tests do not wait a minute
    started = EmbeddedStack.start(state_dir, persistent_mongo=False, transaction_lifetime=15.0)
    yield started
    started.stop()


@pytest.fixture(scope="session")
def jwt_keys() -> tuple[str, str]:
    return generate_ed25519_keypair()


@pytest.fixture(scope="session")
def minter(jwt_keys: tuple[str, str]) -> TokenMinter:
    return TokenMinter(jwt_keys[0], issuer="careloop-gateway", audience="careloop")


@pytest.fixture(scope="session")
def pii_keys() -> dict[str, str]:
    return {"pii_encryption_keys": f"test1:{generate_key()}", "pii_hash_key": generate_key()}


@pytest.fixture
def run_id() -> str:
    return "t" + new_id().replace("-", "")[-12:]


@pytest.fixture
def make_settings(
    stack: EmbeddedStack, run_id: str, jwt_keys: tuple[str, str], pii_keys: dict[str, str]
):  # type: ignore[no-untyped-def]
    """Settings for a service under test, on this test's own database and topics."""

    def build(
        service: str = "testsvc", cls: type[ServiceSettings] = ServiceSettings, **overrides: object
    ) -> ServiceSettings:
        values: dict[str, object] = {
            "service_name": service,
            "mongo_url": stack.mongo_url,
            "mongo_db": f"{run_id}_{service}",
            "kafka_bootstrap": stack.kafka_bootstrap,
            "kafka_topic_prefix": run_id,
            "kafka_group_prefix": f"{run_id}.",  # groups of their own per test
            "kafka_session_timeout_ms": 3000,  # first join ~1.5 s instead of ~5 s
            "kafka_heartbeat_interval_ms": 300,
            "kafka_partitions": 3,
            "redis_url": stack.redis_url(),
            "redis_key_prefix": f"{run_id}:",
            "jwt_public_key": jwt_keys[1],
            "log_json": True,
            "outbox_poll_seconds": 0.1,
            "jobs_poll_seconds": 0.1,
            "consumer_retry_base_seconds": 0.05,
            **pii_keys,
            **overrides,
        }
        return cls(**values)  # type: ignore[arg-type]

    return build


@pytest.fixture
async def mongo(stack: EmbeddedStack) -> AsyncIterator[AsyncMongoClient[Document]]:
    client: AsyncMongoClient[Document] = AsyncMongoClient(stack.mongo_url, tz_aware=True)
    yield client
    await client.close()


def pytest_configure(config: pytest.Config) -> None:
    os.environ.setdefault("CARELOOP_TESTING", "1")


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Under ``make test``'s workers (pytest-xdist, ``--dist loadgroup``) a test file runs
    whole on one worker, in its order, so its module fixtures are set up once. The API fuzz
    runs (one per role, minutes each) are spread one by one. Every worker has its own
    embedded stack and, for e2e tests, its own system on free ports."""
    for item in items:
        path = item.nodeid.split("::", 1)[0]
        group = item.nodeid if path.endswith("test_api_fuzz.py") else path
        item.add_marker(pytest.mark.xdist_group(group))
