"""An answer's entries are the same question exactly when they select the same codes, bins and
months of the same tables, however the question was written (see `safepool.query.definitions`)."""

from __future__ import annotations

import pytest

from safepool.query.definitions import entry_definitions, person_tables
from safepool.query.model import check_model
from safepool.query.sql_syntax import model_from_sql
from safepool.registers.catalogue import Variable
from test_query_syntax import POOL


def definition(sql: str, cells: set[tuple], outside: frozenset[str] = frozenset(), pool: dict = POOL) -> str:
    """The definition of the entry adding up `cells` (labels over the question's groups), in a pool
    whose population register holds every person of the others."""
    checked = check_model(model_from_sql(sql, pool), pool, 1000)
    tables = person_tables(checked, lambda table, other: table == "population")
    return entry_definitions(checked, pool, tables, lambda variable: outside, checked.measures[0], [cells])[0]


def test_an_integer_variable_has_nothing_between_edges_one_apart():
    """`children > 1` and `children >= 2` take the same persons when the count is an integer and 2
    is the next edge: one question, not an empty difference of two (a float keeps them apart, and
    so do edges further apart, where 3 is above 1 and below 4)."""
    def counted(type_: str, bins: list[int]) -> dict:
        children = Variable(name="children", column="children", type=type_, description="own children",
                            level="numeric", unit="children", bins=bins)
        return {**POOL, "population": {**POOL["population"], "children": children}}

    def of(condition: str, pool: dict) -> str:
        return definition(f"SELECT count(DISTINCT pid) AS n FROM population WHERE {condition}", {()}, pool=pool)

    integers = counted("integer", [1, 2, 4])
    assert of("children > 1", integers) == of("children >= 2", integers)
    assert of("children > 2", integers) != of("children >= 4", integers)
    assert of("children < 1", integers) != of("children < 2", integers)
    floats = counted("float", [1, 2, 4])
    assert of("children > 1", floats) != of("children >= 2", floats)


@pytest.mark.parametrize("one, other", [
    (("SELECT count(DISTINCT pid) AS n FROM population WHERE sex = 'F'", {()}),
     ("SELECT count(DISTINCT pid) AS n FROM population WHERE sex IN ('F')", {()})),
    (("SELECT count(DISTINCT pid) AS n FROM population WHERE sex = 'F'", {()}),
     ("SELECT sex, count(DISTINCT pid) AS n FROM population GROUP BY sex", {("female",)})),
    (("SELECT count(DISTINCT pid) AS n FROM payments WHERE paid_on >= DATE '2019-01-01' "
      "AND paid_on < DATE '2020-01-01'", {()}),
     ("SELECT year(paid_on) AS y, count(DISTINCT pid) AS n FROM payments GROUP BY 1", {("2019",)})),
    (("SELECT count(DISTINCT pid) AS n FROM payments WHERE amount >= 100 AND amount < 400", {()}),
     ("SELECT bin(amount) AS b, count(DISTINCT pid) AS n FROM payments GROUP BY 1",
      {("100 to under 250 EUR",), ("250 to under 400 EUR",)})),
    (("SELECT count(DISTINCT pid) AS n FROM payments", {()}),
     ("SELECT count(DISTINCT pid) AS n FROM payments JOIN population USING (pid)", {()})),
    (("SELECT sex, count(DISTINCT pid) AS n FROM population JOIN payments USING (pid) WHERE amount >= 100 "
      "GROUP BY sex", {("male",)}),
     ("SELECT sex, count(DISTINCT pid) AS n FROM population LEFT JOIN payments USING (pid) WHERE amount >= 100 "
      "GROUP BY sex", {("male",)})),
    (("SELECT count(DISTINCT pid) AS n FROM population WHERE birth_year > 1940", {()}),
     ("SELECT count(DISTINCT pid) AS n FROM population WHERE birth_year >= 1941", {()})),
], ids=["= and IN", "filter and group label", "dates by filter and by year", "bins by filter and by group",
        "a register holding every person joined", "an inner join and a filtered left join",
        "years written as years"])
def test_one_selection_written_two_ways_is_one_definition(one, other):
    assert definition(*one) == definition(*other)


@pytest.mark.parametrize("one, other", [
    (("SELECT count(DISTINCT pid) AS n FROM population WHERE birth_year < 1941", {()}),
     ("SELECT count(DISTINCT pid) AS n FROM population WHERE birth_year < 1940", {()})),
    (("SELECT count(DISTINCT pid) AS n FROM payments WHERE amount >= 250", {()}),
     ("SELECT count(DISTINCT pid) AS n FROM payments", {()})),
    (("SELECT count(DISTINCT pid) AS n FROM population", {()}),
     ("SELECT count(DISTINCT pid) AS n FROM population JOIN visits USING (pid)", {()})),
    (("SELECT median(amount) AS q FROM payments", {()}),
     ("SELECT count(DISTINCT pid) AS n FROM payments", {()})),
    (("SELECT count(DISTINCT pid) AS n FROM payments WHERE amount > 100", {()}),
     ("SELECT count(DISTINCT pid) AS n FROM payments WHERE amount >= 100", {()})),
    (("SELECT count(DISTINCT pid) AS n FROM payments WHERE amount = 100", {()}),
     ("SELECT count(DISTINCT pid) AS n FROM payments WHERE amount >= 100 AND amount < 250", {()})),
], ids=["windows a year apart", "a band and everyone", "a register that restricts", "a quantile's window",
        "above an edge and from it", "an edge and its bin"])
def test_different_selections_are_different_definitions(one, other):
    assert definition(*one) != definition(*other)


def test_missing_values_tell_a_filter_that_takes_every_piece_from_none():
    """The fifth review's lever: a filter that takes every piece still leaves out missing values
    (a missing immigration date means born in Finland). Where the table holds missing values, the
    filter is part of the definition; so is a group, even in its total."""
    everyone = ("SELECT count(DISTINCT pid) AS n FROM payments", {()})
    dated = ("SELECT count(DISTINCT pid) AS n FROM payments WHERE paid_on >= DATE '2018-01-01'", {()})
    by_year = ("SELECT year(paid_on) AS y, count(DISTINCT pid) AS n FROM payments GROUP BY 1",
               {("2018",), ("2019",), ("2020",)})
    assert definition(*everyone) == definition(*dated) == definition(*by_year)  # the table holds none
    some = frozenset({"missing"})
    assert definition(*everyone, some) != definition(*dated, some) == definition(*by_year, some)
