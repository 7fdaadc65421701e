"""A query's time budgets as deadlines: one for the pool's statements, one for the ledger's checks.

The policy gives a query `max_seconds` in the pool (its statements, which `budget.Budget`
interrupts, DuckDB having no statement timeout) and `max_check_seconds` for the ledger's checks
of the answer against earlier answers, which run in Python and NumPy and cannot be stopped from
outside. (The checks take longer the more a permit has been answered, and longer again at a
higher minimum frequency: a question the README asks after a study and a policy of 10 persons
took 16 s in the checks, where its pool statements took a fraction of a second.) So
the ledger's loops ask `time_left` between their steps: past the deadline it raises the budget's
refusal, and the ledger abandons its uncommitted change as for any error (nothing is remembered
of a refused query). The deadline is held in a context variable, so that code far below the
engine needs no parameter for it and a study's run, which sets none, is never stopped; work on a
`side_thread.SideThread` sees the deadline of the code that started it. Waiting for the ledger's
lock (another analyst's query being checked) is not the query's own time (`not_counted`).
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field

from safepool.query.model import refuse


@dataclass
class Deadline:
    """The policy's `seconds` for one query, counted from when it was made."""

    seconds: float
    ends: float = field(default=0.0)

    def __post_init__(self) -> None:
        self.ends = time.monotonic() + self.seconds

    def remaining(self) -> float:
        """Seconds left (never below zero)."""
        return max(self.ends - time.monotonic(), 0.0)

    def passed(self) -> bool:
        return time.monotonic() >= self.ends


AUDIT_STEP = "check the answer against the earlier answers"  # what the ledger's checks are, in the refusal

_CURRENT: ContextVar[Deadline | None] = ContextVar("safepool_query_deadline", default=None)


@contextmanager
def watched(deadline: Deadline) -> Iterator[Deadline]:
    """`deadline` holds for the code inside the block (and the side threads it starts)."""
    token = _CURRENT.set(deadline)
    try:
        yield deadline
    finally:
        _CURRENT.reset(token)


def time_left(step: str) -> None:
    """Raise the budget's refusal when the current query's deadline has passed; `step` says in words
    what the query was doing. Without a deadline (outside a query) nothing happens."""
    deadline = _CURRENT.get()
    if deadline is not None and deadline.passed():
        raise over_time(deadline.seconds, step)


@contextmanager
def not_counted() -> Iterator[None]:
    """The time inside the block is added to the current deadline: a wait for another query."""
    deadline = _CURRENT.get()
    started = time.monotonic()
    try:
        yield
    finally:
        if deadline is not None:
            deadline.ends += time.monotonic() - started


def over_time(seconds: float, step: str) -> Exception:
    """The refusal of a query that ran past the policy's time budget."""
    return refuse(f"it ran longer than the policy's budget of {seconds:g} seconds (while it was trying to "
                  f"{step}); ask for fewer cells or a narrower selection")
