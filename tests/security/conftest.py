"""Every service in-process on the test stack, and a world of data owned by patient account A.

The four services share one Kafka topic prefix, so notifications learns about A's patient
and booking (referrals and followup about A's patients) from the appointments service's
own events, as in production. Account A has a patient with a booking, two waitlist
entries, a rebooking offer (from a cancelled session), inbox items and messages, referrals
(``seed_referrals.py``), follow-up plans, a complaint and a survey
(``seed_followup.py``) and an admission notice with a bed offer (``seed_beds.py``);
account B has a patient and a booking of its own.
``World.ids`` maps the matrix's placeholders to A's real ids.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Mapping
from contextlib import AsyncExitStack
from dataclasses import dataclass, field
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from devstack.stack import EmbeddedStack
from services.appointments.app import create_app as appointments_app
from services.appointments.bootstrap import built
from services.appointments.settings import AppointmentsSettings
from services.followup.app import create_app as followup_app
from services.followup.settings import FollowupSettings
from services.notifications.app import create_app as notifications_app
from services.notifications.settings import NotificationsSettings
from services.notifications.store import MESSAGES
from services.referrals.app import create_app as referrals_app
from services.referrals.settings import ReferralsSettings
from shared.auth import TokenMinter
from shared.ids import new_id
from shared.principal import Principal, Role
from shared.settings import ServiceSettings
from tests.factories import make_national_id, make_phone
from tests.integration.appointments.conftest import ORG, Api, seed_master_data
from tests.security.seed_beds import seed_beds
from tests.security.seed_followup import seed_followup
from tests.security.seed_hotline import seed_hotline
from tests.security.seed_referrals import seed_referrals
from tests.security.seed_transport import seed_transport
from tests.support.kafka import wait_until
from tests.support.patient_codes import add_patient
from tests.support.server import serve

ALIYUN_TOKEN = "matrix-aliyun-receipt-token"
WECHAT_TOKEN = "matrix-wechat-callback-token"


@dataclass
class World:
    clients: dict[str, httpx.AsyncClient]
    apps: dict[str, FastAPI]
    minter: TokenMinter
    account_a: str
    account_b: str
    ids: dict[str, str] = field(default_factory=dict)
    secrets: set[str] = field(default_factory=set)  # A's data: never in a response to B
    settings: dict[str, ServiceSettings] = field(default_factory=dict)

    def headers(self, role: Role, subject: str | None = None, org: str = ORG) -> dict[str, str]:
        """A gateway-minted token: patients are account A unless ``subject`` says otherwise;
        staff of A's organization unless ``org`` says otherwise."""
        if subject is None:
            subject = self.account_a if role is Role.PATIENT else f"matrix-{role.value}"
        token = self.minter.mint(subject, [role.value], org_id=org)
        return {"authorization": f"Bearer {token}"}

    @property
    def a(self) -> dict[str, str]:
        return self.headers(Role.PATIENT)

    @property
    def b(self) -> dict[str, str]:
        return self.headers(Role.PATIENT, self.account_b)


def _settings(
    cls: type[ServiceSettings],
    name: str,
    stack: EmbeddedStack,
    run_id: str,
    jwt_keys: tuple[str, str],
    pii_keys: dict[str, str],
    **overrides: object,
) -> ServiceSettings:
    """Like the ``make_settings`` fixture, but shared by every test of the module."""
    values: dict[str, Any] = {
        "service_name": name,
        "mongo_url": stack.mongo_url,
        "mongo_db": f"{run_id}_{name}",
        "kafka_bootstrap": stack.kafka_bootstrap,
        "kafka_topic_prefix": run_id,
        "kafka_partitions": 1,
        "redis_url": stack.redis_url(),
        "redis_key_prefix": f"{run_id}:",
        "jwt_public_key": jwt_keys[1],
        "log_json": True,
        "outbox_poll_seconds": 0.1,
        "jobs_poll_seconds": 0.2,
        "consumer_retry_base_seconds": 0.05,
        **pii_keys,
        **overrides,
    }
    return cls(**values)


