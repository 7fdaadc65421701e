"""Commands of safe outputs: list and show recorded outputs, ask for release, review, release.

Outputs are published by the analyses (study, queries) through the output register under the
workspace's policy (`safepool policy show`); these commands take them through review and release,
each checked again under the current policy on the way."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.markup import escape
from rich.table import Table

from safepool.cli.common import UserOption, WorkspaceOption, app, console, run, signed_in, workspace_of
from safepool.cli.governance import _enum

outputs_app = typer.Typer(help="Recorded outputs: their checks, release requests, reviews and releases.",
                          no_args_is_help=True)
app.add_typer(outputs_app, name="outputs")

OutputIds = Annotated[list[str], typer.Argument(help="Output ids, e.g. SKILLS-2024-01-0003.")]


@outputs_app.command("list")
def outputs_list(
    user: UserOption,
    permit: Annotated[str | None, typer.Option(help="Only this permit's outputs.")] = None,
    status: Annotated[str | None, typer.Option(
        help="Only outputs in this status: checked, failed, release_requested, returned, rejected, approved "
             "or released.")] = None,
    workspace: WorkspaceOption = Path("."),
) -> None:
    """The outputs you may see: a checker sees all, an analyst those of their permits."""
    from safepool.disclosure.register import OutputStatus

    wanted = run(lambda: _enum(OutputStatus, status, "status")) if status else None
    governance, actor = signed_in(workspace_of(workspace), user)
    records = run(lambda: governance.outputs.list(actor, permit=permit, status=wanted))
    table = Table("output", "permit", "title", "kind", "source", "author", "checks", "status", "flags")
    for r in records:
        table.add_row(r.id, r.permit, escape(r.title), r.kind, r.source, r.author, r.verdict, r.status,
                      str(len(r.differencing)) if r.differencing else "")
    console.print(table)


@outputs_app.command("show")
def outputs_show(output_id: str, user: UserOption, workspace: WorkspaceOption = Path(".")) -> None:
    """One output: what it is, its checks, differencing flags, reviews and status history."""
    governance, actor = signed_in(workspace_of(workspace), user)
    r = run(lambda: governance.outputs.show(actor, output_id))
    about = Table("field", "value", show_header=False)
    for field, value in (("output", r.id), ("permit", r.permit), ("title", r.title), ("kind", r.kind),
                         ("source", r.source), ("author", r.author), ("created", r.created.isoformat()),
                         ("status", r.status), ("checks", _verdict(r.verdict)), ("mitigation", r.mitigation or ""),
                         ("counts", f"rounded to base {r.counts_rounded_to}" if r.counts_rounded_to else "as checked"),
                         ("context", r.context or ""), ("files", ", ".join(r.files)),
                         ("folder", str(governance.outputs.folder(r))), ("release", r.release_id or "")):
        about.add_row(field, escape(str(value)))
    console.print(about)
    checks = Table("rule", "verdict", "cells affected", "message", title="Disclosure checks")
    for f in r.checks.get("findings", []):
        checks.add_row(f["rule"], f["verdict"], str(len(f["cells"])), escape(f["message"]))
    console.print(checks)
    if r.differencing:
        console.print("[bold yellow]Differencing flags[/]")
        for flag in r.differencing:
            console.print(f"  {escape(flag.message)}", highlight=False)
    reviews = Table("round", "checker", "decision", "at", "comment", title="Reviews")
    for review in r.reviews:
        reviews.add_row(str(review.round), review.reviewer, review.decision,
                        review.at.isoformat(timespec="seconds"), escape(review.comment))
    console.print(reviews)
    history = Table("at", "status", "by", "note", title="History")
    for change in r.history:
        history.add_row(change.at.isoformat(timespec="seconds"), change.status, change.actor, escape(change.note))
    console.print(history)


@outputs_app.command("request-release")
def outputs_request_release(
    output_ids: OutputIds,
    context: Annotated[str, typer.Option(
        help="For the checker: what the outputs are, why they are needed and how they were made.")],
    user: UserOption,
    workspace: WorkspaceOption = Path("."),
) -> None:
    """As the author: ask a checker to release outputs that passed their checks."""
    governance, actor = signed_in(workspace_of(workspace), user)
    run(lambda: governance.outputs.request_release(actor, output_ids, context))
    for output_id in output_ids:
        record = run(lambda: governance.outputs.show(actor, output_id))
        console.print(f"Release of {record.id} requested")
        _print_flags(record.differencing)


@outputs_app.command("review")
def outputs_review(
    output_id: str,
    decision: Annotated[str, typer.Option(help="approve, return (with comments) or reject.")],
    user: UserOption,
    comment: Annotated[str, typer.Option(help="For the author; needed to return, reject, approve despite "
                                              "differencing flags, or approve an output whose verdict is "
                                              "review (say what you looked at).")] = "",
    workspace: WorkspaceOption = Path("."),
) -> None:
    """As a checker (never the author): decide on one requested output (approval re-checks it under the current policy)."""
    governance, actor = signed_in(workspace_of(workspace), user)
    record = run(lambda: governance.outputs.review(actor, output_id, decision, comment))
    _print_flags(record.differencing)
    console.print(f"Output {record.id}: {decision}; now {record.status}")


@outputs_app.command("release")
def outputs_release(output_ids: OutputIds, user: UserOption, workspace: WorkspaceOption = Path(".")) -> None:
    """As a checker: copy approved outputs of one permit into a new release folder, the only way out."""
    governance, actor = signed_in(workspace_of(workspace), user)
    folder = run(lambda: governance.outputs.release(actor, output_ids))
    console.print(f"Released {len(output_ids)} output(s) to {folder}", highlight=False, soft_wrap=True)


def _verdict(verdict: str) -> str:
    return "review (passed the automatic rules; a person must look)" if verdict == "review" else verdict


def _print_flags(flags) -> None:  # type: ignore[no-untyped-def]
    for flag in flags:
        console.print(f"[bold yellow]differencing:[/] {escape(flag.message)}", highlight=False)
