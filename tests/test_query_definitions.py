"""An answer's entries are the same question exactly when they select the same codes, bins and
months of the same tables, however the question was written (see `safepool.query.definitions`)."""

from __future__ import annotations

import pytest

from safepool.query.definitions import entry_definitions, person_tables
from test_query_syntax import POOL, model


def definition(sql: str, cells: set[tuple], outside: frozenset[str] = frozenset()) -> str:
    """The definition of the entry adding up `cells` (labels over the question's groups), in a pool
    whose population register holds every person of the others."""
    checked = model(sql)
    tables = person_tables(checked, lambda table, other: table == "population")
    return entry_definitions(checked, POOL, tables, lambda variable: outside, checked.measures[0], [cells])[0]


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
