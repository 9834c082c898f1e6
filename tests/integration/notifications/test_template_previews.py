"""Template previews are for admins and cannot freeze the service: they render in a worker
process with a time and an output limit; publishing renders its drafts there too."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest

from services.notifications.message_kinds import ChannelTemplate
from services.notifications.preview_worker import TemplateSandbox
from services.notifications.rendering import OutputTooLarge, RenderError, TemplateTooSlow
from shared.principal import Role
from tests.integration.notifications.conftest import NotificationsApi, running_notifications

pytestmark = pytest.mark.integration

PREVIEW = "/v1/notifications/templates/appointment.booked/preview"
VERSIONS = "/v1/notifications/templates/appointment.booked/versions"
# ~10 s of Jinja on this machine's event loop, were it rendered there (144 M iterations)
RUNAWAY = "{% for i in range(12000) %}{% for j in range(12000) %}{% endfor %}{% endfor %}ok"
HUGE = "{% for i in range(99999) %}{{ '0123456789' }}{% endfor %}"


@pytest.fixture
async def api(notifications_settings: Any, minter: Any) -> AsyncIterator[NotificationsApi]:
    settings = notifications_settings(
        template_preview_timeout_seconds=2.0, template_max_output_bytes=16 * 1024
    )
    async with running_notifications(settings, minter) as api:
        yield api


def draft(body: str) -> dict[str, Any]:
    return {"channel": "sms", "language": "zh-CN", "draft": {"body": body}}


async def test_only_admins_preview(api: NotificationsApi) -> None:
    for role in (Role.AGENT, Role.NURSE, Role.DOCTOR, Role.COORDINATOR, Role.PATIENT):
        reply = await api.client.post(PREVIEW, json=draft("hi"), headers=api.token("u", role))
        assert reply.status_code == 403, role
    admin = api.token("admin-1", Role.ADMIN)
    ok = await api.client.post(PREVIEW, json=draft("您好 {{ resource_name }}"), headers=admin)
    assert ok.status_code == 200, ok.text
    assert ok.json()["body"] == "您好 王医生"


async def test_a_runaway_preview_is_stopped_while_the_service_keeps_serving(
    api: NotificationsApi,
) -> None:
    admin = api.token("admin-1", Role.ADMIN)
    agent = api.token("agent-1", Role.AGENT)
    warm = await api.client.post(PREVIEW, json=draft("hi"), headers=admin)  # a worker is up
    assert warm.status_code == 200, warm.text

    runaway = asyncio.create_task(api.client.post(PREVIEW, json=draft(RUNAWAY), headers=admin))
    await asyncio.sleep(0.3)  # the render is under way
    async with httpx.AsyncClient(base_url=str(api.client.base_url), timeout=30) as other:
        health = await other.get("/healthz")
        kinds = await other.get("/v1/notifications/templates", headers=agent)
    assert health.status_code == 200
    assert kinds.status_code == 200
    assert not runaway.done()  # answered while the runaway was still rendering

    stopped = await runaway
    assert stopped.status_code == 422, stopped.text
    assert stopped.json()["code"] == "template_too_slow"
    assert stopped.headers["content-type"].startswith("application/problem+json")

    after = await api.client.post(PREVIEW, json=draft("又好了 {{ number }}"), headers=admin)
    assert after.status_code == 200, after.text
    assert after.json()["body"] == "又好了 7"


async def test_too_large_output_is_refused(api: NotificationsApi) -> None:
    admin = api.token("admin-1", Role.ADMIN)
    for body in (HUGE, "{{ 'x' * 100000000 }}", "{{ 'x' | center(2000000000) }}"):
        reply = await api.client.post(PREVIEW, json=draft(body), headers=admin)
        assert reply.status_code == 422, (body, reply.text)
        assert reply.json()["code"] == "template_output_too_large", body
    fine = await api.client.post(PREVIEW, json=draft("{{ 'ab' * 3 }}"), headers=admin)
    assert fine.json()["body"] == "ababab"


async def test_a_runaway_draft_is_not_published(api: NotificationsApi) -> None:
    admin = api.token("admin-1", Role.ADMIN)
    for body, code in ((RUNAWAY, "template_too_slow"), (HUGE, "template_output_too_large")):
        reply = await api.client.post(
            VERSIONS,
            json={"templates": {"zh-CN": {"sms": {"body": body}}}, "note": "runaway"},
            headers=admin,
        )
        assert reply.status_code == 422, reply.text
        assert reply.json()["code"] == code
        assert reply.json()["channel"] == "sms"
    detail = await api.client.get("/v1/notifications/templates/appointment.booked", headers=admin)
    assert detail.json()["versions"] == []


async def test_the_sandbox_replaces_a_killed_worker() -> None:
    sandbox = TemplateSandbox(timeout=1.0, max_output=1024, concurrency=1)
    try:
        ok = await sandbox.render(ChannelTemplate(body="{{ a }}+{{ b }}"), {"a": 1, "b": "二"})
        assert ok.body == "1+二"
        with pytest.raises(TemplateTooSlow):
            await sandbox.render(ChannelTemplate(body=RUNAWAY), {})
        with pytest.raises(OutputTooLarge):
            await sandbox.render(ChannelTemplate(body=HUGE), {})
        with pytest.raises(RenderError, match="undefined"):
            await sandbox.render(ChannelTemplate(body="{{ missing }}"), {})
        again = await sandbox.render(ChannelTemplate(fields={"thing1": "{{ a }}"}), {"a": "x"})
        assert again.fields == {"thing1": "x"}
    finally:
        await sandbox.aclose()
    assert not sandbox._all  # every worker stopped
