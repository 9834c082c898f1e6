"""Incoming hotline calls: the telephony tells of a call once (a repeat pops nothing), the
pop reaches the agents of the organization at that extension only (server-sent events,
audited), and a caller with no record is registered from the call."""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import pytest
from pymongo import AsyncMongoClient

from shared.mongo import Document
from shared.principal import Role
from tests.factories import make_national_id, make_phone
from tests.integration.appointments.conftest import Api
from tests.integration.appointments.test_hotline_search import (
    REASON,
    A,
    audit_records,
    register,
    search,
    staff,
)
from tests.support.patient_codes import add_patient

pytestmark = pytest.mark.integration

CALLS = f"{A}/staff/calls"


@dataclass
class Listener:
    """One agent's open call stream: the ``call`` events received so far."""

    ready: asyncio.Event = field(default_factory=asyncio.Event)
    events: list[dict[str, Any]] = field(default_factory=list)
    ids: list[str] = field(default_factory=list)


async def _listen(
    api: Api, headers: dict[str, str], extension: str, into: Listener, last_id: str | None
) -> None:
    extra = {"Last-Event-ID": last_id} if last_id else {}
    async with api.client.stream(
        "GET", f"{CALLS}/stream", params={"extension": extension}, headers={**headers, **extra}
    ) as reply:
        assert reply.status_code == 200, await reply.aread()
        assert reply.headers["content-type"].startswith("text/event-stream")
        kind = ""
        async for line in reply.aiter_lines():
            into.ready.set()  # the first line comes once the stream reads from "now"
            if line.startswith("event: "):
                kind = line.removeprefix("event: ")
            elif line.startswith("id: "):
                into.ids.append(line.removeprefix("id: "))
            elif line.startswith("data: ") and kind == "call":
                into.events.append(json.loads(line.removeprefix("data: ")))


@contextlib.asynccontextmanager
async def listening(
    api: Api, headers: dict[str, str], extension: str, last_id: str | None = None
) -> AsyncIterator[Listener]:
    listener = Listener()
    task = asyncio.create_task(_listen(api, headers, extension, listener, last_id))
    try:
        await asyncio.wait_for(listener.ready.wait(), 10)
        yield listener
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


async def until(check: Any, seconds: float = 10.0) -> None:
    for _ in range(int(seconds / 0.05)):
        if check():
            return
        await asyncio.sleep(0.05)
    raise AssertionError("timed out")


def telephony(api: Api) -> dict[str, str]:
    return api.token("cti", Role.SERVICE, org=None)


def call_body(call_id: str, number: str, extension: str = "8001", org: str | None = "h1") -> Any:
    return {"call_id": call_id, "caller_number": number, "extension": extension, "org_id": org}


async def test_a_call_pops_once_on_its_extension_of_its_organization(
    appointments_api: Api,
) -> None:
    api = appointments_api
    patient = await register(api, "孙悟空")
    mine, other_org = staff(api), api.token("agent-h2", Role.AGENT, org="h2")
    async with (
        listening(api, mine, "8001") as agent,
        listening(api, other_org, "8001") as stranger,
        listening(api, mine, "8002") as neighbour,
    ):
        body = call_body("cti-1.a:b", patient["phone"])
        first = await api.client.post(CALLS, headers=telephony(api), json=body)
        assert first.status_code == 201, first.text
        assert first.json() == {"call_id": "cti-1.a:b", "matches": 1}
        again = await api.client.post(CALLS, headers=telephony(api), json=body)
        assert (again.status_code, again.json()) == (200, first.json())
        await until(lambda: agent.events)
        await asyncio.sleep(1.5)  # a second pop, or one elsewhere, would be there by now
    (pop,) = agent.events
    assert stranger.events == []
    assert neighbour.events == []
    assert pop["call_id"] == "cti-1.a:b"
    assert pop["extension"] == "8001"
    assert pop["caller_masked"] == patient["phone_masked"]
    assert [m["id"] for m in pop["matches"]] == [patient["id"]]
    assert pop["matches"][0]["name_masked"] == "孙*空"
    assert patient["phone"] not in json.dumps(pop)
    (popped,) = await audit_records(api, "call.popped")
    assert popped["details"]["patient_ids"] == [patient["id"]]
    assert popped["actor_id"] == "agent-h1"

    # reconnecting after an earlier event replays what came since; the pop itself by id
    async with listening(api, mine, "8001", last_id="0-0") as back:
        await until(lambda: back.events)
    assert back.events == [pop]
    assert back.ids == agent.ids
    read = await api.client.get(f"{CALLS}/cti-1.a:b", headers=mine)
    assert (read.status_code, read.json()) == (200, pop)
    refused = await api.client.get(f"{CALLS}/cti-1.a:b", headers=other_org)
    assert refused.status_code == 403, refused.text


