"""What every command shares: the app, plain errors, progress bars, workspace and sign-in."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, TypeVar

import typer
from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

from safepool.errors import SafepoolError

app = typer.Typer(help="safepool: a secure virtual data pool for register-based studies.", no_args_is_help=True)
registers_app = typer.Typer(help="The register catalogue and its sources.", no_args_is_help=True)
pool_app = typer.Typer(help="Build and inspect a permit's pseudonymised pool.", no_args_is_help=True)
keys_app = typer.Typer(help="The steward's per-permit pseudonymisation keys.", no_args_is_help=True)
app.add_typer(registers_app, name="registers")
app.add_typer(pool_app, name="pool")
app.add_typer(keys_app, name="keys")

console = Console()
errors = Console(stderr=True)
T = TypeVar("T")

WorkspaceOption = Annotated[
    Path,
    typer.Option(
        "--workspace", "-w", envvar="SAFEPOOL_WORKSPACE", help="Workspace folder (default: the current folder)."
    ),
]


def run(action: Callable[[], T]) -> T:
    """Run a library call; a SafepoolError becomes a one-line message and exit code 1."""
    try:
        return action()
    except SafepoolError as exc:
        errors.print("[bold red]error:[/]", escape(str(exc)), highlight=False)
        raise typer.Exit(1) from None


@contextmanager
def progress_bar() -> Iterator[Callable[[str, str, int], None]]:
    """A rich progress display fed by the library's (stage, register, rows) callbacks."""
    with Progress(
        SpinnerColumn(), TextColumn("{task.description}"), BarColumn(), TextColumn("{task.fields[rows]}"),
        TimeElapsedColumn(), console=console, transient=False,
    ) as bar:
        tasks: dict[str, int] = {}

        def update(stage: str, register: str, rows: int) -> None:
            if register not in tasks:
                tasks[register] = bar.add_task(register, total=None, rows="")
            task = tasks[register]
            if stage == "linked":
                bar.update(task, total=1, completed=1, description=f"{register}: linked")
            else:
                bar.update(task, description=f"{register}: {stage}", rows=f"{rows:,} rows" if rows else "")

        yield update


def workspace_of(path: Path):  # type: ignore[no-untyped-def]
    from safepool.workspace import Workspace

    return run(lambda: Workspace.open(path))



UserOption = Annotated[
    str, typer.Option("--user", "-u", envvar="SAFEPOOL_USER", help="Who acts (password: SAFEPOOL_PASSWORD or a prompt).")
]


def signed_in(workspace, user: str):  # type: ignore[no-untyped-def]
    """Open the workspace's governance and sign the user in; every data command acts as someone."""
    from safepool.governance.context import Governance

    governance = run(lambda: Governance.open(workspace.root))
    password = os.environ.get("SAFEPOOL_PASSWORD") or typer.prompt(f"password for {user}", hide_input=True)
    actor = run(lambda: governance.users.authenticate(user, password))
    return governance, actor
