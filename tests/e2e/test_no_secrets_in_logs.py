"""No configured secret reaches any log (security review, issue 13).

The gateway and notifications run as processes with real providers' stand-ins: a WeChat
``code2session`` login (``secret=`` in its query), an SMS login code sent through the
Aliyun API (signed with the access key secret), Aliyun's delivery receipt callback
(``?token=`` in its URL) and WeChat's server check, all through the gateway. Then every
log file of the run is searched for every secret the processes' settings hold: the fields
named like a secret (``*secret*``, ``*key*``, ``*token*``, ``*password*``) or typed
``SecretStr``, found in the settings classes, not listed by hand.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import re
import secrets
import sys
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI, Query
from pydantic import SecretStr

from devstack.keys import DevSecrets
from devstack.processes import ManagedProcess, free_port
from devstack.stack import EmbeddedStack
from devstack.system import ROOT, service_env
from services.gateway.settings import GatewaySettings
from services.notifications.providers import aliyun_sms
from services.notifications.settings import NotificationsSettings
from shared.settings import ServiceSettings
from tests.e2e.conftest import TEST_RATE_LIMITS, drop_databases
from tests.factories import make_phone
from tests.support.provider_servers import (
    ALIYUN_KEY_ID,
    ALIYUN_SIGN_NAME,
    WECHAT_APP_ID,
    AliyunSmsServer,
    WechatServer,
)
from tests.support.server import serve

pytestmark = pytest.mark.e2e

SUFFIX = "_nosecrets"
SECRET_NAME = re.compile(r"secret|key|token|password", re.IGNORECASE)
# named like a secret but public or a number: key ids, public keys, prefixes, lifetimes
NOT_SECRET = re.compile(r"public|_id$|_ids$|prefix|_ttl|_seconds|_minutes|_hours|_days|_length")
WECHAT_LOGIN_APPID = "wx-login-app"
# the receipt callback's secret: the URL's token itself, or (newer) the secret it is made from
RECEIPT_FIELD = next(
    name
    for name in ("aliyun_receipt_secret", "aliyun_receipt_token")
    if name in NotificationsSettings.model_fields
)


def configured_secrets(settings: ServiceSettings) -> dict[str, str]:
    """Every secret value ``settings`` holds, by field name (a key file's lines, each key of
    a ``kid:key,...`` list, the value itself)."""
    found: dict[str, str] = {}
    for name, info in type(settings).model_fields.items():
        value = getattr(settings, name)
        if isinstance(value, SecretStr):
            value = value.get_secret_value()
        elif info.annotation is not str or not SECRET_NAME.search(name) or NOT_SECRET.search(name):
            continue
        if not value:
            continue
        if name.endswith("_file"):
            value = Path(value).read_text()
        parts = [value] if "\n" not in value else []
        parts += [line for line in value.splitlines() if len(line) >= 16 and "-----" not in line]
        parts += [e.rsplit(":", 1)[1] for e in value.split(",") if ":" in e and "\n" not in e]
        for position, part in enumerate(dict.fromkeys(p.strip() for p in parts)):
            if len(part) >= 8:
                found[f"{settings.service_name}.{name}[{position}]"] = part
    return found


def settings_of(cls: type[ServiceSettings], env: dict[str, str], mp: pytest.MonkeyPatch) -> Any:
    """The settings object the process built from ``env``."""
    with mp.context() as patched:
        for key, value in env.items():
            patched.setenv(key, value)
        return cls()


def code2session_app(secret: str) -> FastAPI:
    app = FastAPI()

    @app.get("/sns/jscode2session")
    async def code2session(
        appid: str, secret_: str = Query(alias="secret"), js_code: str = Query()
    ) -> dict[str, Any]:
        if (appid, secret_) != (WECHAT_LOGIN_APPID, secret):
            return {"errcode": 40125, "errmsg": "invalid appsecret"}
        return {"openid": js_code.removeprefix("ok-"), "session_key": "sk"}

    return app


@pytest.fixture
def logs(state_dir: Path) -> Path:
    path = state_dir / "logs-nosecrets"
    path.mkdir(parents=True, exist_ok=True)
    for old in path.glob("*.log"):
        old.unlink()
    return path


@pytest.fixture
def cleanup(stack: EmbeddedStack) -> Iterator[None]:
    yield
    drop_databases(stack.mongo_url, suffix=SUFFIX)


@pytest.fixture
async def providers() -> AsyncIterator[dict[str, Any]]:
    values = {
        "wechat_login_secret": "wxl-" + secrets.token_urlsafe(18),
        "aliyun_secret": "ali-" + secrets.token_urlsafe(18),
        "wechat_app_secret": "wxa-" + secrets.token_urlsafe(18),
        "receipt_token": "rcpt-" + secrets.token_urlsafe(18),
        "callback_token": "cb-" + secrets.token_urlsafe(18),
    }
    if RECEIPT_FIELD == "aliyun_receipt_secret":  # the URL's token is derived from it
        make_token = getattr(aliyun_sms, "receipt_token")  # noqa: B009 (absent before it)
        values["receipt_url_token"] = make_token(values["receipt_token"])
    else:
        values["receipt_url_token"] = values["receipt_token"]
    if "wechat_encoding_aes_key" in NotificationsSettings.model_fields:
        values["encoding_aes_key"] = secrets.token_hex(32)[:43]
    aliyun = AliyunSmsServer(access_key_secret=values["aliyun_secret"])
    weixin = WechatServer(app_secret=values["wechat_app_secret"])
    login = code2session_app(values["wechat_login_secret"])
    async with (
        serve(aliyun.app) as aliyun_url,
        serve(weixin.app) as weixin_url,
        serve(login) as login_url,
    ):
        yield {
            **values,
            "aliyun": aliyun,
            "aliyun_url": aliyun_url,
            "weixin_url": weixin_url,
            "login_url": login_url,
        }


def process_envs(
    stack: EmbeddedStack, dev: DevSecrets, ports: dict[str, int], p: dict[str, Any]
) -> dict[str, dict[str, str]]:
    common = {"KAFKA_TOPIC_PREFIX": "nosecrets", "KAFKA_GROUP_PREFIX": "nosecrets."}
    optional = {"WECHAT_ENCODING_AES_KEY": p["encoding_aes_key"]} if "encoding_aes_key" in p else {}
    extra = {
        "notifications": {
            **common,
            "REDIS_KEY_PREFIX": "nosecrets:",
            "SMS_PROVIDER": "aliyun",
            "WECHAT_PROVIDER": "wechat",
            "ALIYUN_SMS_ENDPOINT": p["aliyun_url"] + "/",
            "ALIYUN_ACCESS_KEY_ID": ALIYUN_KEY_ID,
            "ALIYUN_ACCESS_KEY_SECRET": p["aliyun_secret"],
            "ALIYUN_SMS_SIGN_NAME": ALIYUN_SIGN_NAME,
            RECEIPT_FIELD.upper(): p["receipt_token"],
            **optional,
            "WECHAT_API_BASE": p["weixin_url"],
            "WECHAT_APP_ID": WECHAT_APP_ID,
            "WECHAT_APP_SECRET": p["wechat_app_secret"],
            "WECHAT_CALLBACK_TOKEN": p["callback_token"],
            "SMS_TEMPLATE_CODES": json.dumps({"auth.login_code": "SMS_200001"}),
            "QUIET_HOURS_START": "",
            "QUIET_HOURS_END": "",
        },
        "gateway": {
            **common,
            "REDIS_KEY_PREFIX": "nosecrets:",
            "RATE_LIMITS": json.dumps(TEST_RATE_LIMITS),
            "WECHAT_APPID": WECHAT_LOGIN_APPID,
            "WECHAT_SECRET": p["wechat_login_secret"],
            "WECHAT_API_BASE": p["login_url"],
            "SERVICE_URLS": json.dumps(
                {
                    name: f"http://127.0.0.1:{ports.get(name) or free_port()}"
                    for name in ("appointments", "referrals", "notifications", "followup")
                }
            ),
        },
    }
    envs = {}
    for name, values in extra.items():
        env = service_env(name, stack, dev, ports[name], db_suffix=SUFFIX, partitions=1)
        prefix = f"CARELOOP_{name.upper()}_"
        env.update({prefix + key: value for key, value in values.items()})
        env[prefix + "LOG_LEVEL"] = "INFO"
        envs[name] = env
    return envs


def read_logs(folder: Path) -> dict[str, str]:
    return {path.name: path.read_text(errors="replace") for path in folder.glob("*.log")}


async def wait_ready(client: httpx.AsyncClient, procs: list[ManagedProcess]) -> None:
    """Notifications ready, the gateway up (its /readyz waits for every service)."""
    deadline = time.monotonic() + 90
    for proc in procs:
        path = "/healthz" if proc.name == "gateway" else "/readyz"
        while True:
            assert proc.running, proc.log_path.read_text(errors="replace")[-3000:]
            try:
                response = await client.get(f"http://127.0.0.1:{proc.port}{path}")
                if response.status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            assert time.monotonic() < deadline, f"{proc.name} not ready"
            await asyncio.sleep(0.2)


async def journey(gateway_url: str, p: dict[str, Any]) -> None:
    """WeChat login, SMS code login, the SMS receipt and WeChat's check, via the gateway."""
    aliyun: AliyunSmsServer = p["aliyun"]
    async with httpx.AsyncClient(base_url=gateway_url, timeout=20) as gw:
        wechat = await gw.post("/v1/auth/login/wechat", json={"code": "ok-openid-nosecrets"})
        assert wechat.status_code == 200, wechat.text

        phone = make_phone()
        asked = await gw.post("/v1/auth/otp", json={"phone": phone})
        assert asked.status_code == 202, asked.text
        for _ in range(200):
            if aliyun.sends:
                break
            await asyncio.sleep(0.1)
        [send] = aliyun.sends
        login = await gw.post(
            "/v1/auth/login/otp", json={"phone": phone, "code": send.params["code"]}
        )
        assert login.status_code == 200, login.text

        report = [
            {
                "phone_number": phone,
                "send_time": "2026-11-24 10:00:00",
                "report_time": "2026-11-24 10:00:05",
                "success": True,
                "err_code": "DELIVERED",
                "err_msg": "用户接收成功",
                "sms_size": "1",
                "biz_id": send.biz_id,
                "out_id": send.out_id,
            }
        ]
        receipt = await gw.post(
            "/v1/notifications/providers/aliyun/sms-receipts",
            params={"token": p["receipt_url_token"]},
            json=report,
        )
        assert receipt.status_code == 200, receipt.text

        timestamp, nonce = str(int(time.time())), "n0nce"
        signed = "".join(sorted([p["callback_token"], timestamp, nonce]))
        signature = hashlib.sha1(signed.encode()).hexdigest()  # noqa: S324 (WeChat's scheme)
        check = await gw.get(
            "/v1/notifications/providers/wechat/events",
            params={
                "signature": signature,
                "timestamp": timestamp,
                "nonce": nonce,
                "echostr": "e1",
            },
        )
        assert (check.status_code, check.text) == (200, "e1")


