"""The differencing memory of a permit's answered queries.

Answers whose cells hold almost the same persons give away the few who differ: the sum over a
group minus the sum over the same group without one person is that person's value, and with
three answers "everyone" minus "women but one" minus "men" is too. For every cell an answer
shows (and every total and sum of shown cells a reader can add up), the ledger keeps each
person's contribution (persons with rows in the cell, even when their values add up to zero),
keyed by a hash of the pseudonym. A new answer is checked twice against what was shown before:

- pairs: a new cell is compared with every remembered one; when the persons whose contribution
  differs (present in one and not the other, or present in both with another value) number
  between one and the minimum frequency minus one, the two cells would reveal them;
- all answers together (`safepool.query.audit_algebra`): no combination of every shown cell,
  added and subtracted, may give away a class of fewer persons than the minimum frequency.

The second check finds every single person the first one finds; the first also finds a group
of two to four persons that two cells single out when other answers tell those persons apart
(the algebra looks at groups that no answer tells apart). A column that fails either check is
withheld. The algebra assumes what the ledger holds passed it (a permit memory from before it
would have to be cleared). Not covered: quantiles (not remembered: the median of a group with
or without one person only tells on which side of it that person lies), and a combination that
is exactly zero for a person who contributes elsewhere (it tells that some of that person's
rows add up to zero). The file lives beside the pool, in
the same protected area as the pseudonyms it is keyed by; it is never an output and never
leaves the pool.
"""

from __future__ import annotations

from pathlib import Path

import duckdb
import numpy as np
import pandas as pd

from safepool.errors import SafepoolError, redact
from safepool.query.audit_algebra import PersonClasses, given_away

LEDGER_DIR = ".query-ledger"
PAIRS = "pairs"              # a new cell and a remembered one differ by too few persons
ALL_ANSWERS = "all answers"  # a combination of all shown cells gives away too few persons
_RELATIVE_TOLERANCE = 1e-9
_RATIO_DECIMALS = 9  # contributions in the same ratio to this many decimals are proportional


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

    def check(self, incoming: pd.DataFrame, column_of: dict[int, int], min_frequency: int) -> dict[int, str]:
        """Columns to withhold, each with the check it failed (PAIRS or ALL_ANSWERS), for incoming
        cells (columns cell, person, value; cell -> its column in column_of); remembers the rest."""
        close, same = self.compare(incoming, min_frequency)
        withheld = {column_of[cell]: PAIRS for cell in close}
        candidates = [cell for cell in column_of if column_of[cell] not in withheld and cell not in same]
        if candidates and self._gives_away(incoming, candidates, min_frequency):
            accepted: list[int] = []
            for column in sorted({column_of[cell] for cell in candidates}):
                cells = [cell for cell in candidates if column_of[cell] == column]
                if self._gives_away(incoming, accepted + cells, min_frequency):
                    withheld[column] = ALL_ANSWERS
                else:
                    accepted += cells
        self.remember(incoming[incoming["cell"].isin([c for c in candidates if column_of[c] not in withheld])])
        return withheld

    def _gives_away(self, incoming: pd.DataFrame, cells: list[int], min_frequency: int) -> bool:
        chosen = incoming[incoming["cell"].isin(cells)]
        return given_away(self.classes(chosen), -1 - np.asarray(cells), min_frequency) > 0

    def classes(self, incoming: pd.DataFrame) -> PersonClasses:
        """Remembered and incoming cells (numbered -1 - cell) with their persons compressed into
        classes of proportional contributions; a person whose contributions are all zero counts
        by membership (the answers could still tell that this person's value is zero)."""
        self.con.register("incoming", incoming)
        try:
            entries = self.con.sql(f"""
                WITH entries AS (SELECT cell, person, value FROM contributions
                                 UNION ALL SELECT -1 - cell, person, value FROM incoming),
                persons AS (
                    SELECT list(cell ORDER BY cell) FILTER (WHERE value <> 0) AS cells,
                           list(value ORDER BY cell) FILTER (WHERE value <> 0) AS vals,
                           list(cell ORDER BY cell) AS members
                    FROM entries GROUP BY person),
                patterns AS (
                    SELECT coalesce(cells, members) AS cells,
                           CASE WHEN cells IS NULL THEN list_transform(members, lambda c: 1.0)
                                ELSE list_transform(vals, lambda v: round(v / vals[1], {_RATIO_DECIMALS})) END AS ratios
                    FROM persons),
                classes AS (SELECT cells, ratios, count(*) AS size FROM patterns GROUP BY cells, ratios),
                numbered AS (SELECT row_number() OVER () - 1 AS class, * FROM classes)
                SELECT class, size, unnest(cells) AS cell, unnest(ratios) AS weight FROM numbered""").df()
        finally:
            self.con.unregister("incoming")
        return PersonClasses.from_entries(entries["class"].to_numpy(), entries["cell"].to_numpy(),
                                          entries["weight"].to_numpy(), entries["size"].to_numpy())

    def compare(self, incoming: pd.DataFrame, min_frequency: int) -> tuple[set[int], set[int]]:
        """Incoming cells (columns cell, person, value; every person with rows in the cell, even
        with a value of zero) that differ from a remembered cell by 1 to min_frequency - 1 persons,
        and those equal to a remembered cell."""
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

