"""The steward's commands that touch identities: re-identification under a permit that allows it."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from safepool.cli.common import UserOption, WorkspaceOption, app, console, run, signed_in, workspace_of


@app.command()
def reidentify(
    permit: Annotated[str, typer.Argument(help="The permit whose pseudonyms are linked back.")],
    pseudonyms: Annotated[Path, typer.Option("--pseudonyms", help="File with one pseudonym per line.")],
    justification: Annotated[str, typer.Option(help="Why these persons must be reached (no identity codes).")],
    user: UserOption,
    workspace: WorkspaceOption = Path("."),
) -> None:
    """As the steward: link pseudonyms back to identity codes, only if the permit allows it.

    The matches are written to a private file under steward/reidentified/; only the counts
    and the file's path are printed.
    """
    from safepool.errors import SafepoolError
    from safepool.identity.reidentify import reidentify as link_back

    def read_lines() -> list[str]:
        try:
            text = pseudonyms.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            raise SafepoolError(f"cannot read the pseudonym file {pseudonyms} ({type(exc).__name__})") from None
        return [line.strip() for line in text.splitlines() if line.strip()]

    wanted = run(read_lines)
    ws = workspace_of(workspace)
    governance, actor = signed_in(ws, user)
    result = run(lambda: link_back(ws, governance, actor, permit, wanted, justification))
    console.print(f"Re-identified under permit {permit}: {result.requested} pseudonyms requested, "
                  f"{result.matched} matched, {result.unmatched} unmatched", highlight=False, markup=False)
    console.print(f"Written to {result.path} (readable by its owner only)",
                  highlight=False, markup=False, soft_wrap=True)