async def test_who_tells_of_calls_for_which_organization(appointments_api: Api) -> None:
    api = appointments_api
    number = make_phone()
    no_org = await api.client.post(
        CALLS, headers=telephony(api), json=call_body("c-2", number, org=None)
    )
    assert (no_org.status_code, no_org.json()["code"]) == (422, "org_id_required")
    admin_other = await api.client.post(
        CALLS, headers=api.admin, json=call_body("c-2", number, org="h2")
    )
    assert (admin_other.status_code, admin_other.json()["code"]) == (403, "forbidden_org")
    own = await api.client.post(CALLS, headers=api.admin, json=call_body("c-2", number, org=None))
    assert own.status_code == 201, own.text
    assert own.json()["matches"] == 0
    elsewhere = await api.client.post(
        CALLS, headers=telephony(api), json=call_body("c-2", number, org="h2")
    )
    assert (elsewhere.status_code, elsewhere.json()["code"]) == (409, "call_id_conflict")
    agent = await api.client.post(CALLS, headers=staff(api), json=call_body("c-3", number))
    assert agent.status_code == 403
    bad = await api.client.post(
        CALLS, headers=telephony(api), json=call_body("bad id!", "12ab", "1")
    )
    assert bad.status_code == 422
    client: AsyncMongoClient[Document] = AsyncMongoClient(api.settings.mongo_url)
    try:
        stored = await client[api.settings.database_name]["hotline_calls"].find().to_list()
    finally:
        await client.close()
    assert len(stored) == 1
    assert number not in json.dumps(stored, default=str)


async def test_a_caller_with_no_record_is_registered_from_the_call(appointments_api: Api) -> None:
    api = appointments_api
    number, national_id = make_phone(), make_national_id()
    told = await api.client.post(CALLS, headers=telephony(api), json=call_body("c-9", number))
    assert told.json()["matches"] == 0
    url, agent = f"{A}/staff/patients", staff(api)
    body = {"name": "周星星", "national_id": national_id, "call_id": "c-9"}
    both = await api.client.post(url, headers=agent, params=REASON, json={**body, "phone": number})
    assert (both.status_code, both.json()["code"]) == (422, "phone_or_call_required")
    blank = await api.client.post(url, headers=agent, params=REASON, json={**body, "name": " "})
    assert (blank.status_code, blank.json()["code"]) == (422, "name_invalid")
    created = await api.client.post(url, headers=agent, params=REASON, json=body)
    assert created.status_code == 201, created.text
    patient = created.json()
    assert patient["org_ids"] == ["h1"]
    assert patient["account_count"] == 0
    assert number not in created.text
    assert [m["id"] for m in await search(api, {"phone": number})] == [patient["id"]]
    again = await api.client.post(url, headers=agent, params=REASON, json=body)
    assert (again.status_code, again.json()["id"]) == (200, patient["id"])
    # the same national ID under another name: refused, nothing changed
    mismatch = await api.client.post(
        url, headers=agent, params=REASON, json={**body, "name": "周猩猩"}
    )
    assert (mismatch.status_code, mismatch.json()["code"]) == (409, "identity_mismatch")
    # a nurse of another organization registers the same person: now treated there too
    there = await register(
        api, "周星星", org="h2", role=Role.NURSE, national_id=national_id, expect=200
    )
    assert there["id"] == patient["id"]
    assert there["org_ids"] == ["h1", "h2"]
    foreign_call = await api.client.post(
        url, headers=staff(api, Role.AGENT, "h2"), params=REASON, json=body
    )
    assert foreign_call.status_code == 403, foreign_call.text
    (audited, *_rest) = await audit_records(api, "patient.registered_by_staff")
    assert audited["patient_id"] == patient["id"]

    # the next call from that number finds the caller
    told = await api.client.post(CALLS, headers=telephony(api), json=call_body("c-10", number))
    assert told.json()["matches"] == 1
    # the patient adds themselves in the app later: the code goes to the number on record
    # and the account is linked to this record
    mine = {"name": "周星星", "national_id": national_id, "phone": make_phone()}
    linked = await add_patient(api.client, api.settings, api.token("acct-zhou"), mine)
    assert (linked.status_code, linked.json()["id"]) == (201, patient["id"])
    client: AsyncMongoClient[Document] = AsyncMongoClient(api.settings.mongo_url)
    try:
        outbox = client[api.settings.database_name]["outbox"]
        events = await outbox.find({"key": patient["id"]}).sort("created_at", 1).to_list()
    finally:
        await client.close()
    types = [e["headers"]["ce_type"] for e in events]
    assert types[:2] == ["careloop.patient.registered"] * 2  # the staff's, then the account's
    accounts = [json.loads(e["value"])["data"]["account_id"] for e in events[:2]]
    assert accounts == [None, "acct-zhou"]
