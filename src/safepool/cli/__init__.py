"""The `safepool` command: a thin shell over the Session (sign in, one Session method, print).

Exit codes (one place: safepool.cli.common.EXIT_CODES): 0 done; 1 the command ran and found
problems; 2 the command line is wrong; 3 invalid request; 4 not found; 5 refused; 6 conflict;
7 unavailable; 8 any other error.
"""

from safepool.cli import data, doctor, governance, insight, outputs, policy, query, steward, study, unlock  # noqa: F401
from safepool.cli import holders  # noqa: F401  (after governance: it adds to the permit commands)
from safepool.cli.common import EXIT_CODES, app  # (the imports above register the commands)

__all__ = ["app", "EXIT_CODES"]
