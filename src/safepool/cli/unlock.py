"""`safepool user unlock NAME`: an admin lifts the lock of an account that was locked after too
many failed sign-ins (safepool.governance.users). Kept in its own module; the lift is audited
(`user_unlock`), whether the account was locked or not."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from safepool.cli.common import UserOption, WorkspaceOption, command, say, sign_in
from safepool.cli.governance import user_app


@command(user_app, "unlock")
def user_unlock(
    name: Annotated[str, typer.Argument(help="The account to unlock.")],
    user: UserOption,
    workspace: WorkspaceOption = Path("."),
) -> None:
    """Lift an account's sign-in lock at once (admins; audited)."""
    session = sign_in(workspace, user)
    unlock = getattr(session, "unlock_user", None)
    was_locked = unlock(name) if unlock is not None else session.governance.users.unlock(session.actor, name)
    say(f"User {name} unlocked: the right password works again." if was_locked
        else f"User {name} was not locked; nothing to lift (recorded).")
