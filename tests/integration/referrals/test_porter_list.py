"""The dispatcher's roster: the organization's porters and crews with their skills, duty,
zone and live job count (those with no job too), filtered by zone and duty; coordinators
and admins of the organization (alliance admins any). The organization's admins also
read the transport board and a transport (audited)."""

from __future__ import annotations

from typing import Any

import pytest

from shared.principal import Role
from tests.integration.referrals.cases_support import staff
from tests.integration.referrals.conftest import Api
from tests.integration.referrals.transport_support import (
    WARD_ZONE,
    T,
    escort_body,
    on_duty,
    patient_at,
    porter,
    request,
    roster,
)

pytestmark = pytest.mark.integration
COUNTY = "county1"
OTHER = "county2"
URL = "/v1/referrals/porters"


async def porters(api: Api, headers: dict[str, str], **query: Any) -> list[dict[str, Any]]:
    reply = await api.client.get(URL, params=query, headers=headers)
    assert reply.status_code == 200, reply.text
    return list(reply.json()["items"])


async def test_the_dispatcher_sees_porters_with_their_duty_zone_and_load(referrals: Api) -> None:
    api = referrals
    crew = porter("crew-1", COUNTY, ["inter-facility"], "ambulance", kind="ambulance_crew")
    await roster(
        api,
        COUNTY,
        porter("porter-a", COUNTY, [WARD_ZONE], "stretcher"),
        porter("porter-b", COUNTY, ["outpatient", WARD_ZONE]),
        crew,
    )
    await roster(api, OTHER, porter("porter-z", OTHER, [WARD_ZONE]))
    await on_duty(api, COUNTY, "porter-a")
    coordinator = staff(api, COUNTY)

    items = await porters(api, coordinator)
    assert [i["porter_id"] for i in items] == ["porter-a", "crew-1", "porter-b"]
    first = items[0]
    assert first["name"] == "陪检员a"
    assert first["skills"] == ["stretcher"]
    assert (first["on_duty"], first["duty_zone"], first["load"]) == (True, WARD_ZONE, 0)
    assert items[1]["kind"] == "ambulance_crew"

    patient = await patient_at(api, COUNTY)
    made = await request(api, COUNTY, escort_body(patient))
    assert made["porter_id"] == "porter-a"
    (busy,) = await porters(api, coordinator, on_duty="true")
    assert (busy["porter_id"], busy["load"]) == ("porter-a", 1)
    off = await porters(api, coordinator, on_duty="false")
    assert [i["porter_id"] for i in off] == ["crew-1", "porter-b"]
    assert {i["load"] for i in off} == {0}
    # off duty, a porter covers the roster's zones; on duty, the zone they chose
    outpatient = await porters(api, coordinator, zone="outpatient")
    assert [i["porter_id"] for i in outpatient] == ["porter-b"]
    ward = await porters(api, coordinator, zone=WARD_ZONE)
    assert [i["porter_id"] for i in ward] == ["porter-a", "porter-b"]

    admin = staff(api, COUNTY, Role.ADMIN)
    assert len(await porters(api, admin)) == 3
    alliance = api.token("alliance-1", Role.ALLIANCE_ADMIN, org=None)
    assert [i["porter_id"] for i in await porters(api, alliance, org_id=OTHER)] == ["porter-z"]
    unnamed = await api.client.get(URL, headers=alliance)
    assert (unnamed.status_code, unnamed.json()["code"]) == (422, "org_required")


async def test_porters_of_another_organization_and_other_roles_are_refused(
    referrals: Api,
) -> None:
    api = referrals
    elsewhere = await api.client.get(URL, params={"org_id": OTHER}, headers=staff(api, COUNTY))
    assert (elsewhere.status_code, elsewhere.json()["code"]) == (403, "forbidden_org")
    for role in (Role.NURSE, Role.DOCTOR, Role.AGENT):
        refused = await api.client.get(URL, headers=staff(api, COUNTY, role))
        assert refused.status_code == 403, (role, refused.text)


async def test_an_organizations_admin_reads_the_board_and_a_transport(referrals: Api) -> None:
    api = referrals
    await roster(api, COUNTY, porter("porter-a", COUNTY, [WARD_ZONE]))
    await on_duty(api, COUNTY, "porter-a")
    patient = await patient_at(api, COUNTY)
    made = await request(api, COUNTY, escort_body(patient))
    admin = staff(api, COUNTY, Role.ADMIN)

    board = await api.client.get(T, params={"org_id": COUNTY}, headers=admin)
    assert board.status_code == 200, board.text
    assert [i["transport_id"] for i in board.json()["items"]] == [made["transport_id"]]
    one = await api.client.get(
        f"{T}/{made['transport_id']}", params={"reason": "调度看板"}, headers=admin
    )
    assert one.status_code == 200, one.text
    assert one.json()["porter_id"] == "porter-a"
    theirs = await api.client.get(
        T, params={"org_id": COUNTY}, headers=staff(api, OTHER, Role.ADMIN)
    )
    assert (theirs.status_code, theirs.json()["code"]) == (403, "forbidden_org")

    log = await api.client.get(
        "/v1/referrals/admin/audit",
        params={"action": "transport.list", "reason": "检查"},
        headers=admin,
    )
    assert log.status_code == 200, log.text
    assert {i["actor_id"] for i in log.json()["items"]} == {"admin-county1"}
