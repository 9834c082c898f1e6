"""``make demo``: seed the ops console's demo alliance into a running ``make up``.

.venv/bin/python -m devstack.demo [--site demo] [--gateway http://127.0.0.1:8080]
"""

from __future__ import annotations

import argparse
import asyncio
import os
from pathlib import Path

import httpx

from devstack.demo.base import PASSWORD, STAFF_ROLES, DemoExists
from devstack.demo.run import seed
from devstack.keys import ensure_dev_secrets

ROOT = Path(__file__).resolve().parents[2]


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--site", default="demo")
    parser.add_argument("--gateway", default="http://127.0.0.1:8080")
    args = parser.parse_args()
    secrets = ensure_dev_secrets(Path(os.environ.get("CARELOOP_STATE_DIR", ROOT / ".data")))
    async with httpx.AsyncClient(base_url=args.gateway, timeout=30) as gw:
        try:
            demo = await seed(gw, secrets, args.site)
        except DemoExists as exc:
            print(
                f"{exc}: log in as {args.site}.agent (or .coord .nurse .admin ...), "
                f"password {PASSWORD}; or seed another: --site <name>"
            )
            return
        except httpx.ConnectError:
            print(f"nothing answers at {args.gateway}: start the system with make up first")
            raise SystemExit(2) from None
    print(f"demo alliance {demo.site!r}: {demo.hospital} (hospital), {demo.clinic} (clinic)")
    print(f"console: {args.gateway}/console/  password of every account: {demo.password}")
    for key, (roles, where) in STAFF_ROLES.items():
        print(f"  {demo.usernames[key]:<16} {','.join(roles):<12} {where}")


if __name__ == "__main__":
    asyncio.run(main())
