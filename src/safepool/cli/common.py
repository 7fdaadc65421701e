"""What every command shares: the app, sign-in through the Session, plain lines, progress bars,
and the one place where errors become exit codes.

Each command is a thin shell: sign in (safepool.connect), call one Session method, print. The
role checks, the audit and the phase rules live in the Session and the library, never here.
A command that acts as someone is registered with `signed_in`: it is written as a function of
the person's Session, and `--user` and `--workspace` are added to it here, once for all.
"""

from __future__ import annotations

import functools
import inspect
import os
import sys
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, Any, NoReturn, TypeVar

import typer

from safepool.errors import SafepoolError
from safepool.faults import Conflict, Invalid, NotFound, Refused, Unavailable


def command_group(help_text: str, **options: Any) -> typer.Typer:
    """A group of commands. Help is read as Markdown, so that a docstring's paragraph is wrapped
    to the terminal as one paragraph instead of keeping the source's line breaks."""
    return typer.Typer(help=help_text, no_args_is_help=True, rich_markup_mode="markdown", **options)


app = command_group("safepool: a secure virtual data pool for register-based studies.", pretty_exceptions_enable=False)
registers_app = command_group("The register catalogue and its sources.")
pool_app = command_group("Build and inspect a permit's pseudonymised pool.")
keys_app = command_group("The steward's per-permit pseudonymisation keys.")
app.add_typer(registers_app, name="registers")
app.add_typer(pool_app, name="pool")
app.add_typer(keys_app, name="keys")

T = TypeVar("T")

# ----------------------------------------------------------------------------- exit codes

PROBLEMS_FOUND = 1  # the command ran and found problems: a failing register check, a broken chain, alerts
USAGE = 2  # the command line itself is wrong (typer's own code)
# The typed errors, in the order they are tried; the last line catches every other SafepoolError.
EXIT_CODES: tuple[tuple[type[SafepoolError], int, str], ...] = (
    (Invalid, 3, "the request is wrong: a file, a field, an option or a query"),
    (NotFound, 4, "what the command names does not exist"),
    (Refused, 5, "a governance rule forbids it (the refusal is audited)"),
    (Conflict, 6, "someone changed the same thing at the same time; look again and retry"),
    (Unavailable, 7, "the metadata database, a register's source or the key store cannot be used now"),
    (SafepoolError, 8, "any other error (none is raised today: tests/test_faults.py)"),
)


def exit_code(error: SafepoolError) -> int:
    return next(code for kind, code, _ in EXIT_CODES if isinstance(error, kind))


def fail(error: SafepoolError) -> NoReturn:
    """The error on stderr, beginning `error:` and wrapped to the terminal, and the exit code of
    the error's kind. A message that lists several problems (a hand-written file's, one per field
    with its line) keeps one indented line for each, wrapped too."""
    from safepool.cli.render import wrap

    first, *more = str(error).split("\n")
    for line in wrap(f"error: {' '.join(first.split())}", hanging="       "):
        typer.echo(line, err=True)
    for problem in more:
        for line in wrap(" ".join(problem.split()), "  ", "  "):
            typer.echo(line, err=True)
    raise typer.Exit(exit_code(error))


def run(action: Callable[[], T]) -> T:
    """Run a library call; an expected failure becomes one line and its exit code, never a traceback."""
    from safepool.session import expected_faults

    try:
        with expected_faults():
            return action()
    except SafepoolError as error:
        fail(error)


def command(group: typer.Typer, name: str | None = None, **options: Any) -> Callable[[Callable[..., T]], Callable[..., T]]:
    """Register a command whose whole body runs under `run`: no command can let a SafepoolError
    (or a locked database, or a request nested too deeply) out as a traceback."""

    def register(function: Callable[..., T]) -> Callable[..., T]:
        @functools.wraps(function)
        def guarded(*args: Any, **kwargs: Any) -> T:
            return run(lambda: function(*args, **kwargs))

        group.command(name, **options)(guarded)
        return function

    return register


# ----------------------------------------------------------------------------- options and sign-in

