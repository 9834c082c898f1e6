"""Demo data: the hospital's porters (陪检员) and an escort on the dispatcher's board.

The roster holds two porters: 王师傅 (a handheld account of its own, on duty in the
cardiology wards' zone) and the demo nurse, who is the bed manager and a porter too. A
wheelchair escort from ward 5W to CT is asked for while only 王师傅 is on duty (he gets
it), then the nurse goes on duty; a stretcher move in isolation waits unassigned (no porter
on duty has the isolation skill). The patient must be known at the hospital (referrals
learns it from a booking there): the last demo patient books an afternoon visit first.

``demo.extra["transport"]``: ``{"zone", "porters": [ids], "nurse_porter": id,
"other_porter": id, "transport_id": the escort's, "waiting_id": the unassigned one}``.
"""

from __future__ import annotations

import asyncio
from typing import Any

import httpx
import structlog

from devstack.demo.base import Demo, bearer, minter, ok, staff_token
from devstack.keys import DevSecrets

log = structlog.get_logger(__name__)
R = "/v1/referrals"
ZONE = "inpatient-5"
# referrals learns that the patient is the hospital's from appointments' events
KNOWN_WAIT_SECONDS = 20.0


async def _book(gw: httpx.AsyncClient, demo: Demo, patient_id: str) -> None:
    agent = bearer(await staff_token(gw, demo.usernames["agent"]))
    answer = await gw.post(
        "/v1/appointments/appointments",
        headers=agent,
        json={"patient_id": patient_id, "schedule_id": demo.schedules[-1]},
        params={"reason": "演示数据：来电预约"},
    )
    ok(answer, 201, 409)  # 409: the patient already holds a booking there


async def _ask(gw: httpx.AsyncClient, headers: dict[str, str], body: dict[str, Any]) -> Any:
    """Ask for a transport, waiting while referrals does not know the patient yet."""
    deadline = asyncio.get_running_loop().time() + KNOWN_WAIT_SECONDS
    while True:
        answer = await gw.post(f"{R}/transports", headers=headers, json=body)
        code = answer.json().get("code") if answer.status_code in (403, 422) else None
        if code not in ("patient_of_another_org", "unknown_patient"):
            return ok(answer, 201)
        if asyncio.get_running_loop().time() > deadline:
            return ok(answer, 201)
        await asyncio.sleep(0.3)


async def seed_transport(gw: httpx.AsyncClient, secrets: DevSecrets, demo: Demo) -> None:
    h = demo.hospital
    mint = minter(secrets)
    his = bearer(mint.mint("his-sync", ["service"]))
    nurse_id = demo.staff_ids["nurse"]
    other_id = f"{demo.site}-porter-wang"
    roster = [
        {
            "porter_id": other_id,
            "org_id": h,
            "name": "王师傅",
            "zones": [ZONE, "inpatient-3"],
            "skills": ["stretcher", "oxygen"],
        },
        {
            "porter_id": nurse_id,
            "org_id": h,
            "name": f"{demo.site} nurse",
            "zones": [ZONE, "inpatient-3"],
            "skills": ["stretcher"],
        },
    ]
    ok(await gw.put(f"{R}/admin/porters", headers=his, json=roster))
    wang = bearer(mint.mint(other_id, ["nurse"], org_id=h))
    ok(await gw.put(f"{R}/porters/me/duty", headers=wang, json={"on_duty": True, "zone": ZONE}))

    patient = demo.patients[-1]["id"]
    await _book(gw, demo, patient)
    coord = bearer(await staff_token(gw, demo.usernames["coord"]))
    escort = {
        "patient_id": patient,
        "from": {"ward": "5W", "bed": "02", "zone": ZONE},
        "to": {"department_id": f"{h}.RAD", "room": "CT-2"},
        "mode": "wheelchair",
        "priority": "urgent",
        "note": "增强CT，需空腹",
    }
    made = await _ask(gw, coord, escort)
    waiting = {
        "patient_id": patient,
        "from": {"ward": "5W", "bed": "03", "zone": ZONE},
        "to": {"department_id": f"{h}.RAD", "room": "MRI-1"},
        "mode": "stretcher",
        "needs": ["isolation"],
        "priority": "routine",
    }
    unassigned = await _ask(gw, coord, waiting)

    nurse = bearer(await staff_token(gw, demo.usernames["nurse"]))
    ok(await gw.put(f"{R}/porters/me/duty", headers=nurse, json={"on_duty": True, "zone": ZONE}))
    demo.extra["transport"] = {
        "zone": ZONE,
        "porters": [other_id, nurse_id],
        "nurse_porter": nurse_id,
        "other_porter": other_id,
        "transport_id": made["transport_id"],
        "waiting_id": unassigned["transport_id"],
    }
    log.info("demo.transport_seeded", site=demo.site, porter=made.get("porter_id"))
