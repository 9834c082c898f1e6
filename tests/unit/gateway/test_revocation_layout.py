"""One layout of logouts and ended logins for the gateway and the services, and every
service of ``make up`` / compose pointed at the gateway's Redis db to read it."""

from __future__ import annotations

from pathlib import Path

import yaml

from devstack.keys import ensure_dev_secrets
from devstack.system import SERVICES, service_env
from services.gateway.front_script import TokenKeys
from services.gateway.identity.sessions import Sessions
from shared.principal import Principal, Role
from shared.revocation import ENDED, REVOKED, block_key, jti_key, verdict
from tests.unit.test_dev_secrets_env import stack_at

ROOT = Path(__file__).resolve().parents[3]


def test_the_gateway_and_the_services_name_the_same_keys() -> None:
    principal = Principal(
        subject="pa-1", roles=frozenset({Role.PATIENT}), token_id="j-1", issued_at=100
    )
    sessions = Sessions.__new__(Sessions)
    sessions.prefix = "run:"
    assert sessions.token_keys(principal) == TokenKeys(
        jti_key("run:", "j-1"), block_key("run:", "pa-1"), 100
    )
    assert jti_key("run:", "j-1") == "run:auth:jti:j-1"
    assert block_key("run:", "pa-1") == "run:auth:block:pa-1"


def test_verdict() -> None:
    assert verdict(100, None, None) is None
    assert verdict(100, "1", None) == REVOKED
    assert verdict(100, None, "100") == ENDED  # ended in the second it was issued
    assert verdict(101, None, "100") is None  # issued after the end: a new login


def test_every_service_reads_the_gateways_redis(tmp_path: Path) -> None:
    secrets = ensure_dev_secrets(tmp_path)
    stack = stack_at(tmp_path)
    gateway = service_env("gateway", stack, secrets, 8080, environ={})
    for name in SERVICES:
        env = service_env(name, stack, secrets, 8101, environ={})
        prefix = f"CARELOOP_{name.upper()}_"
        assert env[prefix + "REDIS_URL"] != gateway["CARELOOP_GATEWAY_REDIS_URL"]
        assert env[prefix + "AUTH_REDIS_URL"] == gateway["CARELOOP_GATEWAY_REDIS_URL"]
    compose = yaml.safe_load((ROOT / "docker-compose.yml").read_text())["services"]
    gateway_redis = compose["gateway"]["environment"]["CARELOOP_GATEWAY_REDIS_URL"]
    for name in SERVICES:
        environment = compose[name]["environment"]
        assert environment[f"CARELOOP_{name.upper()}_AUTH_REDIS_URL"] == gateway_redis
