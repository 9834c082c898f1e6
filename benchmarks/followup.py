"""Follow-up's HIS intake as ratios on the same stack.

* an ADT^A03 over MLLP (read, deduplicated, kept encrypted, matched by keyed hash, planned
  with its tasks and timed jobs, plan.created in the outbox, all in one transaction, then
  the ACK) vs a bare outbox write (state + event), one message after another on one
  connection, as an interface engine sends them;
* reading one message into a discharge (``parse_discharge``) vs python-hl7's bare
  ``hl7.parse`` of the same text (the cost of our checks and fallbacks on top).
"""

from __future__ import annotations

import asyncio
import dataclasses
import time
from datetime import UTC, datetime, timedelta

import hl7  # type: ignore[import-untyped]

from devstack.stack import EmbeddedStack
from services.followup.app import definition
from services.followup.bootstrap import Followup
from services.followup.domain.hl7_discharge import parse_discharge
from services.followup.events import PlanEnded
from services.followup.mllp import END_BLOCK, frame
from services.followup.settings import FollowupSettings
from shared.auth import generate_ed25519_keypair
from shared.crypto import generate_key
from shared.events import make_event
from shared.outbox import Tx
from shared.privacy import is_valid_national_id
from shared.service import start_runtime, stop_runtime

MESSAGES = 150
PARSES = 2000


def _national_id(n: int) -> str:
    """A valid national ID (GB 11643 check character) for patient ``n``."""
    first17 = f"11010119800101{n:03d}"
    return next(first17 + c for c in "0123456789X" if is_valid_national_id(first17 + c))


def _a03(n: int, national_id: str) -> str:
    when = (datetime.now(UTC) - timedelta(days=1)).strftime("%Y%m%d%H%M%S")
    return "\r".join(
        [
            f"MSH|^~\\&|HIS|h1|CARELOOP|CL|{when}||ADT^A03^ADT_A03|B{n}|P|2.5",
            f"EVN|A03|{when}",
            f"PID|1||MRN{n}^^^h1^MR~{national_id}^^^CHN^NNCHN||王^小明||19800102|M",
            f"PV1|1|I|CARD^301^2^h1||||D1^张^伟||||||||||||V{n}",
            "DG1|1||I21.9^急性心肌梗死^I10",
        ]
    )


async def bench_followup(stack: EmbeddedStack) -> list[tuple[str, float, float]]:
    settings = FollowupSettings(
        mongo_url=stack.mongo_url,
        mongo_db="bench_followup",
        kafka_bootstrap=stack.kafka_bootstrap,
        kafka_topic_prefix="benchf",
        redis_url=stack.redis_url(),
        redis_key_prefix="benchf:",
        pii_encryption_keys=f"k1:{generate_key()}",
        pii_hash_key=generate_key(),
        jwt_public_key=generate_ed25519_keypair()[1],
        mllp_port=0,
    )
    runtime = await start_runtime(dataclasses.replace(definition(settings), run_workers=False))
    ctx: Followup = runtime.extras["followup"]
    national_ids = [_national_id(n) for n in range(MESSAGES)]
    try:
        started = time.perf_counter()
        for n in range(MESSAGES):

            async def bare(tx: Tx, n: int = n) -> None:
                await runtime.db.bare_state.insert_one({"n": n}, session=tx.session)
                payload = PlanEnded(
                    plan_id=f"x{n}", patient_id=f"p{n}", org_id="h1", reason="bench"
                )
                tx.emit(make_event(payload, source="bench", subject=f"p{n}"))

            await runtime.outbox.transaction(bare)
        baseline = MESSAGES / (time.perf_counter() - started)

        for n, national_id in enumerate(national_ids):
            digest = ctx.cipher.lookup_hash_national_id(national_id)

            async def known(tx: Tx, n: int = n, digest: str = digest) -> None:
                await ctx.patients.registered(
                    tx.session, patient_id=f"p{n}", account_id=f"a{n}", national_id_hash=digest
                )

            await runtime.outbox.transaction(known)

        messages = [_a03(n, nid) for n, nid in enumerate(national_ids)]
        reader, writer = await asyncio.open_connection("127.0.0.1", runtime.extras["mllp_port"])
        started = time.perf_counter()
        for message in messages:
            writer.write(frame(message))
            await writer.drain()
            ack = await reader.readuntil(END_BLOCK)
            if b"MSA|AA|" not in ack:
                raise RuntimeError(f"not accepted: {ack!r}")
        intake = MESSAGES / (time.perf_counter() - started)
        writer.close()
        planned = await runtime.db["plans"].count_documents({})
        if planned != MESSAGES:
            raise RuntimeError(f"{planned} plans for {MESSAGES} discharges")
    finally:
        await stop_runtime(runtime, definition(settings))

    text = messages[0]
    started = time.perf_counter()
    for _ in range(PARSES):
        hl7.parse(text)
    bare_parse = PARSES / (time.perf_counter() - started)
    started = time.perf_counter()
    for _ in range(PARSES):
        parse_discharge(text)
    our_parse = PARSES / (time.perf_counter() - started)
    return [
        ("HL7 A03 over MLLP, planned, ACKed vs outbox write", intake, baseline),
        ("parse_discharge (checks, fallbacks) vs bare hl7.parse", our_parse, bare_parse),
    ]
