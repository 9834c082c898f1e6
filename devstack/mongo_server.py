"""``python -m devstack.mongo_server [SecantusDB flags]``: the embedded MongoDB stand-in,
started as SecantusDB's own command line starts it, with one server parameter more.

``--transaction-lifetime SECONDS`` is mongod's ``transactionLifetimeLimitSeconds``: how
long a transaction left open (its process was killed) holds its writes before the server
aborts it. SecantusDB takes it as a constructor argument only; 60, as in mongod, unless
given. The test session uses a shorter one, so crash tests do not wait a minute.
"""

from __future__ import annotations

import functools
import sys

from secantus import cli, server


def main(argv: list[str]) -> int:
    lifetime = 60.0
    if "--transaction-lifetime" in argv:
        at = argv.index("--transaction-lifetime")
        lifetime = float(argv[at + 1])
        argv = argv[:at] + argv[at + 2 :]
    original = server.SecantusDBServer.__init__
    server.SecantusDBServer.__init__ = functools.partialmethod(
        original, transaction_lifetime_seconds=lifetime
    )
    return int(cli.main(argv))


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