async def _json(response: httpx.Response, status: int = 200) -> Any:
    assert response.status_code == status, f"{response.request.url}: {response.text}"
    return response.json()


async def _add_patient(api: Api, account: str, name: str) -> dict[str, Any]:
    body = {"name": name, "national_id": make_national_id(), "phone": make_phone()}
    response = await add_patient(api.client, api.settings, api.token(account), body)
    return {**await _json(response, 201), "national_id": body["national_id"]}


async def _book(api: Api, account: str, patient_id: str, schedule_id: str) -> str:
    body = {"patient_id": patient_id, "schedule_id": schedule_id}
    url = "/v1/appointments/appointments"
    response = await api.client.post(url, headers=api.token(account), json=body)
    return str((await _json(response, 201))["id"])


async def _join(api: Api, account: str, patient_id: str, schedule_id: str) -> str:
    body = {"patient_id": patient_id, "schedule_id": schedule_id}
    response = await api.client.post(
        "/v1/appointments/waitlist", headers=api.token(account), json=body
    )
    return str((await _json(response, 201))["id"])


async def _seed_appointments(world: World, api: Api) -> None:
    a, b, filler = world.account_a, world.account_b, f"matrix-filler-{new_id()[-6:]}"
    await seed_master_data(api)
    patient = await _add_patient(api, a, "欧阳安泰")
    spare = await _add_patient(api, a, "司马备用")
    disposable = await _add_patient(api, a, "上官可删")
    other = await _add_patient(api, b, "诸葛乙明")
    stranger = await _add_patient(api, filler, "填充号源")
    main = await api.publish(days_ahead=3)
    full = await api.publish(days_ahead=4, doctor="D2", slot_count=1)
    offer_session = await api.publish(days_ahead=5, session="afternoon")
    open_session = await api.publish(days_ahead=6, doctor="D2", session="afternoon")
    appointment = await _book(api, a, patient["id"], main)
    await _book(api, filler, stranger["id"], full)
    entry = await _join(api, a, patient["id"], full)
    spare_entry = await _join(api, a, spare["id"], full)
    await _book(api, a, patient["id"], offer_session)
    await _book(api, b, other["id"], open_session)
    cancel = f"/v1/appointments/admin/schedules/{offer_session}/cancel"
    await _json(await api.client.post(cancel, headers=api.admin, json={"reason": "临时停诊测试"}))
    offers = await api.client.get("/v1/appointments/rebooking-offers", headers=world.a)
    (offer,) = (await _json(offers))["items"]
    world.ids.update(
        patient_id=patient["id"],
        spare_patient_id=spare["id"],
        disposable_patient_id=disposable["id"],
        national_id=patient["national_id"],
        patient_name=patient["name"],
        appointment_id=appointment,
        schedule_id=main,
        full_schedule_id=full,
        open_schedule_id=open_session,
        entry_id=entry,
        spare_entry_id=spare_entry,
        offer_id=offer["id"],
        org_id=ORG,
        b_patient_id=other["id"],
        account_id=a,
    )
    pending = {"name": "未确认", "national_id": make_national_id(), "phone": make_phone()}
    asked = await api.client.post("/v1/appointments/patients", headers=world.a, json=pending)
    world.ids["verification_id"] = (await _json(asked, 202))["verification_id"]
    world.secrets |= {a, appointment, entry, spare_entry, offer["id"], patient["national_id"]}
    for p in (patient, spare, disposable):
        world.secrets |= {p["id"], p["name"], p["phone_masked"], p["national_id_masked"]}


