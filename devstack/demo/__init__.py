"""Demo data for the ops console: ``make demo`` (against ``make up``) and the console's
browser tests (``tests/e2e/console``) seed the same way, through the public APIs.

``seed(gw, secrets, site)`` builds one small alliance named by ``site``: a tertiary
hospital and a community clinic, their staff (one account per console role), a clinic
catalogue with sessions, real-name patients, and each domain's working data. Each part
lives in its own module of this package.
"""

from devstack.demo.base import Demo, seed_base
from devstack.demo.run import seed

__all__ = ["Demo", "seed", "seed_base"]