WorkspaceOption = Annotated[
    Path,
    typer.Option(
        "--workspace", "-w", envvar="SAFEPOOL_WORKSPACE", help="Workspace folder (default: the current folder)."
    ),
]
UserOption = Annotated[
    str, typer.Option("--user", "-u", envvar="SAFEPOOL_USER", help="Who acts (password: SAFEPOOL_PASSWORD or a prompt).")
]


def password_for(user: str) -> str:
    return os.environ.get("SAFEPOOL_PASSWORD") or typer.prompt(f"password for {user}", hide_input=True)


def sign_in(workspace: Path, user: str):  # type: ignore[no-untyped-def]
    """The person's Session: every command that touches the workspace's governance acts as someone."""
    from safepool.session import connect

    return connect(workspace, user=user, password=password_for(user))


_SIGN_IN_OPTIONS = [
    inspect.Parameter("user", inspect.Parameter.KEYWORD_ONLY, annotation=UserOption),
    inspect.Parameter("workspace", inspect.Parameter.KEYWORD_ONLY, annotation=WorkspaceOption, default=Path(".")),
]


def signed_in(group: typer.Typer, name: str | None = None,
              **options: Any) -> Callable[[Callable[..., T]], Callable[..., T]]:
    """Register a command written as `function(session, ...)`: the command line gets the
    function's own options plus `--user` and `--workspace`; the person is signed in (password
    from SAFEPOOL_PASSWORD or a prompt), the function runs with their Session under `run`, and the
    Session is closed afterwards."""

    def register(function: Callable[..., T]) -> Callable[..., T]:
        own = list(inspect.signature(function).parameters.values())
        if not own or own[0].name != "session":
            raise TypeError(f"{function.__name__}: a signed-in command takes the session first")
        own = [p.replace(annotation=eval(p.annotation, function.__globals__)) if isinstance(p.annotation, str)
               else p for p in own[1:]]  # the options' annotations (the session's is never looked at)

        def signed(*args: Any, user: str, workspace: Path, **kwargs: Any) -> T:
            def act() -> T:
                with sign_in(workspace, user) as session:
                    return function(session, *args, **kwargs)

            return run(act)

        shown = [p.replace(kind=inspect.Parameter.KEYWORD_ONLY) for p in own] + _SIGN_IN_OPTIONS
        signed.__signature__ = inspect.Signature(shown)  # type: ignore[attr-defined]
        signed.__annotations__ = {p.name: p.annotation for p in shown}
        signed.__name__, signed.__qualname__, signed.__doc__ = function.__name__, function.__qualname__, function.__doc__
        signed.__module__ = function.__module__
        group.command(name, **options)(signed)
        return function

    return register


# ----------------------------------------------------------------------------- output


def write_file(path: Path, data: bytes) -> None:
    """Write a file a person named on the command line; a path that cannot be written is Invalid."""
    try:
        path.write_bytes(data)
    except OSError as error:
        raise Invalid(f"cannot write {path} ({error.strerror or type(error).__name__})") from None



def say(*items: str | Iterable[str]) -> None:
    """Print lines (strings, or lists of lines) as they are: no markup, no wrapping of our own lines."""
    for item in items:
        for line in [item] if isinstance(item, str) else item:
            typer.echo(line)


@contextmanager
def progress_bar() -> Iterator[Callable[[str, str, int], None]]:
    """A progress display fed by the library's (stage, register, rows) callbacks; only on a terminal
    (piped or captured output gets the result lines alone)."""
    if not sys.stderr.isatty():
        yield lambda stage, register, rows: None
        return
    from rich.console import Console
    from rich.progress import BarColumn, Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

    with Progress(SpinnerColumn(), TextColumn("{task.description}"), BarColumn(bar_width=12),
                  TextColumn("{task.fields[rows]}"), TimeElapsedColumn(), console=Console(stderr=True),
                  transient=True) as bar:
        tasks: dict[str, Any] = {}

        def update(stage: str, register: str, rows: int) -> None:
            if register not in tasks:
                tasks[register] = bar.add_task(register, total=None, rows="")
            task = tasks[register]
            if stage == "linked":
                bar.update(task, total=1, completed=1, description=f"{register}: linked")
            else:
                bar.update(task, description=f"{register}: {stage}", rows=f"{rows:,} rows" if rows else "")

        yield update
