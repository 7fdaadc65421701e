"""`safepool doctor`: stale scratch removed, and what is not owner-only reported (or fixed)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from safepool.cli.common import PROBLEMS_FOUND, UserOption, WorkspaceOption, app, command, say, sign_in


@command(app)
def doctor(
    user: UserOption,
    workspace: WorkspaceOption = Path("."),
    fix: Annotated[bool, typer.Option("--fix", help="Make what others could use owner-only (0700, 0600).")] = False,
) -> None:
    """As a steward or an admin: remove the scratch killed builds left (audited), and report
    every folder and file in steward/, registers/, pool/, governance/ and outputs/ that is not
    owner-only. Exits 1 if any is left that way."""
    from safepool.doctor import doctor as examine

    session = sign_in(workspace, user)
    report = examine(session.workspace, session.governance, session.actor, fix=fix)
    say(f"Stale scratch removed: {len(report.removed)}")
    say(f"  {path}" for path in report.removed)
    fixed = set(report.fixed)
    say(f"Not owner-only: {len(report.not_owner_only)}" + (f", {len(fixed)} made owner-only" if fix else ""))
    say(f"  {path} (mode {mode:o}){' -> fixed' if path in fixed else ''}" for path, mode in report.not_owner_only)
    if not report.ok:
        say("Run `safepool doctor --fix` to make them owner-only.")
        raise typer.Exit(PROBLEMS_FOUND)
