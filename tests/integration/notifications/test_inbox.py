"""The in-app inbox: list, unread count, mark read, and the live stream."""

from __future__ import annotations

import asyncio
import json

from tests.integration.notifications.conftest import NotificationsApi, booked, cancelled, facts


async def test_inbox_lists_counts_and_marks_read(notifications_api: NotificationsApi) -> None:
    api = notifications_api
    patient_id, account_id, _ = await api.register_patient()
    f = facts(patient_id, account_id)
    await api.publish(booked(f))
    await api.publish(cancelled(f))
    await api.wait_for_messages(2, patient_id=patient_id, channel="inbox")
    me = api.token(account_id)

    page = (await api.client.get("/v1/notifications/inbox", headers=me)).json()
    assert [i["kind"] for i in page["items"]] == ["appointment.cancelled", "appointment.booked"]
    assert page["unread"] == 2
    first = page["items"][0]["id"]
    marked = await api.client.post(
        "/v1/notifications/inbox/read", json={"ids": [first]}, headers=me
    )
    assert marked.json() == {"marked": 1, "unread": 1}
    count = await api.client.get("/v1/notifications/inbox/unread-count", headers=me)
    assert count.json() == {"unread": 1}
    paged = await api.client.get("/v1/notifications/inbox?limit=1", headers=me)
    assert paged.json()["next_before"] == first
    rest = await api.client.get(f"/v1/notifications/inbox?limit=1&before={first}", headers=me)
    assert [i["kind"] for i in rest.json()["items"]] == ["appointment.booked"]

    other = await api.client.get("/v1/notifications/inbox", headers=api.token("someone-else"))
    assert other.json()["items"] == []  # another account sees nothing of this one's
    assert (await api.client.get("/v1/notifications/inbox")).status_code == 401


async def test_stream_delivers_a_new_item_live(notifications_api: NotificationsApi) -> None:
    api = notifications_api
    patient_id, account_id, _ = await api.register_patient()
    received: list[dict[str, object]] = []
    ready = asyncio.Event()

    async def listen() -> None:
        async with api.client.stream(
            "GET", "/v1/notifications/inbox/stream", headers=api.token(account_id)
        ) as response:
            assert response.status_code == 200
            assert response.headers["content-type"].startswith("text/event-stream")
            event = None
            async for line in response.aiter_lines():
                if line.startswith("event: "):
                    event = line.removeprefix("event: ")
                    if event == "ready":
                        ready.set()
                elif line.startswith("data: ") and event == "message":
                    received.append(json.loads(line.removeprefix("data: ")))
                    return

    listener = asyncio.create_task(listen())
    await asyncio.wait_for(ready.wait(), 10)
    await api.publish(booked(facts(patient_id, account_id)))
    await asyncio.wait_for(listener, 30)
    assert received[0]["kind"] == "appointment.booked"
    assert received[0]["title"] == "预约成功"
    assert received[0]["patient_id"] == patient_id
