"""Commands on the data: workspace, synthetic registers, register checks, pools, variables and keys."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from safepool.cli.common import app, command, keys_app, pool_app, progress_bar, registers_app, say, signed_in
from safepool.cli.render import fields, path_lines, plural, rows_in_words, table, width, wrap
from safepool.features.browse import feature_lines

if TYPE_CHECKING:
    from safepool.session import Session


@command(app)
def init(directory: Annotated[Path, typer.Argument(help="Folder to make a workspace in.")]) -> None:
    """Make a workspace: catalogue file, steward zone (steward/), sources (registers/), pools (pool/)."""
    from safepool.workspace import Workspace

    workspace = Workspace.init(directory)
    say(path_lines("Workspace ready at", workspace.root))


@command(app)
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
        result = synthesise(out, persons=persons, seed=seed, postgres_url=postgres_url,
                            progress=lambda stage: update(stage, "synthetic Espoo", 0))
    say(path_lines(f"Wrote {len(result)} registers to", Path(out) / "registers"),
        path_lines("The planted truth is in the steward zone", Path(out) / "steward" / "truth"))


@signed_in(registers_app, "list")
def registers_list(session: Session) -> None:
    """The catalogue: each register with its holder, source, time grain and location."""
    registers = session.registers()
    for i, register in enumerate(registers):
        time = f"{register.time.grain.value} ({register.time.variable})" if register.time else "person-level"
        location = register.source.location + (f" :: {register.source.table}" if register.source.table else "")
        say([""] if i else [],
            wrap(f"{register.name}: {register.holder}; {register.source.kind.value} source; {time}; "
                 f"{plural(len(register.variables), 'variable')}", hanging="  "),
            [f"  {location}"])


@signed_in(registers_app, "check")
def registers_check(
    session: Session,
    register: Annotated[list[str] | None, typer.Option(help="Check only this register (repeat for more).")] = None,
) -> None:
    """As a steward: check each source against its data dictionary (counts, never values).

    Connects to each source, verifies the dictionary against its schema, counts rows and identity
    codes by status (never an identifier), and counts the rows whose values fall outside their
    code list or do not parse in their date format (never the values). Exits 1 when any source
    has a problem."""
    results = session.check_registers(register)
    for i, result in enumerate(results):
        rows = f"{result.rows:,} rows" if result.rows is not None else "not read"
        say([""] if i else [], wrap(f"{result.register} ({result.kind}): {rows}; "
                                    f"{'ok' if result.ok else 'PROBLEMS'}", hanging="  "))
        if result.rows_by_status:
            say(["  identity codes:"], [line for text in rows_in_words(result.rows_by_status)
                                         for line in wrap(text, "    ", "  ")])
        if result.undocumented_columns:
            say(wrap(f"undocumented columns: {', '.join(result.undocumented_columns)}", "  ", "  "))
        for problem in result.problems:
            say(wrap(f"problem: {problem}", "  ", "  "))
    if not all(r.ok for r in results):
        raise typer.Exit(1)


# ----------------------------------------------------------------------------- pools


@signed_in(pool_app, "build")
def pool_build(
    session: Session,
    permit: Annotated[str, typer.Option(help="The approved permit to build the pool under.")],
) -> None:
    """As the steward: read each register in place, pseudonymise in flight, publish the pool atomically."""
    with progress_bar() as update:
        built = session.permit(permit).build(progress=update)
    say(linkage_lines(built.linkage.to_dict()), "",
        path_lines(f"Pool for permit {built.permit} published in {built.seconds:.1f} s at", built.path))


@signed_in(pool_app, "ledger-keys")
def pool_ledger_keys(
    session: Session,
    permit: Annotated[str, typer.Argument(help="The permit whose pool gets its ledger keys.")],
) -> None:
    """As the linkage authority: give a pool built by an earlier version its ledger keys.

    The query ledger knows a person by one ledger key in every permit; a pool built before those
    keys existed cannot be queried (nor its permit's own query ledger carried into the
    workspace's) until it has them. They are made from the registers' identity codes, in any
    phase, without building the pool again."""
    persons = session.permit(permit).give_ledger_keys()
    say(f"Ledger keys of permit {permit}'s pool written ({persons:,} persons).")


@signed_in(pool_app, "show")
def pool_show(session: Session, permit: Annotated[str, typer.Argument(help="The permit whose pool is shown.")]) -> None:
    """A pool's tables, row counts and linkage report (a steward, or an analyst of the permit)."""
    sizes, report = session.permit(permit).pool()
    say(table(["table", "rows"], sizes.items(), title=f"Pool of permit {permit}"), "", linkage_lines(report))


@signed_in(app, "variables")
def variables(
    session: Session,
    permit: Annotated[str, typer.Option(help="The permit whose tables and variables are listed.")],
) -> None:
    """The permit's tables and variables: level, labels, code lists, units, bins and years.

    For a steward, or an analyst of the permit; it is what a query or a study may ask for. Then the
    features (safepool.features) the pool can give, with their definitions, sources and units."""
    tables = session.permit(permit).variables()
    say(dictionary_lines(tables, width()), "", feature_lines(tables, width()))


@signed_in(pool_app, "variables", hidden=True)
def pool_variables(session: Session, permit: str) -> None:
    """The same as `safepool variables --permit PERMIT` (kept as an alias)."""
    tables = session.permit(permit).variables()
    say(dictionary_lines(tables, width()), "", feature_lines(tables, width()))


def linkage_lines(report: dict[str, Any]) -> list[str]:
    """The linkage report: rows by register, then the quarantine in words."""
    lines = register_rows(report["registers"], "Linkage (rows by register; duplicates removed)")
    lines += wrap(f"{plural(report['persons_total'], 'person')} in the pool; "
                  f"{report['persons_linked_across_registers']:,} linked across registers")
    return lines + quarantine_lines(report["quarantined_rows_by_reason"], "Nothing was quarantined.")


def register_rows(registers: dict[str, dict[str, int]], title: str) -> list[str]:
    """A linkage report's rows by register: read, linked, quarantined, duplicates removed, persons."""
    return table(["register", "read", "linked", "quarantined", "duplicates", "persons"],
                 [(name, c["rows_read"], c["rows_linked"], c["rows_quarantined"], c["duplicate_rows_removed"],
                   c["persons"]) for name, c in registers.items()], title=title)


def quarantine_lines(by_reason: dict[str, int], nothing: str) -> list[str]:
    """The quarantined rows counted in words by reason, or `nothing` when there are none."""
    quarantined = {reason: rows for reason, rows in by_reason.items() if rows}
    if not quarantined:
        return [nothing]
    return (wrap(f"Quarantined in the steward zone ({plural(sum(quarantined.values()), 'row')}):")
            + [line for text in rows_in_words(quarantined) for line in wrap(text, "  ", "  ")])


# ----------------------------------------------------------------------------- the data dictionary

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
    for table_name, table_variables in tables.items():
        if lines:
            lines.append("")
        lines.append(f"{table_name} ({len(table_variables)} variable{'s' * (len(table_variables) != 1)})")
        for name, variable in table_variables.items():
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


# ----------------------------------------------------------------------------- keys and the demo


@signed_in(keys_app, "destroy")
def keys_destroy(
    session: Session,
    permit: Annotated[str, typer.Argument(help="The permit whose key is destroyed.")],
    justification: Annotated[str, typer.Option(help="Why the key is destroyed now, e.g. the end of retention.")],
    yes: Annotated[bool, typer.Option("--yes", help="Do not ask for confirmation.")] = False,
) -> None:
    """As a steward: destroy a permit's key and shred its pool, with a justification (audited).

    Its pseudonyms can never be traced back again; its pool can no longer be queried or analysed
    (its released and recorded outputs stay)."""
    if not yes:
        typer.confirm(f"Destroy the key of permit {permit} and shred its pool? Re-identification becomes "
                      "impossible, and the pool cannot be queried again.", abort=True)
    destroyed = session.permit(permit).destroy_key(justification)
    say(f"Key of permit {permit} destroyed, its pool shredded." if destroyed else f"Permit {permit} had no key.")


@command(app)
def demo(
    workspace: Annotated[Path, typer.Option(help="Fresh folder for the demo workspace.")] = Path("safepool-demo"),
    persons: Annotated[int, typer.Option(min=1000, help="Persons in synthetic Espoo.")] = 30_000,
    seed: Annotated[int, typer.Option(help="Random seed.")] = 1,
) -> None:
    """Run everything on built-in synthetic registers, in a fresh workspace.

    Each step goes through the Session as its person would take it: steward, analyst, approvers
    and checker."""
    from safepool.demo import run_demo

    with progress_bar() as update:
        summary = run_demo(workspace, persons=persons, seed=seed, progress=update)
    say(summary_lines(summary))


def summary_lines(summary: list[Any]) -> list[str]:
    """The demo's summary: each item a sentence (wrapped) or a (label, path) pair (path on its own line)."""
    lines: list[str] = []
    for item in summary:
        if isinstance(item, tuple):
            lines += path_lines(*item)
        else:
            lines += wrap(item, hanging="  ")
    return lines


__all__ = ["dictionary_lines", "fields", "linkage_lines"]
