"""With ``environment=production`` a service refuses development settings (issue 13).

The sandbox providers (their records hold login codes an admin could read), any of the
devstack's development keys, and a gateway without trusted proxies (every client would
look like the ingress, per-address limits would be global) stop the start at settings
validation, with a message that names each problem and holds no secret.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from fastapi import FastAPI
from pydantic import ValidationError

from devstack.keys import DevSecrets, ensure_dev_secrets, secret_env
from services.appointments.app import create_app as appointments_app
from services.appointments.settings import AppointmentsSettings
from services.followup.settings import FollowupSettings
from services.gateway.app import create_app as gateway_app
from services.gateway.settings import GatewaySettings
from services.notifications.app import create_app as notifications_app
from services.notifications.settings import NotificationsSettings
from services.referrals.settings import ReferralsSettings
from shared.auth import generate_ed25519_keypair
from shared.crypto import FieldCipher, generate_key
from shared.settings import DEV_PEM_MARKER, ServiceSettings

pytestmark = pytest.mark.unit

PRIVATE_PEM, PUBLIC_PEM = generate_ed25519_keypair()
PROD_SECRETS = {
    "pii_encryption_keys": f"k2026:{generate_key()},k2025:{generate_key()}",
    "pii_hash_key": generate_key(),
    "jwt_public_key": PUBLIC_PEM,
}
GATEWAY = {
    "trusted_proxies": ["10.0.0.0/8"],
    "jwt_private_key": PRIVATE_PEM,
    "bootstrap_admin_password": "Correct-Horse-Battery-9",
}
NOTIFICATIONS = {
    "sms_provider": "aliyun",
    "wechat_provider": "wechat",
    "aliyun_access_key_id": "LTAI-prod",
    "aliyun_access_key_secret": "aliyun-prod-secret-value",
    "aliyun_sms_sign_name": "CareLoop",
    "wechat_app_id": "wx-prod",
    "wechat_app_secret": "wechat-prod-secret-value",
}
SERVICES: list[tuple[type[ServiceSettings], dict[str, Any]]] = [
    (AppointmentsSettings, {}),
    (ReferralsSettings, {}),
    (FollowupSettings, {}),
    (NotificationsSettings, NOTIFICATIONS),
    (GatewaySettings, GATEWAY),
]


def production(cls: type[ServiceSettings], **overrides: Any) -> Any:
    return cls(environment="production", **{**PROD_SECRETS, **overrides})


def refusal(cls: type[ServiceSettings], **overrides: Any) -> str:
    with pytest.raises(ValidationError) as raised:
        production(cls, **overrides)
    message = str(raised.value)
    assert "environment=production refuses to start" in message
    assert "input_value" not in message  # pydantic would print (part of) every setting
    for value in (*PROD_SECRETS.values(), *GATEWAY.values(), *overrides.values()):
        if isinstance(value, str) and len(value) > 12 and value not in ("aliyun", "wechat"):
            assert value not in message  # no secret in the error (nor the input at all)
    return message


@pytest.mark.parametrize(("cls", "extra"), SERVICES, ids=lambda v: getattr(v, "__name__", ""))
def test_a_correct_production_config_starts(
    cls: type[ServiceSettings], extra: dict[str, Any]
) -> None:
    settings = production(cls, **extra)
    assert settings.is_production
    assert settings.production_problems() == []
    cipher = FieldCipher.from_settings(settings.pii_encryption_keys, settings.pii_hash_key)
    assert cipher.active_kid == "k2026"


@pytest.mark.parametrize(
    ("build", "cls", "extra"),
    [
        (appointments_app, AppointmentsSettings, {}),
        (notifications_app, NotificationsSettings, NOTIFICATIONS),
        (gateway_app, GatewaySettings, GATEWAY),
    ],
    ids=["appointments", "notifications", "gateway"],
)
def test_the_apps_build_on_a_production_config(
    build: Any, cls: type[ServiceSettings], extra: dict[str, Any]
) -> None:
    assert isinstance(build(production(cls, **extra)), FastAPI)


def test_notifications_refuses_the_sandbox_providers() -> None:
    sms = refusal(NotificationsSettings, **{**NOTIFICATIONS, "sms_provider": "sandbox"})
    assert "sms_provider is 'sandbox'" in sms
    assert "wechat_provider" not in sms
    wechat = refusal(NotificationsSettings, **{**NOTIFICATIONS, "wechat_provider": "sandbox"})
    assert "wechat_provider is 'sandbox'" in wechat
    default = refusal(NotificationsSettings)  # the defaults are the sandbox
    assert "sms_provider" in default
    assert "wechat_provider" in default
    typo = refusal(NotificationsSettings, **{**NOTIFICATIONS, "sms_provider": "aliyn"})
    assert "sms_provider is 'aliyn'" in typo  # anything else falls back to the sandbox


def test_the_gateway_refuses_to_run_without_trusted_proxies() -> None:
    message = refusal(GatewaySettings, **{**GATEWAY, "trusted_proxies": []})
    assert "trusted_proxies is empty" in message


@pytest.mark.parametrize("kid", ["dev1", "test1", "DEV-2", "dev"])
def test_development_pii_keys_are_refused(kid: str) -> None:
    keys = f"k2026:{generate_key()},{kid}:{generate_key()}"
    message = refusal(AppointmentsSettings, pii_encryption_keys=keys)
    assert f"development key {kid!r}" in message
    message = refusal(AppointmentsSettings, pii_hash_key=f"dev:{generate_key()}")
    assert "pii_hash_key is a development key" in message


def test_development_jwt_keys_and_admin_password_are_refused(tmp_path: Path) -> None:
    marked_public = f"{DEV_PEM_MARKER}\n{PUBLIC_PEM}"
    assert "jwt_public_key is the development" in refusal(
        ReferralsSettings, jwt_public_key=marked_public
    )
    private_file = tmp_path / "jwt_private.pem"
    private_file.write_text(f"{DEV_PEM_MARKER}\n{PRIVATE_PEM}")
    message = refusal(
        GatewaySettings,
        **{**GATEWAY, "jwt_private_key": "", "jwt_private_key_file": str(private_file)},
    )
    assert "jwt_private_key is the development" in message
    message = refusal(GatewaySettings, **{**GATEWAY, "bootstrap_admin_password": "Dev-abcdefgh12"})
    assert "bootstrap_admin_password is the devstack's" in message


def _from_devstack(name: str, secrets: DevSecrets, **env: str) -> dict[str, str]:
    prefix = f"CARELOOP_{name.upper()}_"
    values = secret_env(prefix, secrets, gateway=name == "gateway", environ={})
    return {key.removeprefix(prefix).lower(): value for key, value in {**values, **env}.items()}


def test_every_devstack_secret_is_refused_in_production(tmp_path: Path) -> None:
    """What ``make up`` configures runs in development and is refused, key by key, in
    production; every message names the field, none holds a value."""
    secrets = ensure_dev_secrets(tmp_path)
    dev = _from_devstack("gateway", secrets)
    GatewaySettings(**dev)  # fine outside production
    with pytest.raises(ValidationError) as raised:
        GatewaySettings(**dev, environment="production", trusted_proxies=["10.0.0.0/8"])
    message = str(raised.value)
    for problem in (
        "pii_encryption_keys holds the development key 'dev1'",
        "pii_hash_key is a development key",
        "jwt_public_key is the development",
        "jwt_private_key is the development",
        "bootstrap_admin_password is the devstack's",
    ):
        assert problem in message
    pii = json.loads((tmp_path / "keys" / "pii.json").read_text())
    for secret in (
        secrets.admin_password,
        pii["encryption_keys"].split(":")[1],
        pii["hash_key"].split(":")[1],
        secrets.jwt_private_key_file.read_text().splitlines()[2],
    ):
        assert secret not in message


def test_key_ids_that_only_begin_like_a_development_one_are_fine() -> None:
    keys = f"device2026:{generate_key()},testament:{generate_key()}"
    assert production(AppointmentsSettings, pii_encryption_keys=keys).production_problems() == []


def test_devstack_files_made_before_the_marks_get_them(tmp_path: Path) -> None:
    """An existing ``.data/keys`` keeps its key material (the data stays readable) and is
    marked as development keys."""
    keys = tmp_path / "keys"
    keys.mkdir()
    hash_key, pii_keys = generate_key(), f"dev1:{generate_key()}"
    (keys / "pii.json").write_text(json.dumps({"encryption_keys": pii_keys, "hash_key": hash_key}))
    (keys / "jwt_private.pem").write_text(PRIVATE_PEM)
    (keys / "jwt_public.pem").write_text(PUBLIC_PEM)
    secrets = ensure_dev_secrets(tmp_path)
    assert secrets.pii_hash_key == f"dev:{hash_key}"
    assert secrets.pii_encryption_keys == pii_keys
    assert secrets.jwt_private_key_file.read_text() == f"{DEV_PEM_MARKER}\n{PRIVATE_PEM}"
    again = ensure_dev_secrets(tmp_path)  # marked once
    assert again.pii_hash_key == secrets.pii_hash_key
    assert again.jwt_public_key_file.read_text() == f"{DEV_PEM_MARKER}\n{PUBLIC_PEM}"
    # the marked files still work: the same lookup hashes, the same signing key
    before = FieldCipher.from_settings(pii_keys, hash_key)
    after = FieldCipher.from_settings(secrets.pii_encryption_keys, secrets.pii_hash_key)
    phone = "13800138000"
    assert before.lookup_hash(phone, kind="phone") == after.lookup_hash(phone, kind="phone")
    assert after.decrypt(before.encrypt("x", context="c"), context="c") == "x"


def test_no_validation_error_echoes_a_setting() -> None:
    """A malformed secret is named, never printed (pydantic shows the input by default)."""
    secret = "not-an-aes-key-but-a-secret-" + generate_key()
    with pytest.raises(ValidationError) as raised:
        NotificationsSettings(wechat_encoding_aes_key=secret)
    message = str(raised.value)
    assert "wechat_encoding_aes_key" in message
    assert secret not in message
    assert secret[-12:] not in message