async def test_no_configured_secret_reaches_any_log(
    stack: EmbeddedStack,
    dev_secrets: DevSecrets,
    providers: dict[str, Any],
    logs: Path,
    cleanup: None,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    ports = {"notifications": free_port(), "gateway": free_port()}
    envs = process_envs(stack, dev_secrets, ports, providers)
    procs = [
        ManagedProcess(
            name=name,
            argv=[sys.executable, "-m", f"services.{name}"],
            port=ports[name],
            log_path=logs / f"{name}.log",
            env=envs[name],
            cwd=ROOT,
        ).start(wait=False)
        for name in ("notifications", "gateway")
    ]
    try:
        async with httpx.AsyncClient(timeout=2) as client:
            await wait_ready(client, procs)
        await journey(f"http://127.0.0.1:{ports['gateway']}", providers)
    finally:
        for proc in procs:
            proc.stop()

    found = {
        **configured_secrets(settings_of(GatewaySettings, envs["gateway"], monkeypatch)),
        **configured_secrets(
            settings_of(NotificationsSettings, envs["notifications"], monkeypatch)
        ),
    }
    names = {key.split("[")[0] for key in found}
    found["the receipt URL's token"] = providers["receipt_url_token"]
    assert {  # the enumeration sees the secrets this run configured
        "gateway.wechat_secret",
        "gateway.jwt_private_key_file",
        "gateway.bootstrap_admin_password",
        "gateway.pii_encryption_keys",
        "gateway.pii_hash_key",
        "notifications.aliyun_access_key_secret",
        "notifications." + RECEIPT_FIELD,
        "notifications.wechat_app_secret",
        "notifications.wechat_callback_token",
    } <= names, names
    texts = read_logs(logs)
    assert set(texts) == {"gateway.log", "notifications.log"}
    assert all(texts.values())
    leaks = sorted(
        f"{name} in {log}"
        for log, text in texts.items()
        for name, value in found.items()
        if value in text
    )
    assert not leaks
