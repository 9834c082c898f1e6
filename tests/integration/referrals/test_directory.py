"""The alliance's directory over HTTP: bulk writes from the HIS, who may change what, and
the organizations a referral may go to."""

from __future__ import annotations

from typing import Any

import pytest

from services.referrals.domain.directory import Direction
from shared.audit import AuditRecord
from shared.principal import Role
from shared.service import Runtime
from tests.integration.referrals.conftest import (
    ALLIANCE,
    Api,
    department,
    directory_body,
    organization,
    seed_directory,
)

pytestmark = pytest.mark.integration

R = "/v1/referrals"
ORGS = f"{R}/admin/organizations"
RELS = f"{R}/admin/relationships"


async def orgs(api: Api, **query: Any) -> list[dict[str, Any]]:
    reply = await api.client.get(f"{R}/organizations", params=query, headers=api.admin)
    assert reply.status_code == 200, reply.text
    return list(reply.json()["items"])


async def org_ids(api: Api, **query: Any) -> list[str]:
    return [o["org_id"] for o in await orgs(api, **query)]


async def one(api: Api, org_id: str) -> dict[str, Any]:
    reply = await api.client.get(f"{R}/organizations/{org_id}", headers=api.admin)
    assert reply.status_code == 200, reply.text
    return dict(reply.json())


async def audit_actions(api: Api, action: str) -> list[AuditRecord]:
    runtime: Runtime = api.app.state.runtime
    return await runtime.audit.query(action=action)


def rel(a: str, b: str, direction: str, **more: Any) -> dict[str, Any]:
    return {"from_org_id": a, "to_org_id": b, "direction": direction, **more}


async def test_bulk_upsert_then_read_with_filters(referrals: Api) -> None:
    await seed_directory(referrals)
    assert await org_ids(referrals) == ["county1", "county2", "prov1", "town1", "town2"]
    assert await org_ids(referrals, region="330327", level=1) == ["town1", "town2"]
    assert await org_ids(referrals, kind="county_hospital") == ["county1", "county2"]
    assert await org_ids(referrals, specialty="oncology") == ["prov1"]
    assert await org_ids(referrals, alliance_id=ALLIANCE, accepting="true") == await org_ids(
        referrals
    )
    assert await org_ids(referrals, alliance_id="another-alliance") == []

    prov1 = await referrals.client.get(f"{R}/organizations/prov1", headers=referrals.admin)
    assert prov1.headers["etag"] == '"1"'
    body = prov1.json()
    assert body["level"] == 3
    assert body["version"] == 1
    assert body["intake"]["daily_capacity"] == 50
    assert body["intake"]["sla_minutes"] == {"urgent": 90}
    assert body["contacts"][0]["office_phone"] == "0577-88001234"  # staff see office lines

    rels = await referrals.client.get(
        f"{R}/relationships", params={"org_id": "town1"}, headers=referrals.admin
    )
    assert rels.status_code == 200, rels.text
    assert {(r["from_org_id"], r["to_org_id"], r["direction"]) for r in rels.json()["items"]} == {
        ("town1", "county1", "upward"),
        ("town1", "county2", "upward"),
        ("county1", "town1", "downward"),
        ("county2", "town1", "downward"),
    }

    # the HIS sends the same organizations again: same ids, each version counted up
    again = await referrals.client.put(ORGS, json=directory_body(), headers=referrals.service)
    assert again.status_code == 200, again.text
    assert sorted(again.json()["ids"]) == await org_ids(referrals)
    assert (await one(referrals, "town2"))["version"] == 2


async def test_office_phones_are_for_staff(referrals: Api) -> None:
    await seed_directory(referrals)
    reply = await referrals.client.get(f"{R}/organizations/prov1", headers=referrals.service)
    assert reply.status_code == 200, reply.text
    assert reply.json()["contacts"][0]["office_phone"] is None
    listed = await referrals.client.get(f"{R}/organizations", headers=referrals.service)
    assert "0577" not in listed.text
    doctor = referrals.token("doc-1", Role.DOCTOR, org="town1")
    shown = await referrals.client.get(f"{R}/organizations/prov1", headers=doctor)
    assert shown.json()["contacts"][0]["office_phone"] == "0577-88001234"


