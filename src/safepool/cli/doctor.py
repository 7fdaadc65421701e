"""`safepool doctor`: stale scratch removed, and what is not owner-only reported (or fixed)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated

import typer

from safepool.cli.common import PROBLEMS_FOUND, app, say, signed_in

if TYPE_CHECKING:
    from safepool.session import Session


@signed_in(app)
def doctor(
    session: Session,
    fix: Annotated[bool, typer.Option("--fix", help="Make what others could use owner-only (0700, 0600).")] = False,
) -> None:
    """As a steward or an admin: remove the scratch killed builds left (audited), and report
    every folder and file in steward/, registers/, pool/, governance/ and outputs/ that is not
    owner-only. Exits 1 if any is left that way."""
    report = session.doctor(fix=fix)
    say(f"Stale scratch removed: {len(report.removed)}")
    say(f"  {path}" for path in report.removed)
    fixed = set(report.fixed)
    say(f"Not owner-only: {len(report.not_owner_only)}" + (f", {len(fixed)} made owner-only" if fix else ""))
    say(f"  {path} (mode {mode:o}){' -> fixed' if path in fixed else ''}" for path, mode in report.not_owner_only)
    if not report.ok:
        say("Run `safepool doctor --fix` to make them owner-only.")
        raise typer.Exit(PROBLEMS_FOUND)
