"""Work on a thread beside the caller, its result or its error given back where the caller waits.

The work runs in a copy of the caller's context, so that it holds to the caller's query deadline
(`safepool.query.deadline`).

The ledger writes its change beside the all-answers audit, and the audit runs its algebra beside
its group audits: each spends most of its time in C code (NumPy, SciPy, DuckDB) that lets the
other thread run, so on a machine of two cores the two take about the time of the longer.
"""

from __future__ import annotations

import contextvars
import threading
from collections.abc import Callable
from typing import Any


class SideThread(threading.Thread):
    """Work started on a thread of its own; `wait` gives back its result, or raises what it raised,
    in the caller's thread."""

    def __init__(self, name: str, work: Callable[[], Any]) -> None:
        super().__init__(name=name)  # not a daemon: see `safepool.duckdb_connection.prepare_instance`
        self._context = contextvars.copy_context()
        self._work, self._result, self.error = work, None, None
        self.start()

    def run(self) -> None:
        try:
            self._result = self._context.run(self._work)
        except BaseException as exc:  # raised in the caller's thread
            self.error = exc

    def wait(self) -> Any:
        self.join()
        if self.error is not None:
            raise self.error
        return self._result