async def test_an_invalid_item_names_its_index_and_nothing_is_written(referrals: Api) -> None:
    body = directory_body()
    body[3]["level"] = 2  # a township center is level 1
    reply = await referrals.client.put(ORGS, json=body, headers=referrals.service)
    assert reply.status_code == 422, reply.text
    problem = reply.json()
    assert problem["code"] == "validation_error"
    assert [e["field"] for e in problem["errors"]] == ["body.3"]
    assert await org_ids(referrals) == []

    body = directory_body()
    body[4]["departments"].append(body[4]["departments"][0])  # a department id twice
    reply = await referrals.client.put(ORGS, json=body, headers=referrals.service)
    assert reply.status_code == 422
    assert reply.json()["errors"][0]["field"] == "body.4"

    body = directory_body()
    body[2] = {**body[1], "name": "重复"}
    reply = await referrals.client.put(ORGS, json=body, headers=referrals.service)
    assert reply.status_code == 422, reply.text
    assert reply.json()["code"] == "duplicate_organization"
    assert reply.json()["index"] == 2
    assert await org_ids(referrals) == []

    no_alliance = {**directory_body()[0], "alliance_ids": []}
    reply = await referrals.client.put(ORGS, json=[no_alliance], headers=referrals.service)
    assert reply.status_code == 422
    assert reply.json()["errors"][0]["field"].startswith("body.0")

    too_many = [directory_body()[0]] * 501
    reply = await referrals.client.put(ORGS, json=too_many, headers=referrals.service)
    assert reply.status_code == 422


async def test_an_org_admin_keeps_its_own_organization_only(referrals: Api) -> None:
    await seed_directory(referrals)
    county1 = next(o for o in directory_body() if o["org_id"] == "county1")
    admin = referrals.admin  # county1's admin

    renamed = {**county1, "name": "苍南县人民医院（新院区）"}
    renamed["departments"] = [*county1["departments"], department("county1", "ENDO", "内分泌科")]
    reply = await referrals.client.put(ORGS, json=[renamed], headers=admin)
    assert reply.status_code == 200, reply.text
    saved = await one(referrals, "county1")
    assert saved["name"] == "苍南县人民医院（新院区）"
    assert saved["version"] == 2
    assert len(saved["departments"]) == 5

    promoted = {**county1, "level": 3}
    reply = await referrals.client.put(ORGS, json=[promoted], headers=admin)
    assert reply.status_code == 403, reply.text
    assert reply.json()["code"] == "forbidden_org_fields"
    assert reply.json()["fields"] == ["level"]
    moved = {**county1, "alliance_ids": [ALLIANCE, "another-alliance"]}
    reply = await referrals.client.put(ORGS, json=[moved], headers=admin)
    assert reply.json()["code"] == "forbidden_org_fields"

    county2 = next(o for o in directory_body() if o["org_id"] == "county2")
    reply = await referrals.client.put(ORGS, json=[{**county2, "name": "x"}], headers=admin)
    assert reply.status_code == 403
    assert reply.json()["code"] == "forbidden_org"
    new = organization("county3", "苍南县第三人民医院", 2, "county_hospital", "330327", [])
    reply = await referrals.client.put(ORGS, json=[new], headers=admin)
    assert reply.status_code == 403
    assert reply.json()["code"] == "forbidden_org"
    own_new = referrals.token("admin-county3", Role.ADMIN, org="county3")
    reply = await referrals.client.put(ORGS, json=[new], headers=own_new)
    assert reply.status_code == 403
    assert reply.json()["code"] == "forbidden_org_create"
    assert (await one(referrals, "county1"))["level"] == 2

    intake = {"accepting": True, "daily_capacity": 12, "hours_start": "07:30"}
    reply = await referrals.client.put(
        f"{R}/organizations/county1/intake", json=intake, headers=admin
    )
    assert reply.status_code == 200, reply.text
    assert reply.json()["intake"]["daily_capacity"] == 12
    assert reply.headers["etag"] == f'"{reply.json()["version"]}"'
    reply = await referrals.client.put(
        f"{R}/organizations/county2/intake", json=intake, headers=admin
    )
    assert reply.status_code == 403
    assert reply.json()["code"] == "forbidden_org"
    assert (await one(referrals, "county2"))["intake"]["daily_capacity"] is None

    (record,) = await audit_actions(referrals, "directory.intake.update")
    assert record.actor_id == "admin-county1"
    assert record.org_id == "county1"
    assert record.resource == "organization:county1"
    denied = await audit_actions(referrals, "access.denied")
    assert {d.details["code"] for d in denied} >= {"forbidden_org", "forbidden_org_fields"}


