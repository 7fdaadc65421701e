"""The `safepool insight` commands: run a customer-information analysis file under its permit."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from safepool.cli.common import UserOption, WorkspaceOption, app, command, progress_bar, say, sign_in
from safepool.cli.render import table, wrap

insight_app = typer.Typer(help="Customer information: service paths, predicted needs, segments.",
                          no_args_is_help=True)
app.add_typer(insight_app, name="insight")


@command(insight_app, "run")
def insight_run(
    file: Annotated[Path, typer.Argument(help="The insight file (YAML), e.g. the example insight-paths.yaml.")],
    user: UserOption,
    workspace: WorkspaceOption = Path("."),
) -> None:
    """As an analyst of the permit named in the file: analyse, check and record every output and the report."""
    from safepool.insight.spec import load_insight

    insight = load_insight(file)
    session = sign_in(workspace, user)
    with progress_bar() as update:
        result = session.permit(insight.permit).insight(insight, progress=lambda stage: update(stage, "insight", 0))
    say(wrap(f"{result.title}: {result.summary}"), "")
    say(table(["output", "name", "status", "checks"],
              [(record.id, name, record.status, record.verdict) for name, record in result.records.items()],
              title="Recorded outputs"))
