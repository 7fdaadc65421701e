"""The steward's commands that touch identities: re-identification under a permit that allows it."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from safepool.cli.common import app, say, signed_in
from safepool.cli.render import path_lines
from safepool.faults import Invalid
from safepool.pool.pseudonyms import parse_lines

if TYPE_CHECKING:
    from safepool.session import Session


@signed_in(app)
def reidentify(
    session: Session,
    permit: Annotated[str, typer.Argument(help="The permit whose pseudonyms are linked back.")],
    pseudonyms: Annotated[Path, typer.Option("--pseudonyms", help="File with one pseudonym (19 digits) per line.")],
    justification: Annotated[str, typer.Option(help="Why these persons must be reached (no identity codes).")],
) -> None:
    """As the steward: link pseudonyms back to identity codes, only if the permit allows it.

    The matches are written to a private file under steward/reidentified/; only the counts
    and the file's path are printed.
    """
    try:
        text = pseudonyms.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise Invalid(f"cannot read the pseudonym file {pseudonyms} ({type(exc).__name__})") from None
    wanted = parse_lines(text, f"the pseudonym file {pseudonyms}")
    result = session.permit(permit).reidentify(wanted, justification)
    say(f"Re-identified under permit {permit}: {result.requested} pseudonyms requested, "
        f"{result.matched} matched, {result.unmatched} unmatched",
        path_lines("Written to a file readable by its owner only", result.path))
