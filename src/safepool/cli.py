"""The `safepool` command: a thin shell over the library, with progress bars and plain errors."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, TypeVar

import typer
from rich.console import Console
from rich.progress import BarColumn, Progress, SpinnerColumn, TextColumn, TimeElapsedColumn
from rich.table import Table

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
        errors.print(f"[bold red]error:[/] {exc}", highlight=False, markup=True)
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


def _workspace(path: Path):  # type: ignore[no-untyped-def]
    from safepool.workspace import Workspace

    return run(lambda: Workspace.open(path))


@app.command()
def init(directory: Annotated[Path, typer.Argument(help="Folder to make a workspace in.")]) -> None:
    """Make a workspace: catalogue file, steward zone (steward/), sources (registers/), pools (pool/)."""
    from safepool.workspace import Workspace

    workspace = run(lambda: Workspace.init(directory))
    console.print(f"Workspace ready at {workspace.root}")


@app.command()
def synth(
    out: Annotated[Path, typer.Option(help="Workspace to write the synthetic registers into (made if missing).")],
    persons: Annotated[int, typer.Option(min=100, help="Persons ever resident in synthetic Espoo.")] = 30_000,
    seed: Annotated[int, typer.Option(help="Random seed; the same seed gives the same registers.")] = 1,
    postgres_url: Annotated[
        str | None,
        typer.Option(help="Load the Kela and TE registers into this PostgreSQL database (URL may carry the password)."),
    ] = None,
) -> None:
    """Generate synthetic Espoo registers (2009Q1-2024Q4) with planted effects and identity faults."""
    from safepool.synth.load import synthesise

    with progress_bar() as update:
        result = run(lambda: synthesise(out, persons=persons, seed=seed, postgres_url=postgres_url,
                                        progress=lambda stage: update(stage, "synthetic Espoo", 0)))
    console.print(f"Wrote {len(result)} registers to {out}/registers; planted truth in {out}/steward/truth")


@registers_app.command("list")
def registers_list(workspace: WorkspaceOption = Path(".")) -> None:
    """List the registers in the catalogue with their sources."""
    catalogue = run(lambda: _workspace(workspace).catalogue())
    table = Table("register", "holder", "source", "location", "time", "variables")
    for register in catalogue.registers:
        time = f"{register.time.grain.value} ({register.time.variable})" if register.time else "person-level"
        location = register.source.location + (f" :: {register.source.table}" if register.source.table else "")
        table.add_row(register.name, register.holder, register.source.kind.value, location, time,
                      str(len(register.variables)))
    console.print(table)


@registers_app.command("check")
def registers_check(
    workspace: WorkspaceOption = Path("."),
    register: Annotated[list[str] | None, typer.Option(help="Check only these registers.")] = None,
) -> None:
    """Connect to each source, verify the dictionary against its schema, count rows and code quality."""
    from safepool.registers.check import check_registers

    ws = _workspace(workspace)
    with console.status("checking sources"):
        results = run(lambda: check_registers(ws, register))
    table = Table("register", "source", "rows", "identity codes by status (rows)", "verdict")
    for result in results:
        statuses = ", ".join(f"{k} {v:,}" for k, v in result.rows_by_status.items())
        verdict = "ok" if result.ok else "[red]" + (result.error or "; ".join(result.drift)) + "[/]"
        if result.ok and result.undocumented_columns:
            verdict += f" (undocumented: {', '.join(result.undocumented_columns)})"
        table.add_row(result.register, result.kind, f"{result.rows:,}" if result.rows is not None else "-",
                      statuses, verdict)
    console.print(table)
    if not all(r.ok for r in results):
        raise typer.Exit(1)


@pool_app.command("build")
def pool_build(
    scope: Annotated[Path, typer.Option(help="Scope file: permit, window, registers and variables.")],
    workspace: WorkspaceOption = Path("."),
) -> None:
    """Read each register in place, pseudonymise in flight and publish the linked pool atomically."""
    from safepool.pool.build import build_pool
    from safepool.pool.scope import Scope
    from safepool.yaml_files import load_model

    ws = _workspace(workspace)
    parsed = run(lambda: load_model(scope, Scope))
    with progress_bar() as update:
        built = run(lambda: build_pool(ws, parsed, progress=update))
    _print_linkage(built.linkage.to_dict())
    console.print(f"Pool for permit {built.permit} published at {built.path} in {built.seconds:.1f} s")


@pool_app.command("show")
def pool_show(permit: str, workspace: WorkspaceOption = Path(".")) -> None:
    """Show a pool's tables, row counts and linkage report."""
    from safepool.pool import access

    ws = _workspace(workspace)
    sizes = run(lambda: access.table_sizes(ws.pool_dir, permit))
    table = Table("table", "rows")
    for name, rows in sizes.items():
        table.add_row(name, f"{rows:,}")
    console.print(table)
    _print_linkage(run(lambda: access.linkage_report(ws.pool_dir, permit)))


def _print_linkage(report: dict) -> None:  # type: ignore[type-arg]
    table = Table("register", "rows read", "linked", "quarantined", "duplicates removed", "persons", title="Linkage")
    for name, counts in report["registers"].items():
        table.add_row(name, *(f"{counts[k]:,}" for k in
                              ("rows_read", "rows_linked", "rows_quarantined", "duplicate_rows_removed", "persons")))
    console.print(table)
    console.print(
        f"persons {report['persons_total']:,}; linked across registers {report['persons_linked_across_registers']:,}; "
        f"quarantined rows by reason {json.dumps(report['quarantined_rows_by_reason'])}"
    )


@keys_app.command("destroy")
def keys_destroy(
    permit: str,
    workspace: WorkspaceOption = Path("."),
    yes: Annotated[bool, typer.Option("--yes", help="Do not ask for confirmation.")] = False,
) -> None:
    """Destroy a permit's key: its pseudonyms can never be traced back again."""
    from safepool.identity.keystore import KeyStore

    ws = _workspace(workspace)
    if not yes:
        typer.confirm(f"Destroy the key of permit {permit}? Re-identification becomes impossible.", abort=True)
    destroyed = run(lambda: KeyStore(ws.steward_dir / "keys").destroy(permit))
    console.print(f"Key of permit {permit} destroyed." if destroyed else f"Permit {permit} had no key.")


@app.command()
def demo(
    workspace: Annotated[Path, typer.Option(help="Fresh folder for the demo workspace.")] = Path("safepool-demo"),
    persons: Annotated[int, typer.Option(min=1000, help="Persons in synthetic Espoo.")] = 30_000,
    seed: Annotated[int, typer.Option(help="Random seed.")] = 1,
) -> None:
    """Run everything that exists on built-in synthetic registers, in a fresh workspace."""
    from safepool.demo import run_demo

    with progress_bar() as update:
        summary = run(lambda: run_demo(workspace, persons=persons, seed=seed, progress=update))
    for line in summary:
        console.print(line, highlight=False)