async def test_a_coordinator_sets_its_own_intake(referrals: Api) -> None:
    await seed_directory(referrals)
    coordinator = referrals.token("coord-town1", Role.COORDINATOR, org="town1")
    url = f"{R}/organizations/town1/intake"
    current = await referrals.client.get(f"{R}/organizations/town1", headers=coordinator)
    etag = current.headers["etag"]
    closed = {"accepting": False, "hours_start": "08:00", "hours_end": "12:00"}
    reply = await referrals.client.put(url, json=closed, headers={**coordinator, "if-match": etag})
    assert reply.status_code == 200, reply.text
    assert reply.json()["intake"]["accepting"] is False
    assert await org_ids(referrals, accepting="false") == ["town1"]

    stale = await referrals.client.put(url, json=closed, headers={**coordinator, "if-match": etag})
    assert stale.status_code == 409
    assert stale.json()["code"] == "version_conflict"

    # the HIS's next bulk upsert leaves the coordinators' intake settings alone
    resent = await referrals.client.put(ORGS, json=directory_body(), headers=referrals.service)
    assert resent.status_code == 200, resent.text
    assert (await one(referrals, "town1"))["intake"]["accepting"] is False

    other = await referrals.client.put(
        f"{R}/organizations/county1/intake", json=closed, headers=coordinator
    )
    assert other.status_code == 403
    assert other.json()["code"] == "forbidden_org"
    doctor = referrals.token("doc-town1", Role.DOCTOR, org="town1")
    reply = await referrals.client.put(url, json=closed, headers=doctor)
    assert reply.status_code == 403
    assert reply.json()["code"] == "forbidden_role"
    reply = await referrals.client.put(ORGS, json=directory_body()[3:4], headers=coordinator)
    assert reply.status_code == 403

    for bad, field in (
        ({"hours_start": "18:00", "hours_end": "08:00"}, "body"),
        ({"timezone": "Mars/Olympus"}, "body.timezone"),
        ({"daily_capacity": 0}, "body.daily_capacity"),
    ):
        reply = await referrals.client.put(url, json=bad, headers=coordinator)
        assert reply.status_code == 422, reply.text
        assert [e["field"] for e in reply.json()["errors"]] == [field]
    reply = await referrals.client.put(
        f"{R}/organizations/nowhere/intake", json=closed, headers=referrals.alliance_admin
    )
    assert reply.status_code == 404
    assert reply.json()["code"] == "unknown_organization"


async def test_relationships_must_fit_levels_and_the_alliance(referrals: Api) -> None:
    await seed_directory(referrals)
    admin = referrals.alliance_admin
    cases = [
        (rel("town1", "prov1", "downward"), "relationship_level_mismatch"),
        (rel("county1", "town1", "lateral"), "relationship_level_mismatch"),
        (rel("town1", "town1", "lateral"), "relationship_self"),
    ]
    for bad, code in cases:
        body = [rel("town1", "prov1", "upward"), bad]
        reply = await referrals.client.put(RELS, json=body, headers=admin)
        assert reply.status_code == 422, reply.text
        assert reply.json()["code"] == code
        assert reply.json()["index"] == 1

    outsider = {**directory_body()[0], "org_id": "elsewhere", "alliance_ids": ["other-alliance"]}
    saved = await referrals.client.put(ORGS, json=[outsider], headers=admin)
    assert saved.status_code == 200, saved.text
    reply = await referrals.client.put(
        RELS, json=[rel("county1", "elsewhere", "upward")], headers=admin
    )
    assert reply.json()["code"] == "relationship_outside_alliance"

    rels = await referrals.directory.list_relationships("prov1")
    assert {r.from_org_id for r in rels if r.to_org_id == "prov1"} == {"county1", "county2"}


