"""The SQL of each feature operation, once per engine: DuckDB here (the embedded default).

A dialect only writes expressions; what a feature means lives in the configuration. Another
engine (Spark SQL) is another subclass with the same methods.
"""

from __future__ import annotations

import re
from functools import cache

from safepool.duckdb_connection import open_duckdb, quote_literal

_PLAIN = re.compile(r"^[a-z_][a-z0-9_]*$")


@cache
def _reserved() -> frozenset[str]:
    with open_duckdb() as con:
        rows = con.sql("SELECT keyword_name FROM duckdb_keywords() WHERE keyword_category = 'reserved'").fetchall()
    return frozenset(row[0] for row in rows)


def quote(name: str) -> str:
    """A plain lower-case name as it is (the SQL reads as written by hand); any other name quoted."""
    if _PLAIN.match(name) and name not in _reserved():
        return name
    return '"' + name.replace('"', '""') + '"'


def literal(value: str | int | float) -> str:
    if isinstance(value, bool):
        return "TRUE" if value else "FALSE"
    if isinstance(value, (int, float)):
        return repr(value)
    return quote_literal(str(value))


class DuckDBDialect:
    """DuckDB SQL: quarter index = year * 4 + quarter - 1."""

    name = "duckdb"
    NEVER = "DATE '9999-12-31'"

    def quarter_of(self, column: str, fmt: str) -> str:
        """The quarter index of a row's time variable, written in its holder's format."""
        if fmt == "date":
            return f"(year({column}) * 4 + quarter({column}) - 1)"
        if fmt == "yyyyq":
            return (f"(CAST(substr({column}, 1, 4) AS INTEGER) * 4 + CAST(substr({column}, 6, 1) AS INTEGER) - 1)")
        if fmt == "yyyymm":
            return f"(({column} // 100) * 4 + (({column} % 100) - 1) // 3)"
        return f"({column} * 4)"  # a year: its first quarter

    def first_day(self, t: str) -> str:
        """The first day of quarter index t."""
        return f"make_date(CAST({t} // 4 AS INTEGER), CAST(({t} % 4) * 3 + 1 AS INTEGER), 1)"

    def quarter_label(self, t: str) -> str:
        return f"CAST({t} // 4 AS VARCHAR) || 'Q' || CAST({t} % 4 + 1 AS VARCHAR)"

    def years_between(self, start: str, day: str) -> str:
        return f"date_diff('day', {start}, {day}) / 365.25"

    def year_of(self, day: str) -> str:
        return f"year({day})"

    def indicator(self, condition: str) -> str:
        return f"CAST({condition} AS INTEGER)"

    def in_codes(self, column: str, codes: list[str | int]) -> str:
        if len(codes) == 1:
            return f"{column} = {literal(codes[0])}"
        return f"{column} IN ({', '.join(literal(c) for c in codes)})"

    def aggregate(self, kind: str, of: str | None, condition: str | None) -> str:
        if kind == "exists":
            return "1"
        if kind == "count":
            return "count(*)" if condition is None else f"count(*) FILTER (WHERE {condition})"
        if kind == "sum":
            return f"sum({of})" if condition is None else f"sum({of}) FILTER (WHERE {condition})"
        return f"max({self.indicator(condition or 'TRUE')})"

    def rounded(self, sql: str, decimals: int) -> str:
        return f"round({sql}, {decimals})"

    def coalesce(self, sql: str, missing: str | int | None) -> str:
        return sql if missing is None else f"coalesce({sql}, {literal(missing)})"

    def living_on(self, since: str, until: list[str], day: str) -> str:
        leaves = " ".join(f"AND coalesce({u}, {self.NEVER}) > {day}" for u in until)
        return f"({since} <= {day} {leaves})"

    def first_valid(self, value: str, start: str) -> str:
        """The value of the earliest-starting span (ties to the smallest value)."""
        return f"arg_min({value}, ({start}, {value}))"

    def highest_level(self, value: str) -> str:
        return f"max(TRY_CAST({value} AS INTEGER))"

    def bands(self, of: str, edges: list[float], labels: list[str]) -> str:
        whens = " ".join(f"WHEN {of} >= {literal(edge)} THEN {literal(label)}"
                         for edge, label in reversed(list(zip(edges, labels[1:]))))
        return f"CASE {whens} ELSE {literal(labels[0])} END"

    def labels(self, of: str, mapping: dict[str, str], other: str) -> str:
        """A label per code (a code is written as text; the engine reads it in the column's type)."""
        whens = " ".join(f"WHEN {of} = {literal(code)} THEN {literal(label)}" for code, label in mapping.items())
        return f"CASE {whens} ELSE {literal(other)} END"

    def window_sum(self, value: str, t: str, unit_t: str, quarters: int, decimals: int) -> str:
        return f"round(coalesce(sum({value}) FILTER (WHERE {t} >= {unit_t} - {quarters}), 0), {decimals})"

    def quarters_since_last(self, value: str, t: str, unit_t: str, quarters: int) -> str:
        return f"{unit_t} - max({t}) FILTER (WHERE {t} >= {unit_t} - {quarters} AND {value} > 0)"


DIALECTS = {"duckdb": DuckDBDialect}
