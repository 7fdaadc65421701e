"""The policy's time and memory budget around a query's statements, and errors without data.

DuckDB has no statement timeout, so a timer interrupts the connection when the query's time in
the pool (its `deadline.Deadline`; the ledger's checks after the statements have their own) is
up. An interrupt reaches only a statement that is running: one that comes while the query is
between statements (its Python steps, on a busy machine) would be lost, and the next statement
would run to its end. So the timer also marks the budget spent, and every statement starts only on a budget
not spent yet. The memory limit is set on the connection before its configuration is locked.
Whatever the engine says when a statement fails is never shown: its text can quote the values it
was converting. The refusal names the step of the query that failed instead.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager

import duckdb
import pandas as pd

from safepool.query.deadline import Deadline, over_time
from safepool.query.model import refuse


class Budget:
    """Runs the statements of one query until its `deadline`; failures become fixed messages."""

    def __init__(self, con: duckdb.DuckDBPyConnection, deadline: Deadline) -> None:
        self.con = con
        self.seconds = deadline.seconds
        self._spent = threading.Event()
        self._timer = threading.Timer(deadline.remaining(), self._spend)
        self._timer.daemon = True

    def _spend(self) -> None:
        self._spent.set()
        self.con.interrupt()

    def __enter__(self) -> Budget:
        self._timer.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._timer.cancel()

    def run(self, step: str, sql: str) -> None:
        """Execute one statement; `step` says in words what it does, for the message if it fails."""
        try:
            self._left(step)
            self.con.execute(sql)
        except duckdb.Error as exc:
            raise self._refusal(step, exc) from None

    def frame(self, step: str, sql: str, **frames: pd.DataFrame) -> pd.DataFrame:
        """The result of one statement as a DataFrame, with `frames` visible to it by name."""
        with self._visible(step, frames):
            return self.con.execute(sql).df()

    @contextmanager
    def _visible(self, step: str, frames: dict[str, pd.DataFrame]) -> Iterator[None]:
        """`frames` registered by name for one statement; an engine error becomes the step's refusal."""
        try:
            self._left(step)
            for name, frame in frames.items():
                self.con.register(name, frame)
            yield
        except duckdb.Error as exc:
            raise self._refusal(step, exc) from None
        finally:
            for name in frames:
                try:
                    self.con.unregister(name)
                except duckdb.Error:
                    pass

    def arrays(self, step: str, sql: str) -> dict[str, object]:
        """The result of one SELECT as NumPy arrays by column: streamed from a relation into the arrays
        (no DataFrame, and no whole result held by the engine first: about half the CPU of
        `execute(...).fetchnumpy()` on a few hundred thousand rows)."""
        try:
            self._left(step)
            return self.con.sql(sql).fetchnumpy()
        except duckdb.Error as exc:
            raise self._refusal(step, exc) from None

    def _left(self, step: str) -> None:
        """Raise the refusal of a spent budget before a statement starts."""
        if self._spent.is_set():
            raise self._refusal(step, duckdb.InterruptException("the budget's time is up"))

    def _refusal(self, step: str, exc: duckdb.Error) -> Exception:
        if isinstance(exc, duckdb.InterruptException):
            return over_time(self.seconds, step)
        if isinstance(exc, duckdb.OutOfMemoryException):
            return refuse(f"it needed more memory than the policy's budget (while it was trying to {step}); "
                          "ask for fewer cells or a narrower selection")
        return refuse(f"the pool could not {step} (the engine's message is withheld: it may quote data)")
