"""Facts of whole pool tables that a question's definitions need, asked of the pool once.

Which of two tables holds every person of the other, which kinds of value outside the
dictionary's pieces (missing, not in the code list, before or after the declared years) a
variable's table holds, and whether a table has one row per person, or per person and quarter
(`safepool.query.person_periods`): no filter of a question changes them, so each is asked once per state of
the pool file in a process (`safepool.query.definitions` says why they matter). They are facts of
whole registers, never of a person, and stay inside the query engine.
"""

from __future__ import annotations

from pathlib import Path

from safepool.pool.access import POOL_FILE
from safepool.query.budget import Budget
from safepool.query.compile import Compiler, date_sql, quote_name
from safepool.query.definitions import OUTSIDE
from safepool.query.model import PERSON, VariableRef

_KNOWN: dict[tuple, object] = {}  # (pool file's state, what was asked) -> the answer


class PoolFacts:
    """The facts of one pool file, asked through a question's budget and compiler."""

    def __init__(self, budget: Budget, pool_dir: Path, permit: str, compiler: Compiler) -> None:
        info = (Path(pool_dir) / permit / POOL_FILE).stat()
        self._pool = (str(pool_dir), permit, info.st_ino, info.st_size, info.st_mtime_ns)
        self._budget, self._compiler = budget, compiler

    def holds_every_person(self, table: str, other: str) -> bool:
        """Whether `table` holds every person of `other`."""
        key = (self._pool, "covers", table, other)
        if key not in _KNOWN:
            found = self._budget.arrays("compare the tables' persons", f"SELECT NOT EXISTS (SELECT {PERSON} FROM "
                                        f"{other} EXCEPT SELECT {PERSON} FROM {table}) AS covered")
            _KNOWN[key] = bool(found["covered"][0])
        return bool(_KNOWN[key])

    def one_row_per_person(self, table: str) -> bool:
        """Whether `table` holds at most one row per person."""
        key = (self._pool, "one per person", table)
        if key not in _KNOWN:
            found = self._budget.arrays("count the table's rows per person", f"SELECT count(*) = count(DISTINCT "
                                        f"{PERSON}) AS one FROM {quote_name(table)}")
            _KNOWN[key] = bool(found["one"][0])
        return bool(_KNOWN[key])

    def one_row_per_period(self, date: VariableRef, grain: str) -> bool:
        """Whether `date`'s table holds at most one row per person in each quarter (or year) of it."""
        key = (self._pool, "one per period", date, grain)
        if key not in _KNOWN:
            day = date_sql(self._compiler.dictionary[date.table][date.name], quote_name(date.name))
            period = f"year({day})" + (f" * 4 + quarter({day})" if grain == "quarter" else "")
            found = self._budget.arrays("count the table's rows per person and period",
                                        f"SELECT count(*) = count(DISTINCT ({PERSON}, {period})) AS one FROM "
                                        f"{quote_name(date.table)} WHERE {quote_name(date.name)} IS NOT NULL")
            _KNOWN[key] = bool(found["one"][0])
        return bool(_KNOWN[key])

    def outside(self, variable: VariableRef) -> frozenset[str]:
        """The kinds of value outside the variable's pieces that its table holds."""
        key = (self._pool, "outside", variable)
        if key not in _KNOWN:
            found = self._budget.arrays("look for values outside the dictionary", self._compiler.outside_keys(variable))
            _KNOWN[key] = frozenset(OUTSIDE[int(k)] for k in found["k"])
        return _KNOWN[key]  # type: ignore[return-value]
