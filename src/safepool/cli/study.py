"""The `safepool study` commands: run an impact study file under its permit, as the analyst."""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from safepool.cli.common import command_group, app, progress_bar, say, signed_in
from safepool.cli.render import table, wrap

if TYPE_CHECKING:
    from safepool.session import Session

study_app = command_group("Impact studies by risk-set matching.")
app.add_typer(study_app, name="study")


@signed_in(study_app, "run")
def study_run(
    session: Session,
    file: Annotated[Path, typer.Argument(help="The study file (YAML), e.g. the example study.yaml.")],
) -> None:
    """As an analyst of the permit named in the file: cohort, matching, balance, effects; every table recorded."""
    from safepool.study.run import EstimandWarning
    from safepool.study.studyfile import load_study

    study = load_study(session.handed_file(file, "FILE (the study file)"))
    with progress_bar() as update, warnings.catch_warnings():
        warnings.simplefilter("ignore", EstimandWarning)  # said below, in words
        result = session.permit(study.permit).study(study, progress=lambda stage: update(stage, "study", 0))
    matching = result.published_matching()  # the counts as published, never ones the checks held back
    say(wrap(f"{result.title}: ran in {result.seconds:.1f} s; balance "
             f"{'passed' if result.balance_passed else 'NOT passed'}"),
        wrap(matching.sentence() if matching else "The share of clients matched was suppressed by the disclosure "
             "checks."),
        *([wrap(f"Warning: {matching.warning}")] if matching and matching.warning else []), "")
    shown = result.checked["effects"].output.public_table()
    rows = []
    for row in shown.itertuples(index=False):
        status = str(getattr(row, "status", "shown"))
        hidden = status.startswith("suppressed")
        rows.append((str(row.outcome), str(row.horizon), str(row.method), "" if hidden else f"{row.estimate:.3f}",
                     "" if hidden else f"{row.ci_low:.3f} to {row.ci_high:.3f}", status))
    say(table(["outcome", "horizon", "method", "estimate", "95% interval", "status"], rows,
              wrap_columns=["status"], title="Effects as checked (what a release would show)"), "")
    say(table(["output", "name", "status", "checks"],
              [(record.id, name, record.status, record.verdict) for name, record in result.records.items()],
              title="Recorded outputs"))
