"""Demo data: the hospital's inpatient wards and beds, and the bed waiting list.

Two wards of the hospital (cardiology 5W, orthopaedics 3E), a few beds each (one blocked by
the HIS), admission notices (住院证) from the hospital's doctor for the first patients, and
one of them already offered a bed (a reserved bed on the board). ``demo.extra["beds"]``:
``{"wards": [...], "beds": {code: id}, "notices": [id, ...], "offered_notice": id,
"offer_id": id}``; the waiting notices are ``notices`` (urgent first).
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import structlog

from devstack.demo.base import Demo, bearer, minter, ok, staff_token
from devstack.keys import DevSecrets

log = structlog.get_logger(__name__)
A = "/v1/appointments"

# (ward, bed code, room, kind, blocked)
BEDS = [
    ("5W", "01", "501", "standard", False),
    ("5W", "02", "501", "standard", False),
    ("5W", "03", "502", "monitored", False),
    ("5W", "04", "502", "standard", True),
    ("3E", "01", "301", "standard", False),
    ("3E", "02", "301", "standard", False),
]
# (patient index, department, ICD-10 code, diagnosis, urgency, expected days)
NOTICES = [
    (0, "CARD", "I20.0", "不稳定型心绞痛", "urgent", 7),
    (1, "CARD", "I50.9", "心力衰竭", "routine", 10),
    (2, "ORTH", "S72.0", "股骨颈骨折", "urgent", 14),
]


async def seed_beds(gw: httpx.AsyncClient, secrets: DevSecrets, demo: Demo) -> None:
    h = demo.hospital
    his = bearer(minter(secrets).mint("his-sync", ["service"]))
    wards = [
        {
            "org_id": h,
            "code": "5W",
            "name": "心内科五病区",
            "department_code": "CARD",
            "floor": 5,
        },
        {
            "org_id": h,
            "code": "3E",
            "name": "骨科三病区",
            "department_code": "ORTH",
            "floor": 3,
        },
    ]
    ward_ids = ok(await gw.put(f"{A}/admin/wards", headers=his, json=wards))["ids"]
    beds = [
        {"org_id": h, "ward_code": w, "code": c, "room": r, "kind": k, "blocked": b}
        for w, c, r, k, b in BEDS
    ]
    bed_ids = ok(await gw.put(f"{A}/admin/beds", headers=his, json=beds))["ids"]
    by_code = {f"{w}-{c}": bed_id for (w, c, *_), bed_id in zip(BEDS, bed_ids, strict=True)}

    doctor = bearer(await staff_token(gw, demo.usernames["doctor"]))
    notices: list[str] = []
    for n, (index, dep, code, text, urgency, days) in enumerate(NOTICES):
        if index >= len(demo.patients):
            break
        body: dict[str, Any] = {
            "patient_id": demo.patients[index]["id"],
            "episode_id": f"{demo.site}-ep-{n}",
            "department_code": dep,
            "diagnosis": {"code": code, "text": text},
            "urgency": urgency,
            "expected_days": days,
        }
        made = ok(await gw.post(f"{A}/admission-notices", headers=doctor, json=body), 201)
        notices.append(made["id"])

    # the orthopaedic patient already has a bed offered: reserved on the board
    offered, offer_id = None, None
    if len(notices) > 2:
        nurse = bearer(await staff_token(gw, demo.usernames["nurse"]))
        come_at = (datetime.now(UTC) + timedelta(days=1)).replace(microsecond=0)
        assign = {
            "bed_id": by_code["3E-01"],
            "come_at": come_at.isoformat(),
            "what_to_bring": "身份证、医保卡、住院证",
        }
        offer = ok(
            await gw.post(f"{A}/admission-notices/{notices[2]}/assign", headers=nurse, json=assign),
            201,
        )
        offered, offer_id = notices.pop(2), offer["id"]

    demo.extra["beds"] = {
        "wards": ward_ids,
        "beds": by_code,
        "notices": notices,
        "offered_notice": offered,
        "offer_id": offer_id,
    }
    log.info("demo.beds_seeded", site=demo.site, beds=len(bed_ids), notices=len(notices))
