"""The `safepool study` commands: run an impact study file under its permit, as the analyst."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from safepool.cli.common import UserOption, WorkspaceOption, app, console, progress_bar, run, signed_in, workspace_of

study_app = typer.Typer(help="Impact studies by risk-set matching.", no_args_is_help=True)
app.add_typer(study_app, name="study")


@study_app.command("run")
def study_run(
    file: Annotated[Path, typer.Argument(help="The study file (YAML), e.g. the example study.yaml.")],
    user: UserOption,
    workspace: WorkspaceOption = Path("."),
) -> None:
    """As an analyst of the permit named in the file: cohort, matching, balance, effects; every table recorded."""
    from safepool.study.run import run_study
    from safepool.study.studyfile import load_study

    study = run(lambda: load_study(file))
    ws = workspace_of(workspace)
    governance, actor = signed_in(ws, user)
    with progress_bar() as update:
        result = run(lambda: run_study(ws.pool_dir, governance, actor, study,
                                       progress=lambda stage: update(stage, "study", 0)))
    console.print(f"{result.title}: {result.n_matched:,} of {result.n_treated:,} clients matched "
                  f"in {result.seconds:.1f} s; balance {'passed' if result.balance_passed else 'NOT passed'}")
    shown = result.checked["effects"].output.public_table()
    table = Table("outcome", "horizon", "method", "estimate", "95% interval", "status")
    for row in shown.itertuples(index=False):
        status = str(getattr(row, "status", "shown"))
        hidden = status.startswith("suppressed")
        estimate = "" if hidden else f"{row.estimate:.3f}"
        interval = "" if hidden else f"{row.ci_low:.3f} to {row.ci_high:.3f}"
        table.add_row(str(row.outcome), str(row.horizon), str(row.method), estimate, interval, status)
    console.print(table)
    for name, record in result.records.items():
        console.print(f"  {record.id}  {name}: {record.status} ({record.verdict})")
