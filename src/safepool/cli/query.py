"""`safepool query`: a non-disclosive aggregate query on a permit's pool, answered at once."""

from __future__ import annotations

import math
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from safepool.cli.common import app, say, signed_in
from safepool.cli.render import table, wrap
from safepool.faults import Invalid

if TYPE_CHECKING:
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
    columns = list(answer.table.columns)
    say(table(columns, [[_cell(v) for v in row] for row in answer.table.itertuples(index=False)],
              wrap_columns=["status"], title=answer.title))
    say(wrap(answer.note))
    if answer.output_ids:
        say(wrap(f"Recorded as output(s) {', '.join(answer.output_ids)} of permit {permit}."))


def _cell(value: object) -> str:
    if isinstance(value, float):
        if math.isnan(value):
            return "-"
        return f"{value:,.0f}" if value.is_integer() else f"{value:,.2f}"
    return str(value)
