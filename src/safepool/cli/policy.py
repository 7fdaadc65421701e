"""Commands of the workspace's disclosure policy: show it (anyone signed in), change it or restore
its file (an admin); every change and refusal is audited."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from safepool.cli.common import command_group, app, say, signed_in
from safepool.cli.render import path_lines, table

if TYPE_CHECKING:
    from safepool.session import Session

policy_app = command_group("The workspace's disclosure policy: thresholds every output is checked against.")
app.add_typer(policy_app, name="policy")


@signed_in(policy_app, "show")
def policy_show(session: Session) -> None:
    """The policy in force and every audited change of it."""
    from safepool.disclosure.rules import DisclosureRules
    policy, history = session.policy()
    say(table(["setting", "value", "meaning"],
              [(name, str(getattr(policy, name)), field.description or "")
               for name, field in DisclosureRules.model_fields.items()],
              wrap_columns=["meaning"], title="Disclosure policy"))
    say(path_lines("Kept in", session.policy_file()), "")
    if not history:
        say("No change since the workspace was made: the design's defaults.")
        return
    say(table(["record", "at (UTC)", "by", "change"],
              [(change.seq, change.at.isoformat(timespec="seconds"), change.actor,
                f"{change.setting}: {change.old} -> {change.new}" if change.setting
                else "file restored to the audited policy") for change in history],
              wrap_columns=["change"], title="Changes"))


@signed_in(policy_app, "set")
def policy_set(
    session: Session,
    setting: Annotated[str, typer.Argument(help="The setting, e.g. min_frequency (see `safepool policy show`).")],
    value: Annotated[str, typer.Argument(help="Its new value, e.g. 10, 0.85, true or suppress.")],
) -> None:
    """As an admin: change one setting (audited with its old and new value); every later check uses it."""
    change = session.set_policy(setting, value)
    say(f"{change.setting}: {change.old} -> {change.new} (audit record {change.seq})")


@signed_in(policy_app, "restore")
def policy_restore(session: Session) -> None:
    """As an admin: write the audited policy back into disclosure.yaml after it was changed outside `policy set`."""
    change = session.restore_policy()
    say(path_lines(f"Policy file restored to the audited policy (audit record {change.seq})", session.policy_file()))
