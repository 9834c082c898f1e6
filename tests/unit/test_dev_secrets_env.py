"""``make up``: secrets the operator sets win over the dev key files in ``.data/keys``.

The README's key rotation (put the new key first in ``CARELOOP_*_PII_ENCRYPTION_KEYS`` and
restart) must take effect: the dev file only fills in what the environment leaves unset.
"""

from __future__ import annotations

from pathlib import Path

from devstack.keys import ensure_dev_secrets, secret_env
from devstack.processes import ManagedProcess
from devstack.stack import EmbeddedStack
from devstack.system import service_env
from shared.crypto import generate_key


def stack_at(state_dir: Path) -> EmbeddedStack:
    """A stack's addresses (its processes are not started: only the env is built)."""

    def process(name: str, port: int) -> ManagedProcess:
        return ManagedProcess(name=name, argv=[], port=port, log_path=state_dir / f"{name}.log")

    return EmbeddedStack(state_dir, process("kafka", 9092), process("mongo", 27017), None, 6379)


def test_operator_pii_keys_win_over_the_dev_file(tmp_path: Path) -> None:
    secrets = ensure_dev_secrets(tmp_path)
    rotated = f"new2:{generate_key()},{secrets.pii_encryption_keys}"
    operator = {"CARELOOP_APPOINTMENTS_PII_ENCRYPTION_KEYS": rotated}

    env = service_env("appointments", stack_at(tmp_path), secrets, 8101, environ=operator)
    # what the child process gets: the operator's environment, then the built variables
    child = {**operator, **env}

    assert child["CARELOOP_APPOINTMENTS_PII_ENCRYPTION_KEYS"] == rotated
    assert "CARELOOP_APPOINTMENTS_PII_ENCRYPTION_KEYS" not in env
    # what the operator left unset still comes from the dev files
    assert child["CARELOOP_APPOINTMENTS_PII_HASH_KEY"] == secrets.pii_hash_key
    assert child["CARELOOP_APPOINTMENTS_JWT_PUBLIC_KEY_FILE"] == str(secrets.jwt_public_key_file)
    assert child["CARELOOP_APPOINTMENTS_HTTP_PORT"] == "8101"


def test_without_operator_values_the_dev_file_fills_every_secret(tmp_path: Path) -> None:
    secrets = ensure_dev_secrets(tmp_path)
    env = service_env("gateway", stack_at(tmp_path), secrets, 8080, environ={})
    assert env["CARELOOP_GATEWAY_PII_ENCRYPTION_KEYS"] == secrets.pii_encryption_keys
    assert env["CARELOOP_GATEWAY_JWT_PRIVATE_KEY_FILE"] == str(secrets.jwt_private_key_file)
    assert env["CARELOOP_GATEWAY_BOOTSTRAP_ADMIN_PASSWORD"] == secrets.admin_password


def test_an_empty_operator_value_counts_as_unset(tmp_path: Path) -> None:
    secrets = ensure_dev_secrets(tmp_path)
    operator = {"CARELOOP_NOTIFICATIONS_PII_HASH_KEY": ""}
    env = secret_env("CARELOOP_NOTIFICATIONS_", secrets, gateway=False, environ=operator)
    assert env["CARELOOP_NOTIFICATIONS_PII_HASH_KEY"] == secrets.pii_hash_key
    assert "CARELOOP_NOTIFICATIONS_JWT_PRIVATE_KEY_FILE" not in env  # the gateway's only
