"""A porter's job push: the dispatch's ``transport.assigned`` reaches the notifications
service (the staff message kind ``transport.assigned``) and lands in the inbox of the
porter's staff account on the handheld, never in the patient's."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from services.notifications.settings import NotificationsSettings
from shared.auth import TokenMinter
from shared.principal import Role
from shared.settings import ServiceSettings
from tests.integration.notifications.conftest import running_notifications
from tests.integration.referrals.conftest import Api
from tests.integration.referrals.transport_support import (
    escort_body,
    on_duty,
    patient_at,
    porter,
    request,
    roster,
)
from tests.support.kafka import wait_until

pytestmark = pytest.mark.integration
COUNTY = "county1"


async def test_the_porter_gets_the_job_in_the_handheld_inbox(
    referrals: Api, make_settings: Callable[..., ServiceSettings], minter: TokenMinter
) -> None:
    settings = make_settings(
        "notifications", NotificationsSettings, quiet_hours_start="", quiet_hours_end=""
    )
    assert isinstance(settings, NotificationsSettings)
    async with running_notifications(settings, minter) as notifications:
        await roster(referrals, COUNTY, porter("porter-n", COUNTY, ["inpatient-5"]))
        await on_duty(referrals, COUNTY, "porter-n")
        patient = await patient_at(referrals, COUNTY)
        made = await request(referrals, COUNTY, escort_body(patient, priority="emergency"))
        assert made["porter_id"] == "porter-n"
        handheld = notifications.token("porter-n", Role.NURSE)

        async def items() -> list[dict[str, Any]]:
            page = await notifications.client.get("/v1/notifications/inbox", headers=handheld)
            assert page.status_code == 200, page.text
            return list(page.json()["items"])

        async def pushed() -> bool:
            return any(i["kind"] == "transport.assigned" for i in await items())

        await wait_until(pushed, timeout=45, what="the job in the porter's inbox")
        (job,) = [i for i in await items() if i["kind"] == "transport.assigned"]
        assert job["title"] == "新的陪检任务"
        assert made["transport_id"] in job["body"]
        assert "紧急" in job["body"]
        assert job["patient_id"] is None  # a staff alert: not filed under the patient
