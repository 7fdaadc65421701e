"""Commands on the data: workspace, synthetic registers, register checks, pools and keys."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from safepool.cli.common import WorkspaceOption, app, console, keys_app, pool_app, progress_bar, registers_app, run, \
    signed_in, workspace_of, UserOption

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
    catalogue = run(lambda: workspace_of(workspace).catalogue())
    table = Table("register", "holder", "source", "location", "time", "variables")
    for register in catalogue.registers:
        time = f"{register.time.grain.value} ({register.time.variable})" if register.time else "person-level"
        location = register.source.location + (f" :: {register.source.table}" if register.source.table else "")
        table.add_row(register.name, register.holder, register.source.kind.value, location, time,
                      str(len(register.variables)))
    console.print(table)


@registers_app.command("check")
def registers_check(
    user: UserOption,
    workspace: WorkspaceOption = Path("."),
    register: Annotated[list[str] | None, typer.Option(help="Check only these registers.")] = None,
) -> None:
    """As a steward: connect to each source, verify the dictionary against its schema, count rows
    and identity codes by status (never an identifier)."""
    from safepool.registers.check import check_registers_as

    ws = workspace_of(workspace)
    governance, actor = signed_in(ws, user)
    with console.status("checking sources"):
        results = run(lambda: check_registers_as(ws, governance, actor, register))
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
    permit: Annotated[str, typer.Option(help="The approved permit to build the pool under.")],
    user: UserOption,
    workspace: WorkspaceOption = Path("."),
) -> None:
    """As the steward: read each register in place, pseudonymise in flight, publish the pool atomically."""
    from safepool.pool.build import build_for_permit

    ws = workspace_of(workspace)
    governance, actor = signed_in(ws, user)
    with progress_bar() as update:
        built = run(lambda: build_for_permit(ws, governance, actor, permit, progress=update))
    _print_linkage(built.linkage.to_dict())
    console.print(f"Pool for permit {built.permit} published at {built.path} in {built.seconds:.1f} s")


@pool_app.command("show")
def pool_show(permit: str, user: UserOption, workspace: WorkspaceOption = Path(".")) -> None:
    """Show a pool's tables, row counts and linkage report (a steward, or an analyst of the permit)."""
    from safepool.pool import access

    ws = workspace_of(workspace)
    governance, actor = signed_in(ws, user)
    sizes, report = run(lambda: access.describe_pool(ws.pool_dir, governance, actor, permit))
    table = Table("table", "rows")
    for name, rows in sizes.items():
        table.add_row(name, f"{rows:,}")
    console.print(table)
    _print_linkage(report)


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

    ws = workspace_of(workspace)
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
