"""The demo's alliance: organizations, staff accounts, a clinic catalogue and patients."""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx

from devstack.demo import people
from devstack.keys import DevSecrets
from shared.auth import TokenMinter

PASSWORD = "Demo-Passw0rd!"  # every demo account's; make demo prints it  # noqa: S105
# one account per console role; the nurse is also the bed manager and a porter
STAFF_ROLES = {
    "admin": (["admin"], "hospital"),
    "agent": (["agent"], "hospital"),
    "coord": (["coordinator"], "hospital"),
    "nurse": (["nurse"], "hospital"),
    "doctor": (["doctor"], "hospital"),
    "cdoctor": (["doctor"], "clinic"),
    "ccoord": (["coordinator"], "clinic"),
}


@dataclass
class Demo:
    site: str
    hospital: str  # org id of the tertiary hospital
    clinic: str  # org id of the community clinic
    usernames: dict[str, str]  # role key (STAFF_ROLES) -> username
    staff_ids: dict[str, str]
    departments: list[str]  # department ids (org.CODE) of the hospital
    doctors: list[str]  # resource ids of the hospital
    schedules: list[str]
    patients: list[dict[str, Any]]  # {id, name, national_id, phone, account_id}
    extra: dict[str, Any] = field(default_factory=dict)  # each domain's seeded ids

    password: str = PASSWORD


def minter(secrets: DevSecrets) -> TokenMinter:
    return TokenMinter(
        secrets.jwt_private_key_file.read_text(), issuer="careloop-gateway", audience="careloop"
    )


def bearer(token: str) -> dict[str, str]:
    return {"authorization": f"Bearer {token}"}


class DemoExists(RuntimeError):
    """The site was seeded before (its staff accounts exist)."""


def ok(answer: httpx.Response, *statuses: int) -> Any:
    if answer.status_code not in (statuses or (200, 201)):
        raise RuntimeError(
            f"{answer.request.method} {answer.request.url.path}: "
            f"{answer.status_code} {answer.text[:400]}"
        )
    return answer.json() if answer.content else None


async def staff_token(gw: httpx.AsyncClient, username: str, password: str = PASSWORD) -> str:
    answer = await gw.post(
        "/v1/auth/login/staff", json={"username": username, "password": password}
    )
    return str(ok(answer)["access_token"])


async def _staff(gw: httpx.AsyncClient, secrets: DevSecrets, demo: Demo) -> None:
    admin = bearer(await staff_token(gw, secrets.admin_username, secrets.admin_password))
    for key, (roles, where) in STAFF_ROLES.items():
        org = demo.hospital if where == "hospital" else demo.clinic
        username = f"{demo.site}.{key}"
        body = {
            "username": username,
            "password": PASSWORD,
            "roles": roles,
            "org_id": org,
            "display_name": f"{demo.site} {key}",
        }
        answer = await gw.post("/v1/auth/admin/staff", headers=admin, json=body)
        if answer.status_code == 409:
            raise DemoExists(f"the demo site {demo.site!r} is there already ({username})")
        created = ok(answer, 201)
        demo.usernames[key] = username
        demo.staff_ids[key] = created["id"]


async def _directory(gw: httpx.AsyncClient, his: dict[str, str], demo: Demo) -> None:
    h, c = demo.hospital, demo.clinic
    alliance = f"{demo.site}-alliance"
    orgs = [
        {
            "org_id": h,
            "name": "市第一人民医院",
            "level": 3,
            "kind": "tertiary",
            "region": "330300",
            "alliance_ids": [alliance],
            "contacts": [],
            "departments": [
                {"department_id": f"{h}.CARD", "name": "心内科", "specialties": ["cardiology"]},
                {"department_id": f"{h}.ORTH", "name": "骨科", "specialties": ["orthopedics"]},
            ],
        },
        {
            "org_id": c,
            "name": "城东社区卫生服务中心",
            "level": 1,
            "kind": "community_center",
            "region": "330300",
            "alliance_ids": [alliance],
            "contacts": [],
            "departments": [
                {
                    "department_id": f"{c}.GM",
                    "name": "全科",
                    "specialties": ["general_medicine", "rehabilitation"],
                }
            ],
        },
    ]
    ok(await gw.put("/v1/referrals/admin/organizations", headers=his, json=orgs))
    relations = [
        {"from_org_id": c, "to_org_id": h, "direction": "upward"},
        {"from_org_id": h, "to_org_id": c, "direction": "downward"},
    ]
    ok(await gw.put("/v1/referrals/admin/relationships", headers=his, json=relations))


