"""The `safepool` command: a thin shell over the Session (sign in, one Session method, print).

Exit codes (one place: safepool.cli.common.EXIT_CODES): 0 done; 1 the command ran and found
problems; 2 the command line is wrong; 3 invalid request; 4 not found; 5 refused; 6 conflict;
7 unavailable; 8 any other error.
"""

import atexit
import os
import sys
import threading

from safepool.beside import started_by_safepool
from safepool.cli import data, doctor, governance, insight, outputs, policy, query, steward, study, unlock  # noqa: F401
from safepool.cli import holders  # noqa: F401  (after governance: it adds to the permit commands)
from safepool.cli.common import EXIT_CODES, app  # (the imports above register the commands)

__all__ = ["app", "main", "EXIT_CODES"]


def main() -> None:
    """The `safepool` command (the console script). Once the command has run, its exit handlers
    have run and its output is flushed, the process ends at once: the interpreter's own teardown
    would free every imported module's objects one by one, about 1.2 s after `safepool demo`,
    for nothing. A thread other than this one still running gets the interpreter's usual exit,
    which waits for it."""
    started_by_safepool()
    try:
        app()
    except SystemExit as done:
        code = done.code
        if isinstance(code, str):
            print(code, file=sys.stderr)
        _end(code if isinstance(code, int) else 0 if code is None else 1)


def _end(code: int) -> None:
    if any(thread is not threading.main_thread() and not thread.daemon for thread in threading.enumerate()):
        sys.exit(code)
    atexit._run_exitfuncs()
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (OSError, ValueError):  # a closed pipe or stream: nothing more can be written to it
            pass
    os._exit(code)