async def test_an_unknown_organization_in_a_relationship_writes_nothing(referrals: Api) -> None:
    await seed_directory(referrals)
    body = [rel("town1", "prov1", "upward"), rel("town2", "ghost-hospital", "upward")]
    reply = await referrals.client.put(RELS, json=body, headers=referrals.service)
    assert reply.status_code == 422, reply.text
    assert reply.json()["code"] == "unknown_organization"
    assert reply.json()["index"] == 1
    assert reply.json()["org_id"] == "ghost-hospital"
    assert await referrals.directory.relationship("town1", "prov1", Direction.UPWARD) is None

    reply = await referrals.client.put(RELS, json=body[:1], headers=referrals.admin)
    assert reply.status_code == 403  # an organization's admin does not link organizations


async def test_a_level_change_that_breaks_a_relationship_is_refused(referrals: Api) -> None:
    await seed_directory(referrals)
    county1 = next(o for o in directory_body() if o["org_id"] == "county1")
    promoted = {**county1, "level": 3}  # county1 -> prov1 would no longer be upward
    reply = await referrals.client.put(ORGS, json=[promoted], headers=referrals.alliance_admin)
    assert reply.status_code == 409, reply.text
    assert reply.json()["code"] == "relationship_would_break"
    assert (await one(referrals, "county1"))["level"] == 2


async def test_targets_follow_active_relationships(referrals: Api) -> None:
    await seed_directory(referrals)
    directory = referrals.directory
    up = await directory.targets("town1", Direction.UPWARD)
    assert [o.org_id for o in up] == ["county1", "county2"]
    assert up[0].department_for("cardiology") is not None
    down = await directory.targets("prov1", Direction.DOWNWARD)
    assert [o.org_id for o in down] == ["county1", "county2"]
    lateral = await directory.targets("county1", Direction.LATERAL)
    assert [o.org_id for o in lateral] == ["county2"]
    assert await directory.targets("town1", Direction.LATERAL) == []

    paused = [rel("town1", "county2", "upward", active=False)]
    reply = await referrals.client.put(RELS, json=paused, headers=referrals.alliance_admin)
    assert reply.status_code == 200
    assert reply.json() == {"saved": 1}
    assert [o.org_id for o in await directory.targets("town1", Direction.UPWARD)] == ["county1"]

    url = f"{RELS}/town1/county1/upward"
    assert (await referrals.client.delete(url, headers=referrals.alliance_admin)).status_code == 204
    assert await directory.targets("town1", Direction.UPWARD) == []
    gone = await referrals.client.delete(url, headers=referrals.alliance_admin)
    assert gone.status_code == 404
    assert gone.json()["code"] == "unknown_relationship"
    assert len(await audit_actions(referrals, "directory.relationship.remove")) == 1


async def test_patients_and_anonymous_callers_are_refused(referrals: Api) -> None:
    await seed_directory(referrals)
    patient = referrals.token("account-1", Role.PATIENT, org=None)
    for url in (f"{R}/organizations", f"{R}/organizations/prov1", f"{R}/relationships"):
        reply = await referrals.client.get(url, headers=patient)
        assert reply.status_code == 403, reply.text
        assert reply.headers["content-type"].startswith("application/problem+json")
        anonymous = await referrals.client.get(url)
        assert anonymous.status_code == 401
        assert anonymous.json()["code"] == "token_missing"
    reply = await referrals.client.put(ORGS, json=directory_body(), headers=patient)
    assert reply.status_code == 403
    reply = await referrals.client.get(f"{R}/organizations/nowhere", headers=referrals.admin)
    assert reply.status_code == 404
    assert reply.json()["code"] == "unknown_organization"
