"""The differencing memory of a permit's answered queries.

Two answers whose cells hold almost the same persons give away the few who differ: the sum
over a group minus the sum over the same group without one person is that person's value.
For every cell an answer shows (and every total and sum of shown cells a reader can add up),
the ledger keeps each contributing person's contribution, keyed by a hash of the pseudonym.
A new cell is compared with every remembered one: when the persons whose contribution differs
(present in one and not the other, or present in both with another value) number between one
and the minimum frequency minus one, the two cells would reveal them, and the new answer's
column is withheld.

What it does not catch: differences that need three or more answers (A minus B minus C), and
quantiles (not remembered: the median of a group with or without one person only tells on
which side of it that person lies). The file lives beside the pool, in the same protected
area as the pseudonyms it is keyed by; it is never an output and never leaves the pool.
"""

from __future__ import annotations

from pathlib import Path

import duckdb
import pandas as pd

from safepool.errors import SafepoolError, redact

LEDGER_DIR = ".query-ledger"
_RELATIVE_TOLERANCE = 1e-9


class LedgerBusy(SafepoolError):
    """Another query of the same permit is writing the ledger."""


class Ledger:
    """Remembered cells of one permit: contributions(cell, person, value) and cells(cell, size)."""

    def __init__(self, pool_dir: Path, permit: str) -> None:
        folder = pool_dir / LEDGER_DIR
        folder.mkdir(mode=0o700, exist_ok=True)
        try:
            self.con = duckdb.connect(str(folder / f"{permit}.duckdb"))
        except duckdb.Error as exc:
            raise LedgerBusy(f"the query ledger of permit {permit} is in use ({redact(str(exc))}); "
                             "try again in a moment") from None
        self.con.execute("SET enable_external_access = false")
        self.con.execute("CREATE TABLE IF NOT EXISTS contributions (cell BIGINT, person UBIGINT, value DOUBLE)")
        self.con.execute("CREATE TABLE IF NOT EXISTS cells (cell BIGINT PRIMARY KEY, size BIGINT)")

    def __enter__(self) -> Ledger:
        return self

    def __exit__(self, *exc: object) -> None:
        self.con.close()

    def compare(self, incoming: pd.DataFrame, min_frequency: int) -> tuple[set[int], set[int]]:
        """Incoming cells (columns cell, person, value; zero values left out) that differ from a
        remembered cell by 1 to min_frequency - 1 persons, and those equal to a remembered cell."""
        self.con.register("incoming", incoming)
        try:
            pairs = self.con.sql(f"""
                WITH sizes AS (SELECT cell, count(*) AS size FROM incoming GROUP BY cell),
                pairs AS (
                    SELECT i.cell AS new, c.cell AS old, count(*) AS overlap,
                           count(*) FILTER (WHERE abs(i.value - c.value)
                               <= {_RELATIVE_TOLERANCE} * greatest(abs(i.value), abs(c.value), 1)) AS same
                    FROM incoming i JOIN contributions c USING (person) GROUP BY ALL)
                SELECT p.new, s.size + o.size - p.overlap - p.same AS differing
                FROM pairs p JOIN sizes s ON s.cell = p.new JOIN cells o ON o.cell = p.old""").fetchall()
        finally:
            self.con.unregister("incoming")
        close = {int(cell) for cell, differing in pairs if 0 < differing < min_frequency}
        same = {int(cell) for cell, differing in pairs if differing == 0}
        return close, same

    def remember(self, incoming: pd.DataFrame) -> None:
        """Keep the incoming cells (renumbered after the remembered ones)."""
        if incoming.empty:
            return
        self.con.register("incoming", incoming)
        try:
            self.con.execute("BEGIN TRANSACTION")
            offset = self.con.execute("SELECT coalesce(max(cell), 0) + 1 FROM cells").fetchall()[0][0]
            self.con.execute(f"INSERT INTO contributions SELECT cell + {int(offset)}, person, value FROM incoming")
            self.con.execute(f"INSERT INTO cells SELECT cell + {int(offset)}, count(*) FROM incoming GROUP BY cell")
            self.con.execute("COMMIT")
        finally:
            self.con.unregister("incoming")

