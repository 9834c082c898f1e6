"""Every process answers health, readiness and metrics; the gateway routes; logs stay private."""

from __future__ import annotations

import json
import time
from typing import Any

import httpx
import pytest

from devstack.keys import DevSecrets
from devstack.system import SERVICES, System
from shared.auth import TokenMinter
from tests.factories import make_national_id, make_phone

pytestmark = pytest.mark.e2e


@pytest.mark.parametrize("name", [*SERVICES, "gateway"])
def test_every_process_answers_health_readiness_and_metrics(system: System, name: str) -> None:
    base = f"http://127.0.0.1:{system.ports[name]}"
    with httpx.Client(timeout=5) as client:
        health = client.get(f"{base}/healthz")
        assert health.status_code == 200
        assert health.json()["service"] == name
        ready = client.get(f"{base}/readyz")
        assert ready.status_code == 200, ready.text
        assert set(ready.json()["checks"].values()) == {"ok"}
        metrics = client.get(f"{base}/metrics")
        assert metrics.status_code == 200
        assert f'careloop_service_info{{service="{name}"}} 1.0' in metrics.text
        assert "careloop_http_requests_total" in metrics.text


def test_gateway_readiness_reports_every_service(system: System) -> None:
    body = httpx.get(f"{system.gateway_url}/readyz", timeout=5).json()
    assert body["status"] == "ready"
    assert body["services"] == {name: "ok" for name in SERVICES}


def test_gateway_routes_to_services_and_passes_the_request_id(
    system: System, dev_secrets: DevSecrets
) -> None:
    refused = httpx.get(
        f"{system.gateway_url}/v1/referrals/ops/outbox",
        headers={"x-request-id": "trace-me-123"},
        timeout=5,
    )
    assert refused.status_code == 401  # the front door wants a token
    assert refused.headers["content-type"] == "application/problem+json"
    assert refused.json()["code"] == "token_missing"
    # the gateway names every request itself; the client's id is only logged beside it
    assert refused.json()["request_id"] == refused.headers["x-request-id"] != "trace-me-123"

    admin = {"authorization": f"Bearer {admin_token(dev_secrets)}", "x-request-id": "trace-me-456"}
    routed = httpx.get(f"{system.gateway_url}/v1/referrals/ops/outbox", headers=admin, timeout=5)
    assert routed.status_code == 200, routed.text
    request_id = routed.headers["x-request-id"]
    assert request_id != "trace-me-456"
    gateway_lines = _lines_with(_wait_for_log(system, "gateway", "trace-me-456"), "trace-me-456")
    assert {line.get("request_id") for line in gateway_lines} == {request_id}
    assert request_id in _wait_for_log(system, "referrals", request_id)  # passed on
    unknown = httpx.get(f"{system.gateway_url}/v1/pharmacy/things", headers=admin, timeout=5)
    assert unknown.status_code == 404
    assert unknown.json()["code"] == "unknown_service"


def admin_token(secrets: DevSecrets) -> str:
    minter = TokenMinter(
        secrets.jwt_private_key_file.read_text(), issuer="careloop-gateway", audience="careloop"
    )
    return minter.mint("ops-admin", ["admin"])


def test_merged_openapi_lists_every_service(system: System) -> None:
    doc = httpx.get(f"{system.gateway_url}/openapi.json", timeout=10).json()
    for name in SERVICES:
        assert f"/v1/{name}/ops/dead-letters" in doc["paths"], name
    docs_page = httpx.get(f"{system.gateway_url}/docs", timeout=5)
    assert docs_page.status_code == 200
    assert "/docs/static/swagger-ui-bundle.js" in docs_page.text
    assert "cdn" not in docs_page.text.lower()


def test_logs_of_a_request_never_hold_a_full_national_id_or_phone(
    system: System, dev_secrets: DevSecrets
) -> None:
    national_id, phone = make_national_id(), make_phone()
    marker = "privacy-check-" + national_id[-4:]
    with httpx.Client(timeout=5) as client:
        client.get(
            f"{system.gateway_url}/v1/appointments/ops/outbox",
            params={"national_id": national_id, "phone": phone},
            headers={"x-request-id": marker, "authorization": f"Bearer {admin_token(dev_secrets)}"},
        )
    gateway_log = _wait_for_log(system, "gateway", marker)
    request_ids = {line["request_id"] for line in _lines_with(gateway_log, marker)}
    assert len(request_ids) == 1, request_ids  # the client's id is logged beside the gateway's
    (request_id,) = request_ids
    logs = {
        "gateway": gateway_log,
        "appointments": _wait_for_log(system, "appointments", request_id),
    }
    for name, text in logs.items():
        lines = _lines_with(text, request_id)
        assert lines, f"{name} logged nothing for the request"
        assert national_id not in text, name
        assert phone not in text, name
        joined = json.dumps(lines, ensure_ascii=False)
        # a logged query keeps its names, never its values
        assert "national_id=[redacted]" in joined, name
        assert national_id[-4:] + "&" not in joined, name


def _lines_with(text: str, needle: str) -> list[dict[str, Any]]:
    return [
        json.loads(line) for line in text.splitlines() if line.startswith("{") and needle in line
    ]


def _wait_for_log(system: System, name: str, marker: str) -> str:
    path = system.stack.state_dir / "logs" / f"{name}.log"
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        text = path.read_text()
        if marker in text:
            return text
        time.sleep(0.1)
    return path.read_text()
