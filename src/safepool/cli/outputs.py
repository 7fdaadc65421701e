"""Commands of safe outputs: list and show recorded outputs, ask for release, review, release.

Outputs are published by the analyses (study, queries) through the output register under the
workspace's policy (`safepool policy show`); these commands take them through review and release,
each checked again under the current policy on the way."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from safepool.cli.common import command_group, app, say, signed_in
from safepool.cli.render import events, fields, path_lines, plural, table, wrap

if TYPE_CHECKING:
    from safepool.session import Session

outputs_app = command_group("Recorded outputs: their checks, release requests, reviews and releases.")
app.add_typer(outputs_app, name="outputs")

OutputIds = Annotated[list[str], typer.Argument(help="Output ids, e.g. SKILLS-2024-01-0003.")]
VERDICTS = {"pass": "passed", "fail": "FAILED", "review": "passed the automatic rules; a person must look"}


@signed_in(outputs_app, "list")
def outputs_list(
    session: Session,
    permit: Annotated[str | None, typer.Option(help="Only this permit's outputs.")] = None,
    status: Annotated[str | None, typer.Option(
        help="Only outputs in this status: checked, failed, release_requested, returned, rejected, approved "
             "or released.")] = None,
) -> None:
    """The outputs you may see: a checker sees all, an analyst those of their permits."""
    records = session.outputs.list(status=status, permit=permit)
    flagged = any(r.differencing for r in records)
    say(table(["output", "status", "checks"] + ["flags"] * flagged + ["author", "title"],
              [(r.id, r.status, r.verdict) + (len(r.differencing) or "",) * flagged + (r.author, r.title)
               for r in records], wrap_columns=["title"]))


@signed_in(outputs_app, "show")
def outputs_show(session: Session, output_id: Annotated[str, typer.Argument(help="The output id.")]) -> None:
    """One output as a checker sees it, with the public table that would be released.

    What it is, its public table (the checked cells a release would hold), each disclosure check,
    differencing flags, reviews and history."""
    view = session.outputs.show(output_id)
    r = view.record
    say(fields([("output", r.id), ("permit", r.permit), ("title", r.title), ("kind", r.kind), ("source", r.source),
                ("author", r.author), ("created", r.created.isoformat(timespec="seconds")), ("status", r.status),
                ("checks", VERDICTS.get(r.verdict, r.verdict)), ("mitigation", r.mitigation or "none"),
                ("counts", f"rounded to base {r.counts_rounded_to}" if r.counts_rounded_to else "as checked"),
                ("context", r.context or ""), ("release", r.release_id or ""), ("files", ", ".join(r.files))]))
    say(path_lines("Its files are kept in", view.folder))
    for name, rows in view.tables.items():
        say("", public_table(name, rows))
    findings = r.checks.get("findings", [])
    say("", table(["rule", "verdict", "cells", "message"],
                  [(f["rule"], f["verdict"], len(f["cells"]), f["message"]) for f in findings],
                  wrap_columns=["message"], title="Disclosure checks (cells: how many cells each rule affected)"))
    if r.differencing:
        say("", "Differencing flags:")
        for flag in r.differencing:
            say(wrap(flag.message, "  ", "  "))
    say("", events("Reviews (UTC):", [(v.at, f"round {v.round}, {v.reviewer}: {v.decision}"
                                             + (f"; {v.comment}" if v.comment else "")) for v in r.reviews]))
    say("", events("History (UTC):", [(c.at, f"{c.status}, by {c.actor}" + (f": {c.note}" if c.note else ""))
                                      for c in r.history]))


def public_table(name: str, rows: list[list[str]]) -> list[str]:
    """An output file's table as it would be released: shown cells, suppressed ones blank. Its
    columns of words wrap; still too wide for the terminal, each row is shown as a record led by
    the columns that say what it is (those before the first column of measured values), so that
    a checker reads every value of a row together."""
    if not rows:
        return [f"{name}: empty"]
    header, body = rows[0], rows[1:]
    wide = [h for i, h in enumerate(header)
            if h in ("status", "note", "label", "title", "term") or any(" " in row[i] for row in body if i < len(row))]
    return table(header, body, wrap_columns=wide, keys=_leading_labels(header, body),
                 title=f"Public table {name} ({plural(len(body), 'row')}), as it would be released:")


def _leading_labels(header: list[str], body: list[list[str]]) -> int:
    """How many leading columns label a row: up to the first that holds a fraction or counts persons
    (count, n, n_...), which are measured, never labels."""
    for i in range(len(header)):
        if header[i] in ("count", "n") or header[i].startswith("n_") or any(
                "." in row[i] and row[i].replace(".", "", 1).lstrip("-").isdigit() for row in body if i < len(row)):
            return max(i, 1)
    return 1


@signed_in(outputs_app, "request-release")
def outputs_request_release(
    session: Session,
    output_ids: OutputIds,
    context: Annotated[str, typer.Option(
        help="For the checker: what the outputs are, why they are needed and how they were made.")],
) -> None:
    """As the author: ask a checker to release outputs that passed their checks."""
    for record in session.outputs.request_release(output_ids, context):
        say(f"Release of {record.id} requested")
        _print_flags(record.differencing)


@signed_in(outputs_app, "review")
def outputs_review(
    session: Session,
    output_id: Annotated[str, typer.Argument(help="The output id.")],
    decision: Annotated[str, typer.Option(help="approve, return (with comments) or reject.")],
    comment: Annotated[str, typer.Option(help="For the author; needed to return, reject, approve despite "
                                              "differencing flags, or approve an output whose verdict is "
                                              "review (say what you looked at).")] = "",
) -> None:
    """As a checker (never the author): decide on one requested output.

    Approval checks it again under the current policy. `safepool outputs show ID` shows what
    you approve."""
    record = session.outputs.review(output_id, decision, comment)
    _print_flags(record.differencing)
    say(f"Output {record.id}: {decision}; now {record.status}")


@signed_in(outputs_app, "release")
def outputs_release(session: Session, output_ids: OutputIds) -> None:
    """As a checker: copy approved outputs of one permit into a new release folder, the only way out."""
    folder = session.outputs.release(output_ids)
    say(path_lines(f"Released {plural(len(output_ids), 'output')} to", folder))


def _print_flags(flags: list[Any]) -> None:
    for flag in flags:
        say(wrap(f"differencing: {flag.message}", hanging="  "))