async def _catalogue(gw: httpx.AsyncClient, his: dict[str, str], demo: Demo) -> None:
    h = demo.hospital
    departments = [
        {"org_id": h, "code": "CARD", "name": "心内科"},
        {"org_id": h, "code": "ORTH", "name": "骨科"},
    ]
    ok(await gw.put("/v1/appointments/admin/departments", headers=his, json=departments))
    doctors = [
        {
            "org_id": h,
            "code": "D1",
            "department_code": "CARD",
            "name": "王建国",
            "title": "主任医师",
            "clinic_type": "expert",
            "fee_cents": 5000,
        },
        {
            "org_id": h,
            "code": "D2",
            "department_code": "CARD",
            "name": "李秀英",
            "title": "主治医师",
            "clinic_type": "general",
            "fee_cents": 2500,
        },
        {
            "org_id": h,
            "code": "D3",
            "department_code": "ORTH",
            "name": "陈志强",
            "title": "副主任医师",
            "clinic_type": "expert",
            "fee_cents": 4000,
        },
    ]
    ok(await gw.put("/v1/appointments/admin/resources", headers=his, json=doctors))
    demo.departments = [f"{h}.CARD", f"{h}.ORTH"]
    demo.doctors = [f"{h}.D1", f"{h}.D2", f"{h}.D3"]
    today = (datetime.now(UTC) + timedelta(hours=8)).date()
    sessions = [
        {
            "org_id": h,
            "resource_code": code,
            "clinic_date": (today + timedelta(days=d)).isoformat(),
            "session": "afternoon",
            "starts": "13:30",
            "ends": "17:00",
            "slot_count": 20,
        }
        for code in ("D1", "D2", "D3")
        for d in (1, 2, 3)
    ]
    published = ok(
        await gw.post("/v1/appointments/admin/schedules", headers=his, json=sessions), 201
    )
    demo.schedules = [s["schedule_id"] for s in published["schedules"]]


async def _patients(gw: httpx.AsyncClient, demo: Demo, count: int, rng: random.Random) -> None:
    agent = bearer(await staff_token(gw, demo.usernames["agent"]))
    for n in range(count):
        person = {
            "name": people.NAMES[n % len(people.NAMES)],
            "national_id": people.national_id(rng),
            "phone": people.phone(rng),
        }
        account = f"acct-{demo.site}-{n}"
        body = {"account_id": account, "patient": person, "method": "hotline"}
        created = ok(
            await gw.post(
                "/v1/appointments/staff/patients/links",
                headers=agent,
                json=body,
                params={"reason": "演示数据：来电登记"},
            ),
            201,
        )
        demo.patients.append({**person, "id": created["id"], "account_id": account})


async def seed_base(
    gw: httpx.AsyncClient, secrets: DevSecrets, site: str, *, patients: int = 4
) -> Demo:
    """The alliance of ``site`` (a short lowercase name: org ids ``<site>-h``, ``<site>-c``)."""
    demo = Demo(
        site=site,
        hospital=f"{site}-h",
        clinic=f"{site}-c",
        usernames={},
        staff_ids={},
        departments=[],
        doctors=[],
        schedules=[],
        patients=[],
    )
    his = bearer(minter(secrets).mint("his-sync", ["service"]))
    await _directory(gw, his, demo)
    await _staff(gw, secrets, demo)
    await _catalogue(gw, his, demo)
    await _patients(gw, demo, patients, random.Random(site))  # noqa: S311 - made-up people
    return demo
