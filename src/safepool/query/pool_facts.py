"""Facts of whole pool tables that a question's definitions need, found once when the pool is built.

Which of two tables holds every person of the other, which kinds of value outside the
dictionary's pieces (missing, not in the code list, before or after the declared years) a
variable's table holds, and whether a table has one row per person, or per person and period
(`safepool.query.person_periods`): no filter of a question changes them
(`safepool.query.definitions` says why they matter). So the build finds them with the pool's
tables and keeps them in the pool's manifest, beside its data dictionary, and every query reads
them there: asked of the pool instead, each took a scan of a whole table in every process that
asked (up to a second a table at 300,000 persons). They are facts of whole registers, never of a
person, and stay inside the query engine.
"""

from __future__ import annotations

from typing import Any

import duckdb

from safepool.dictionary import Variable
from safepool.faults import Unavailable
from safepool.pool.access import PoolNotBuilt
from safepool.query.compile import Compiler, date_sql, quote_name
from safepool.query.definitions import OUTSIDE
from safepool.query.model import PERSON, AggregateModel, Dictionary, VariableRef
from safepool.query.person_periods import period_grain

FACTS = "facts"  # the manifest's entry


def find_facts(con: duckdb.DuckDBPyConnection, dictionary: Dictionary) -> dict[str, Any]:
    """The facts of the pool open on `con` (its tables by name), as the manifest keeps them."""
    tables = list(dictionary)
    one_per_person = [table for table in tables
                      if _true(con, f"SELECT count(*) = count(DISTINCT {PERSON}) FROM {quote_name(table)}")]
    periods, outside = [], {}
    for table, variables in dictionary.items():
        compiler = Compiler(AggregateModel(tables=(table,), groups=(), measures=(), filters=()), dictionary)
        for name, variable in variables.items():
            if variable.level == "text":
                continue
            ref = VariableRef(table, name)
            found = con.execute(compiler.outside_keys(ref)).fetchall()
            outside[str(ref)] = sorted(OUTSIDE[int(k)] for (k,) in found)
            if variable.level == "date" and (table in one_per_person or _one_per_period(con, ref, variable)):
                periods.append(str(ref))
    return {"covers": _covers(con, tables), "one_row_per_person": one_per_person, "one_row_per_period": periods,
            "outside": outside}


def _true(con: duckdb.DuckDBPyConnection, sql: str) -> bool:
    return bool(con.execute(sql).fetchall()[0][0])


def _one_per_period(con: duckdb.DuckDBPyConnection, ref: VariableRef, variable: Variable) -> bool:
    day = date_sql(variable, quote_name(ref.name))
    period = f"year({day})" + (f" * 4 + quarter({day})" if period_grain(variable) == "quarter" else "")
    return _true(con, f"SELECT count(*) = count(DISTINCT ({PERSON}, {period})) FROM {quote_name(ref.table)} "
                      f"WHERE {quote_name(ref.name)} IS NOT NULL")


def _covers(con: duckdb.DuckDBPyConnection, tables: list[str]) -> dict[str, list[str]]:
    """For each table, the other tables whose every person it holds: from which tables each person
    is in, as one bit per table, read in one pass (the distinct sets of bits, not the persons)."""
    if not tables:
        return {}
    union = " UNION ALL ".join(f"SELECT DISTINCT {PERSON}, {1 << i}::HUGEINT AS bit FROM {quote_name(t)}"
                               for i, t in enumerate(tables))
    masks = [int(m) for (m,) in con.execute(f"SELECT DISTINCT bit_or(bit) FROM ({union}) GROUP BY {PERSON}")
             .fetchall()]
    return {table: [other for j, other in enumerate(tables) if j != i
                    and all(m >> i & 1 for m in masks if m >> j & 1)]
            for i, table in enumerate(tables)}


class PoolFacts:
    """The facts the manifest of a pool keeps (`find_facts`)."""

    def __init__(self, manifest: dict[str, Any], permit: str) -> None:
        facts = manifest.get(FACTS)
        if not isinstance(facts, dict):
            raise PoolNotBuilt(f"the pool of permit {permit} was built before its tables' facts were kept; "
                               "rebuild it")
        try:
            self._covers = {table: frozenset(others) for table, others in facts["covers"].items()}
            self._one_per_person = frozenset(facts["one_row_per_person"])
            self._one_per_period = frozenset(facts["one_row_per_period"])
            self._outside = {ref: frozenset(kinds) for ref, kinds in facts["outside"].items()}
        except (KeyError, TypeError, AttributeError):
            raise Unavailable(f"the tables' facts of the pool of permit {permit} are damaged; rebuild the pool") \
                from None

    def holds_every_person(self, table: str, other: str) -> bool:
        """Whether `table` holds every person of `other`."""
        return other in self._covers.get(table, ())

    def one_row_per_person(self, table: str) -> bool:
        """Whether `table` holds at most one row per person."""
        return table in self._one_per_person

    def one_row_per_period(self, date: VariableRef) -> bool:
        """Whether `date`'s table holds at most one row per person in each period of it (`period_grain`)."""
        return str(date) in self._one_per_period

    def outside(self, variable: VariableRef) -> frozenset[str]:
        """The kinds of value outside the variable's pieces that its table holds (of a variable a
        question may filter or group on: every one but free text)."""
        return self._outside[str(variable)]
