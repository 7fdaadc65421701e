"""The `safepool insight` commands: run a customer-information analysis file under its permit."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from safepool.cli.common import command_group, app, progress_bar, say, signed_in
from safepool.cli.render import table, wrap

if TYPE_CHECKING:
    from safepool.session import Session

insight_app = command_group("Customer information: service paths, predicted needs, segments.")
app.add_typer(insight_app, name="insight")


@signed_in(insight_app, "run")
def insight_run(
    session: Session,
    file: Annotated[Path, typer.Argument(help="The insight file (YAML), e.g. the example insight-paths.yaml.")],
) -> None:
    """As an analyst of the permit named in the file: analyse, check and record every output and the report."""
    from safepool.insight.spec import load_insight

    insight = load_insight(session.handed_file(file, "FILE (the insight file)"))
    with progress_bar() as update:
        result = session.permit(insight.permit).insight(insight, progress=lambda stage: update(stage, "insight", 0))
    say(wrap(f"{result.title}: {result.summary}"), "")
    say(table(["output", "name", "status", "checks"],
              [(record.id, name, record.status, record.verdict) for name, record in result.records.items()],
              title="Recorded outputs"))


@signed_in(insight_app, "handover")
def insight_handover(
    session: Session,
    file: Annotated[Path, typer.Argument(help="A need-prediction file with analysis.handover (quarter, threshold), "
                                              "e.g. the example insight-need.yaml.")],
) -> None:
    """As an analyst, where the permit allows re-identification for preventive services: hand the
    linkage authority the pseudonyms whose predicted need at the handover quarter is at least the
    file's threshold.

    The list goes straight into the steward zone: you see only its name, never a pseudonym or an identity.

    The linkage authority re-identifies it with `safepool reidentify` (audited), checking the permit again.
    """
    from safepool.insight.handover import handovers_dir
    from safepool.insight.spec import load_insight

    insight = load_insight(session.handed_file(file, "FILE (the insight file)"))
    with progress_bar() as update:
        handover = session.permit(insight.permit).handover(insight,
                                                           progress=lambda stage: update(stage, "handover", 0))
    folder = handovers_dir(session.governance)
    say(wrap(f"Handed over to the linkage authority under permit {handover.permit}: the persons whose predicted "
             f"need at {handover.quarter} is at least {handover.threshold:g} (model {handover.model})."),
        wrap(f"The linkage authority re-identifies them with: safepool reidentify {handover.permit} "
             f"--pseudonyms {folder / handover.name} --justification TEXT"))