async def _seed_ticket(world: World, app: FastAPI) -> None:
    """A's waiting-room ticket (on the full session: it is answered sold out)."""
    room = built(app.state.runtime).waiting_room
    request = {"patient_id": world.ids["patient_id"], "schedule_id": world.ids["full_schedule_id"]}
    ticket = await room.enqueue(
        principal=Principal(subject=world.account_a, roles=frozenset({Role.PATIENT})),
        request=json.dumps(request),
        schedule_id=world.ids["full_schedule_id"],
        patient_id=world.ids["patient_id"],
        pools=["public"],
    )
    world.ids["ticket_id"] = ticket.id
    world.secrets.add(ticket.id)


async def _seed_notifications(world: World, app: FastAPI) -> None:
    db = app.state.runtime.db
    patient_id = world.ids["patient_id"]

    async def inbox_filled() -> bool:
        page = await world.clients["notifications"].get("/v1/notifications/inbox", headers=world.a)
        return page.status_code == 200 and len(page.json()["items"]) >= 2

    await wait_until(inbox_filled, timeout=60, what="A's bookings reaching A's inbox")
    page = await world.clients["notifications"].get("/v1/notifications/inbox", headers=world.a)
    items = (await _json(page))["items"]
    messages = await db[MESSAGES].find({"patient_id": patient_id}).sort("_id", 1).to_list()
    assert messages, "no message was logged for A's patient"
    world.ids.update(inbox_id=items[0]["id"], notification_message_id=messages[0]["_id"])
    world.secrets |= {i["id"] for i in items} | {m["_id"] for m in messages}


@pytest.fixture(scope="module")
async def world(
    stack: EmbeddedStack,
    jwt_keys: tuple[str, str],
    pii_keys: dict[str, str],
    minter: TokenMinter,
) -> AsyncIterator[World]:
    run_id = "s" + new_id().replace("-", "")[-12:]

    def settings(cls: type[ServiceSettings], name: str, **extra: object) -> ServiceSettings:
        return _settings(cls, name, stack, run_id, jwt_keys, pii_keys, **extra)

    notifications = settings(
        NotificationsSettings,
        "notifications",
        quiet_hours_start="",
        quiet_hours_end="",
        aliyun_receipt_token=ALIYUN_TOKEN,
        wechat_callback_token=WECHAT_TOKEN,
    )
    factories: Mapping[str, tuple[Any, ServiceSettings]] = {
        "appointments": (appointments_app, settings(AppointmentsSettings, "appointments")),
        "notifications": (notifications_app, notifications),
        "referrals": (referrals_app, settings(ReferralsSettings, "referrals")),
        "followup": (followup_app, settings(FollowupSettings, "followup", mllp_port=0)),
    }
    world = World({}, {}, minter, f"matrix-a-{run_id}", f"matrix-b-{run_id}")
    async with AsyncExitStack() as stack_:
        for name, (factory, service_settings) in factories.items():
            app = factory(service_settings)
            base = await stack_.enter_async_context(serve(app))
            client = httpx.AsyncClient(base_url=base, timeout=30)
            world.clients[name] = await stack_.enter_async_context(client)
            world.apps[name] = app
            world.settings[name] = service_settings
        appointments = world.clients["appointments"]
        api = Api(str(appointments.base_url), appointments, minter, factories["appointments"][1])
        await _seed_appointments(world, api)
        await _seed_ticket(world, world.apps["appointments"])
        await _seed_notifications(world, world.apps["notifications"])
        world.secrets |= await seed_referrals(
            world.clients["referrals"], world.headers, world.ids["patient_id"], world.ids
        )
        world.secrets |= await seed_transport(
            world.clients["referrals"], world.headers, world.ids["patient_id"], world.ids
        )
        world.secrets |= await seed_followup(
            world.clients["followup"], world.apps["followup"], world.headers, world.ids
        )
        world.secrets |= await seed_beds(world.clients["appointments"], world.headers, world.ids)
        world.secrets |= await seed_hotline(world.clients["appointments"], world.headers, world.ids)
        world.ids.update(
            kind="appointment.booked",
            staff_id="matrix-doctor",  # a staff contact (alerts to a doctor)
            dead_letter_id=new_id(),
            appeal_id=new_id(),
        )
        yield world
