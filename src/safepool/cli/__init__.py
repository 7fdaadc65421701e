"""The `safepool` command: a thin shell over the Session (sign in, one Session method, print).

Exit codes (one place: safepool.cli.common.EXIT_CODES): 0 done; 1 the command ran and found
problems; 2 the command line is wrong; 3 invalid request; 4 not found; 5 refused; 6 conflict;
7 unavailable; 8 any other error.
"""

from importlib import import_module
from importlib.util import find_spec

from safepool.cli import data, governance, outputs, policy, query, steward, study  # noqa: F401  (registers the commands)
from safepool.cli.common import EXIT_CODES, app

if find_spec("safepool.cli.doctor") is not None:  # `safepool doctor`, kept in its own module
    import_module("safepool.cli.doctor")

__all__ = ["app", "EXIT_CODES"]
