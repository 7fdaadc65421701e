"""`safepool query`: a non-disclosive aggregate query on a permit's pool, answered at once."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Annotated

import typer
from rich.markup import escape
from rich.table import Table

from safepool.cli.common import UserOption, WorkspaceOption, app, console, errors, run, signed_in, workspace_of


@app.command()
def query(
    permit: Annotated[str, typer.Option(help="The permit whose pool is queried.")],
    user: UserOption,
    workspace: WorkspaceOption = Path("."),
    sql: Annotated[str | None, typer.Option(help="The query model in SQL: one SELECT of measures by group terms.")] = None,
    request: Annotated[Path | None, typer.Option(help="A structured request as a YAML or JSON file.")] = None,
    table: Annotated[str | None, typer.Option(help="Structured request: the pool table.")] = None,
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
    """Persons, rows, sums, means, shares or quantiles of declared variables by groups of the data
    dictionary; only cells that pass the disclosure checks are shown. `safepool pool variables`
    lists what can be asked."""
    from safepool.query.engine import run_query
    from safepool.query.request import AggregateRequest, parse_filter

    structured = table is not None or measure is not None
    if sum([sql is not None, request is not None, structured]) != 1:
        errors.print("[bold red]error:[/] give exactly one of --sql, --request FILE, or --table with --measure")
        raise typer.Exit(1)
    if sql is not None:
        question: str | AggregateRequest = sql
    elif request is not None:
        question = run(lambda: AggregateRequest.load(request))
    else:
        question = run(lambda: AggregateRequest.from_options(
            table=table, join=join, measure=measure, value=value, by=by, quantiles=quantile,
            filters=[parse_filter(text) for text in filter_ or []]))
    ws = workspace_of(workspace)
    governance, actor = signed_in(ws, user)
    answer = run(lambda: run_query(ws.pool_dir, governance, actor, permit, question, title=title))
    shown = Table(*answer.table.columns, title=escape(answer.title))
    for row in answer.table.itertuples(index=False):
        shown.add_row(*(escape(_cell(v)) for v in row))
    console.print(shown)
    console.print(escape(answer.note), highlight=False)
    if answer.output_ids:
        console.print(f"Recorded as output(s) {', '.join(answer.output_ids)} of permit {permit}.")


def _cell(value: object) -> str:
    if isinstance(value, float):
        if math.isnan(value):
            return "-"
        return f"{value:,.0f}" if value.is_integer() else f"{value:,.2f}"
    return str(value)
