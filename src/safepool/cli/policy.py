"""Commands of the workspace's disclosure policy: show it (anyone signed in), change it or restore
its file (an admin); every change and refusal is audited."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.markup import escape
from rich.table import Table

from safepool.cli.common import UserOption, WorkspaceOption, app, console, run, signed_in, workspace_of

policy_app = typer.Typer(help="The workspace's disclosure policy: thresholds every output is checked against.",
                         no_args_is_help=True)
app.add_typer(policy_app, name="policy")


@policy_app.command("show")
def policy_show(user: UserOption, workspace: WorkspaceOption = Path(".")) -> None:
    """The policy in force and every audited change of it."""
    from safepool.disclosure.policy import policy_path, show_policy
    from safepool.disclosure.rules import DisclosureRules

    ws = workspace_of(workspace)
    governance, actor = signed_in(ws, user)
    policy, history = run(lambda: show_policy(governance, actor))
    settings = Table("setting", "value", "meaning", title=f"Disclosure policy ({policy_path(ws.root)})")
    for name, field in DisclosureRules.model_fields.items():
        settings.add_row(name, str(getattr(policy, name)), escape(field.description or ""))
    console.print(settings)
    changes = Table("audit record", "at", "by", "change", title="Changes")
    for change in history:
        what = (f"{change.setting}: {change.old} -> {change.new}" if change.setting
                else "file restored to the audited policy")
        changes.add_row(str(change.seq), change.at.isoformat(timespec="seconds"), change.actor, escape(what))
    console.print(changes if history else "No change since the workspace was made: the design's defaults.")


@policy_app.command("set")
def policy_set(
    setting: Annotated[str, typer.Argument(help="The setting, e.g. min_frequency (see `safepool policy show`).")],
    value: Annotated[str, typer.Argument(help="Its new value, e.g. 10, 0.85, true or suppress.")],
    user: UserOption,
    workspace: WorkspaceOption = Path("."),
) -> None:
    """As an admin: change one setting (audited with its old and new value); every later check uses it."""
    from safepool.disclosure.policy import set_policy

    governance, actor = signed_in(workspace_of(workspace), user)
    change = run(lambda: set_policy(governance, actor, setting, value))
    console.print(f"{change.setting}: {change.old} -> {change.new} (audit record {change.seq})", highlight=False)


@policy_app.command("restore")
def policy_restore(user: UserOption, workspace: WorkspaceOption = Path(".")) -> None:
    """As an admin: write the audited policy back into disclosure.yaml after it was changed outside `policy set`."""
    from safepool.disclosure.policy import policy_path, restore_policy

    ws = workspace_of(workspace)
    governance, actor = signed_in(ws, user)
    change = run(lambda: restore_policy(governance, actor))
    console.print(f"{policy_path(ws.root)} restored to the audited policy (audit record {change.seq})",
                  highlight=False, soft_wrap=True)
