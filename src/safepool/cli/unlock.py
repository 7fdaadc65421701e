"""`safepool user unlock NAME`: an admin lifts the lock of an account that was locked after too
many failed sign-ins (safepool.governance.users). Kept in its own module; the lift is audited
(`user_unlock`), whether the account was locked or not."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated

import typer

from safepool.cli.common import say, signed_in
from safepool.cli.governance import user_app

if TYPE_CHECKING:
    from safepool.session import Session


@signed_in(user_app, "unlock")
def user_unlock(session: Session, name: Annotated[str, typer.Argument(help="The account to unlock.")]) -> None:
    """Lift an account's sign-in lock at once (admins; audited)."""
    was_locked = session.unlock_user(name)
    say(f"User {name} unlocked: the right password works again." if was_locked
        else f"User {name} was not locked; nothing to lift (recorded).")
