"""Work on a thread beside the caller, its result or its error given back where the caller waits.

The work runs in a copy of the caller's context, so that it holds to the caller's query deadline
(`safepool.query.deadline`).

The ledger writes its change beside the all-answers audit, and the audit runs its algebra beside
its group audits: each spends most of its time in C code (NumPy, SciPy, DuckDB) that lets the
other thread run, so on a machine of two cores the two take about the time of the longer.

The threads are kept for the process's life and handed the work, rather than started for it: a
thread's start waits until the new thread holds the interpreter's lock, which another busy thread
(the ledger's write, when the algebra starts) held for up to the interpreter's switch interval,
0.3-3 ms of every query on the caller's way. They are not daemons (see
`safepool.duckdb_connection.prepare_instance`): the interpreter's exit waits for work under way.
A forked child has none of its parent's threads, and makes them afresh.
"""

from __future__ import annotations

import contextvars
import os
import threading
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any

# threads kept: a query has two pieces of work beside it at most at once (its ledger file's write and
# its algebra, then the file's commit, then its checkpoint), and a process may check a few queries at once
_THREADS = 8
_threads: ThreadPoolExecutor | None = None
_threads_lock = threading.Lock()


def _kept_threads() -> ThreadPoolExecutor:
    global _threads
    with _threads_lock:
        if _threads is None:
            _threads = ThreadPoolExecutor(max_workers=_THREADS, thread_name_prefix="safepool-side")
        return _threads


def _made_afresh_in_a_child() -> None:
    global _threads, _threads_lock
    _threads, _threads_lock = None, threading.Lock()


os.register_at_fork(after_in_child=_made_afresh_in_a_child)


class SideThread:
    """Work handed to a thread of its own; `wait` gives back its result, or raises what it raised,
    in the caller's thread. `name` says what the work is."""

    def __init__(self, name: str, work: Callable[[], Any]) -> None:
        self.name = name
        self.error: BaseException | None = None
        self._done: Future[Any] = _kept_threads().submit(contextvars.copy_context().run, work)

    def join(self) -> None:
        """Wait until the work has ended; what it raised is then `error`."""
        self.error = self._done.exception()

    def wait(self) -> Any:
        self.join()
        if self.error is not None:
            raise self.error
        return self._done.result()
