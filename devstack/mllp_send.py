"""Send HL7 v2 messages over MLLP, as a HIS interface engine would, and print each ACK.

    .venv/bin/python -m devstack.mllp_send 127.0.0.1:2575 < discharge.hl7

Standard input holds one message, or several separated by a blank line; segment ends may
be LF (they are sent as CR, as HL7 wants). Each ACK is printed with its segments on
separate lines. Exit status 1 when any ACK is not AA.
"""

from __future__ import annotations

import argparse
import asyncio
import sys

from services.followup.mllp import END_BLOCK, frame


def messages(text: str) -> list[str]:
    blocks = [b.strip() for b in text.replace("\r\n", "\n").replace("\r", "\n").split("\n\n")]
    return ["\r".join(b.splitlines()) + "\r" for b in blocks if b]


async def send(host: str, port: int, outgoing: list[str], timeout: float = 30) -> list[str]:
    reader, writer = await asyncio.wait_for(asyncio.open_connection(host, port), timeout)
    answers = []
    try:
        for message in outgoing:
            writer.write(frame(message))
            await writer.drain()
            raw = await asyncio.wait_for(reader.readuntil(END_BLOCK), timeout)
            answers.append(raw[1 : -len(END_BLOCK)].decode("utf-8", errors="replace"))
    finally:
        writer.close()
    return answers


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("address", help="host:port of the MLLP listener")
    args = parser.parse_args()
    host, _, port = args.address.rpartition(":")
    try:
        answers = asyncio.run(send(host or "127.0.0.1", int(port), messages(sys.stdin.read())))
    except (OSError, TimeoutError) as exc:
        print(f"mllp_send: {args.address}: {exc}", file=sys.stderr)
        return 2
    accepted = True
    for answer in answers:
        print(answer.replace("\r", "\n").rstrip("\n"))
        accepted &= "\nMSA|AA|" in "\n" + answer.replace("\r", "\n")
    return 0 if accepted else 1


if __name__ == "__main__":
    raise SystemExit(main())
