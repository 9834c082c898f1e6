"""The bed desk answers for a patient on the phone: a nurse (or admin) of the organization
confirms or declines an offer with a reason (audited); without one it is 400, and the
bed desk of another organization is refused."""

from __future__ import annotations

import pytest

from tests.integration.appointments.beds.support import (
    B,
    assign,
    bed_status,
    issue,
    my_notices,
    nurse,
    patient,
    setup_beds,
)
from tests.integration.appointments.conftest import Api

pytestmark = pytest.mark.integration
OTHER = "h2"


async def test_the_bed_desk_confirms_for_the_patient_with_a_reason(
    appointments_api: Api,
) -> None:
    api = appointments_api
    beds = await setup_beds(api)
    bed = beds["W-S/1"]
    someone = await patient(api, "acct-desk", "female", "吴六")
    notice = await issue(api, someone, "ep-desk", department_code="SURG")
    offer = await assign(api, notice["id"], bed)
    url = f"{B}/bed-offers/{offer['id']}/confirm"
    reason = {"reason": "患者来电确认入院"}

    no_reason = await api.client.post(url, headers=nurse(api))
    assert no_reason.status_code == 400, no_reason.text
    elsewhere = await api.client.post(url, params=reason, headers=nurse(api, org=OTHER))
    assert elsewhere.status_code == 403, elsewhere.text
    confirmed = await api.client.post(url, params=reason, headers=nurse(api))
    assert confirmed.status_code == 200, confirmed.text
    assert confirmed.json()["status"] == "confirmed"
    (mine,) = await my_notices(api, "acct-desk")
    assert mine["status"] == "confirmed"
    assert await bed_status(api, bed) == "reserved"
