"""Commands on the data: workspace, synthetic registers, register checks, pools and keys."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer
from rich.markup import escape
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
    and identity codes by status (never an identifier), and count the rows whose values fall
    outside their code list or do not parse in their date format (never the values)."""
    from safepool.registers.check import check_registers_as

    ws = workspace_of(workspace)
    governance, actor = signed_in(ws, user)
    with console.status("checking sources"):
        results = run(lambda: check_registers_as(ws, governance, actor, register))
    table = Table("register", "source", "rows", "identity codes by status (rows)", "verdict")
    for result in results:
        statuses = ", ".join(f"{k} {v:,}" for k, v in result.rows_by_status.items())
        verdict = "ok" if result.ok else "[red]" + escape("; ".join(result.problems)) + "[/]"
        if result.ok and result.undocumented_columns:
            verdict += escape(f" (undocumented: {', '.join(result.undocumented_columns)})")
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


@pool_app.command("variables")
def pool_variables(permit: str, user: UserOption, workspace: WorkspaceOption = Path(".")) -> None:
    """The pool's data dictionary: each table's variables with their level, unit, code list or
    bins, years and description (a steward, or an analyst of the permit)."""
    from safepool.pool import access

    ws = workspace_of(workspace)
    governance, actor = signed_in(ws, user)
    tables = run(lambda: access.describe_variables(ws.pool_dir, governance, actor, permit))
    for line in dictionary_lines(tables):
        console.print(line, highlight=False, markup=False, soft_wrap=True)


WIDTH = 80
_SENSITIVITY = {"sensitive": "sensitive", "special": "special category"}


def dictionary_lines(tables: dict, width: int = WIDTH) -> list[str]:  # type: ignore[type-arg]
    """The dictionary as plain lines no wider than `width` (long code lists and texts wrap)."""
    import textwrap

    def wrapped(text: str, indent: str, hanging: str = "") -> list[str]:
        return textwrap.wrap(text, width=width, initial_indent=indent, subsequent_indent=indent + hanging,
                             break_long_words=True, break_on_hyphens=False) or [indent]

    def packed(label: str, items: list[str], separator: str) -> list[str]:
        """Items packed into lines, never broken inside one (a code with its label, a bin)."""
        first, hang = "      " + label, "      " + " " * len(label)
        out, line = [], first
        for i, item in enumerate(items):
            text = item + (separator.rstrip() if i < len(items) - 1 else "")
            fresh = line in (first, hang)
            candidate = line + ("" if fresh else " ") + text
            if len(candidate) > width and not fresh:
                out.append(line)
                candidate = hang + text
            line = candidate
        out.append(line)
        return [piece for line in out for piece in (
            [line] if len(line) <= width else wrapped(line.strip(), "      ", " " * len(label))
            if line.startswith(first) else wrapped(line.strip(), hang))]

    lines: list[str] = []
    for table, variables in tables.items():
        if lines:
            lines.append("")
        lines.append(f"{table} ({len(variables)} variable{'s' * (len(variables) != 1)})")
        for name, variable in variables.items():
            head = f"{name}: {_level_summary(variable)}"
            if variable.sensitivity in _SENSITIVITY:
                head += f" [{_SENSITIVITY[variable.sensitivity]}]"
            lines += wrapped(head, "  ", "    ")
            lines += wrapped(variable.description, "      ")
            if variable.level == "categorical" and variable.codes:
                lines += packed("codes: ", [f"{code} = {label}" for code, label in variable.codes.items()], "; ")
            if variable.level == "numeric" and variable.bins:
                lines += packed("bins: ", _bin_labels(variable.bins), " | ")
    return lines


def _level_summary(variable) -> str:  # type: ignore[no-untyped-def]
    if variable.level == "categorical":
        return f"categorical, {len(variable.codes or {})} codes"
    if variable.level == "numeric":
        return f"numeric, {variable.unit}" + ("" if variable.bins else ", no bins for grouping")
    if variable.level == "date":
        first, last = variable.years
        parts = variable.date_parts()
        by = parts[0] if len(parts) == 1 else ", ".join(parts[:-1]) + " or " + parts[-1]
        written = f", written as {variable.date_format.value}" if variable.date_format not in (None, "date") else ""
        return f"date, {first}-{last}, by {by}{written}"
    return "text, not for grouping"


def _number(value: float) -> str:
    return f"{int(value):,}" if float(value).is_integer() else f"{value:,}"


def _bin_labels(edges: list[float]) -> list[str]:
    """The groups the bins make: below the first edge, [edge, next edge), from the last edge."""
    labels = [f"under {_number(edges[0])}"]
    labels += [f"{_number(low)} to under {_number(high)}" for low, high in zip(edges, edges[1:])]
    return labels + [f"{_number(edges[-1])} and over"]


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
