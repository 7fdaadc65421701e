"""`safepool query`: a non-disclosive aggregate query on a permit's pool, answered at once."""

from __future__ import annotations

import math
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import numpy as np
import typer

from safepool.cli.common import app, say, signed_in
from safepool.cli.render import table, wrap
from safepool.disclosure.rules import MOST_DECIMALS
from safepool.faults import Invalid

if TYPE_CHECKING:
    import pandas as pd

    from safepool.session import Session


@signed_in(app)
def query(
    session: Session,
    permit: Annotated[str, typer.Option(help="The permit whose pool is queried.")],
    sql: Annotated[str | None, typer.Option(help="The query model in SQL: one SELECT of measures by group terms.")] = None,
    request: Annotated[Path | None, typer.Option(help="A structured request as a YAML or JSON file.")] = None,
    table_: Annotated[str | None, typer.Option("--table", help="Structured request: the pool table.")] = None,
    join: Annotated[list[str] | None, typer.Option(help="Structured request: a table joined on the person.")] = None,
    measure: Annotated[str | None, typer.Option(
        help="Structured request: persons, rows, sum, mean, share or quantiles.")] = None,
    value: Annotated[str | None, typer.Option(help="Structured request: the numeric variable measured.")] = None,
    by: Annotated[list[str] | None, typer.Option(
        help="Structured request: a group term: a categorical variable, bin(x), year(d), quarter(d), month(d).")
    ] = None,
    filter_: Annotated[list[str] | None, typer.Option(
        "--filter", help='Structured request: a condition such as "sex = 2" or "native_language in fi,sv".')] = None,
    quantile: Annotated[list[float] | None, typer.Option(help="Structured request: a quantile (0.1 to 0.9).")] = None,
    title: Annotated[str | None, typer.Option(help="Title of the recorded output.")] = None,
) -> None:
    """A non-disclosive aggregate query: only cells that pass the disclosure checks are shown.

    Persons, rows, sums, means, shares or quantiles of declared variables by groups of the data
    dictionary. `safepool variables --permit ID` lists what can be asked."""
    from safepool.query.request import AggregateRequest, parse_filter

    structured = table_ is not None or measure is not None
    if sum([sql is not None, request is not None, structured]) != 1:
        raise Invalid("give exactly one of --sql, --request FILE, or --table with --measure")
    if sql is not None:
        question: str | AggregateRequest = sql
    elif request is not None:
        question = AggregateRequest.load(session.handed_file(request, "--request FILE"))
    else:
        question = AggregateRequest.from_options(
            table=table_, join=join, measure=measure, value=value, by=by, quantiles=quantile,
            filters=[parse_filter(text) for text in filter_ or []])
    answer = session.permit(permit).query(question, title=title)
    say(table(list(answer.table.columns), shown_cells(answer.table), wrap_columns=["status"], title=answer.title))
    say(wrap(answer.note))
    if answer.output_ids:
        say(wrap(f"Recorded as output(s) {', '.join(answer.output_ids)} of permit {permit}."))


def shown_cells(frame: pd.DataFrame) -> list[list[str]]:
    """An answer's cells as text. The engine has rounded each value to the policy's `decimals` (counts
    whole), as the recorded CSV files hold them; each column is printed with as many decimals as its
    values carry, so that no digit the policy allows is dropped (means were cut to two) and the
    decimal points of a column line up. A suppressed value is a dash."""
    places = {column: _places(frame[column]) for column in frame.columns}
    return [[_cell(value, places[column]) for column, value in zip(frame.columns, row)]
            for row in frame.itertuples(index=False)]


def _places(values: pd.Series) -> int:
    """The most decimals any finite number of the column carries (at most MOST_DECIMALS), each
    written as the shortest text that reads back as it (20,901.05, not the float's 20,901.049999...)."""
    numbers = [float(v) for v in values if isinstance(v, float) and math.isfinite(v)]
    written = (np.format_float_positional(v, unique=True, trim="-") for v in numbers)
    return min(max((len(text.partition(".")[2]) for text in written), default=0), MOST_DECIMALS)


def _cell(value: object, places: int) -> str:
    if isinstance(value, float):
        return "-" if math.isnan(value) else f"{value:,.{places}f}"
    return str(value)
