"""Mint a development access token signed with the dev key in ``.data/keys`` (make up).

    .venv/bin/python -m devstack.token acct-1 patient
    .venv/bin/python -m devstack.token his-sync service
    .venv/bin/python -m devstack.token agent-7 agent --org h1

For scripts and trying the API locally; people log in through ``/v1/auth/login/*``. A
minted token creates no account: ``GET /v1/auth/me`` describes it (id, kind, roles, org_id,
``"stored": false``) and every service accepts it as it would a login's token.
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path

from devstack.keys import ensure_dev_secrets
from shared.auth import TokenMinter

ROOT = Path(__file__).resolve().parent.parent


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("subject")
    parser.add_argument("roles", nargs="+")
    parser.add_argument("--org", default=None)
    parser.add_argument("--ttl", type=int, default=3600)
    args = parser.parse_args()
    secrets = ensure_dev_secrets(Path(os.environ.get("CARELOOP_STATE_DIR", ROOT / ".data")))
    minter = TokenMinter(
        secrets.jwt_private_key_file.read_text(), issuer="careloop-gateway", audience="careloop"
    )
    print(minter.mint(args.subject, args.roles, org_id=args.org, ttl_seconds=args.ttl))


if __name__ == "__main__":
    main()
