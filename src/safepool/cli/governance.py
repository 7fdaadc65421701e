"""Commands of safe people, safe projects and safe settings: users, permits and the audit log."""

from __future__ import annotations

import datetime as dt
import os
from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from safepool.cli.common import UserOption, WorkspaceOption, app, console, run, signed_in, workspace_of

user_app = typer.Typer(help="Users and their roles (admins add users).", no_args_is_help=True)
permit_app = typer.Typer(help="Permits through the handbook's eight phases.", no_args_is_help=True)
audit_app = typer.Typer(help="The hash-chained audit log and its monitoring rules.", no_args_is_help=True)
app.add_typer(user_app, name="user")
app.add_typer(permit_app, name="permit")
app.add_typer(audit_app, name="audit")


def _governance(workspace: Path):  # type: ignore[no-untyped-def]
    from safepool.governance.context import Governance

    return run(lambda: Governance.open(workspace_of(workspace).root))


@user_app.command("add")
def user_add(
    name: str,
    role: Annotated[list[str], typer.Option(help="steward, analyst, checker, approver, manager or admin.")],
    function: Annotated[list[str] | None, typer.Option(
        help="A manager's function: branch_management, city_management or data_protection_officer.")] = None,
    user: Annotated[str | None, typer.Option("--user", "-u", envvar="SAFEPOOL_USER",
                                             help="The admin who adds (not needed for the very first admin).")] = None,
    password_env: Annotated[str, typer.Option(help="Environment variable holding the new user's password.")]
    = "SAFEPOOL_NEW_PASSWORD",
    workspace: WorkspaceOption = Path("."),
) -> None:
    """Add a user with roles; the very first user must be an admin and needs no sign-in."""
    from safepool.governance.users import ManagerFunction, Role

    roles = run(lambda: [_enum(Role, r, "role") for r in role])
    functions = run(lambda: [_enum(ManagerFunction, f, "function") for f in function or []])
    password = os.environ.get(password_env) or typer.prompt(f"password for {name}", hide_input=True,
                                                            confirmation_prompt=True)
    if user is None:
        governance, actor = _governance(workspace), None
    else:
        governance, actor = signed_in(workspace_of(workspace), user)
    run(lambda: governance.users.add(actor, name, password, roles, functions))
    console.print(f"User {name} added with roles {', '.join(role)}")


@user_app.command("list")
def user_list(workspace: WorkspaceOption = Path(".")) -> None:
    """Users and their roles."""
    table = Table("user", "roles", "functions")
    for actor in run(lambda: _governance(workspace).users.list()):
        table.add_row(actor.name, ", ".join(sorted(actor.roles)), ", ".join(sorted(actor.functions)))
    console.print(table)


@permit_app.command("request")
def permit_request(
    form: Annotated[Path, typer.Argument(help="The filled benefit, risk and cost form (YAML).")],
    permit_id: Annotated[str, typer.Option("--id", help="An id for the permit, e.g. SKILLS-2024-01.")],
    user: UserOption,
    workspace: WorkspaceOption = Path("."),
) -> None:
    """Phases 1-2: submit the request form; it is assessed at once and routed to its approvers."""
    from safepool.governance.form import PermitRequest
    from safepool.yaml_files import load_model

    request = run(lambda: load_model(form, PermitRequest))
    governance, actor = signed_in(workspace_of(workspace), user)
    permit = run(lambda: governance.permits.request(actor, request, permit_id))
    a = permit.assessment
    console.print(f"Permit {permit.id} submitted: benefit {a.benefit_class} ({a.benefit_points} points), "
                  f"risk {a.risk_class} ({a.risk_points} points), {a.decision_label}; "
                  f"needs approval from {', '.join(a.approvals)}")


@permit_app.command("approve")
def permit_approve(
    permit_id: str,
    as_role: Annotated[str, typer.Option("--as", help="approver, branch_management, city_management or "
                                                      "data_protection_officer")],
    user: UserOption,
    workspace: WorkspaceOption = Path("."),
) -> None:
    """Phase 3 (or the reassessment after the analytic review): approve in one role."""
    from safepool.governance.assessment import ApprovalRole

    role = run(lambda: _enum(ApprovalRole, as_role, "approval role"))
    governance, actor = signed_in(workspace_of(workspace), user)
    permit = run(lambda: governance.permits.approve(actor, permit_id, role))
    console.print(f"Permit {permit.id}: {permit.status}, phase {permit.phase.label}")


@permit_app.command("reject")
def permit_reject(permit_id: str, reason: Annotated[str, typer.Option()], user: UserOption,
                  workspace: WorkspaceOption = Path(".")) -> None:
    """Phase 3: reject the request, with the reason recorded."""
    governance, actor = signed_in(workspace_of(workspace), user)
    permit = run(lambda: governance.permits.reject(actor, permit_id, reason))
    console.print(f"Permit {permit.id}: rejected")


@permit_app.command("advance")
def permit_advance(
    permit_id: str,
    phase: Annotated[str, typer.Argument(help="preparing_data, analytic_review, analysis or reporting")],
    user: UserOption,
    note: Annotated[str, typer.Option()] = "",
    workspace: WorkspaceOption = Path("."),
) -> None:
    """Move an approved permit to its next phase (steward: preparing, review; analyst: the rest)."""
    from safepool.governance.permits import Phase

    target = run(lambda: _enum_by_name(Phase, phase))
    governance, actor = signed_in(workspace_of(workspace), user)
    permit = run(lambda: governance.permits.advance(actor, permit_id, target, note))
    console.print(f"Permit {permit.id}: phase {permit.phase.label}")


@permit_app.command("list")
def permit_list(workspace: WorkspaceOption = Path(".")) -> None:
    """Permits with their phase, status, risk and expiry."""
    table = Table("permit", "name", "status", "phase", "risk", "expiry")
    for p in run(lambda: _governance(workspace).permits.list()):
        table.add_row(p.id, p.request.analysis.name, p.status, p.phase.label, p.assessment.risk_class,
                      p.request.expiry.isoformat())
    console.print(table)


@permit_app.command("show")
def permit_show(
    permit_id: str,
    markdown: Annotated[Path | None, typer.Option(help="Write the decision document as Markdown here.")] = None,
    pdf: Annotated[Path | None, typer.Option(help="Write the decision document as PDF here.")] = None,
    workspace: WorkspaceOption = Path("."),
) -> None:
    """Print the filled form and the decision record as the handbook's decision document."""
    from safepool.governance.document import render_markdown, render_pdf

    governance = _governance(workspace)
    permit = run(lambda: governance.permits.get(permit_id))
    transitions = governance.permits.transitions(permit_id)
    text = render_markdown(permit.request, permit.assessment, transitions, permit_id=permit_id)
    if markdown:
        markdown.write_text(text, encoding="utf-8")
    if pdf:
        pdf.write_bytes(render_pdf(permit.request, permit.assessment, transitions, permit_id=permit_id))
    if not (markdown or pdf):
        console.print(text, markup=False, highlight=False)
    else:
        console.print("Decision document written: " + ", ".join(str(p) for p in (markdown, pdf) if p))


@audit_app.command("verify")
def audit_verify(workspace: WorkspaceOption = Path(".")) -> None:
    """Recompute the hash chain; name the first broken record. Exits 1 if broken."""
    verdict = run(lambda: _governance(workspace).audit.verify())
    if verdict.ok:
        console.print(f"Audit log intact: {verdict.checked} records")
    else:
        console.print(f"[red]Audit log broken at record {verdict.first_broken}: {verdict.reason}[/]")
        raise typer.Exit(1)


@audit_app.command("show")
def audit_show(
    user: Annotated[str | None, typer.Option(help="Only this user's records.")] = None,
    permit: Annotated[str | None, typer.Option(help="Only this permit's records.")] = None,
    action: Annotated[str | None, typer.Option(help="Only this action, e.g. pool_build.")] = None,
    since: Annotated[str | None, typer.Option(help="From this UTC time, e.g. 2026-01-31T08:00.")] = None,
    until: Annotated[str | None, typer.Option(help="Before this UTC time.")] = None,
    workspace: WorkspaceOption = Path("."),
) -> None:
    """The audit records, filtered by user, permit, action and time."""
    records = run(lambda: _governance(workspace).audit.records(
        user=user, permit=permit, action=action, since=_utc(since), until=_utc(until)))
    table = Table("seq", "at (UTC)", "user", "action", "permit", "target", "rows", "outcome", "detail")
    for r in records:
        table.add_row(str(r.seq), r.at.isoformat(timespec="seconds"), r.actor, r.action, r.permit or "",
                      r.target or "", "" if r.rows is None else f"{r.rows:,}", r.outcome, r.detail_json)
    console.print(table)


@audit_app.command("alerts")
def audit_alerts(workspace: WorkspaceOption = Path(".")) -> None:
    """Apply the monitoring rules to the log; exits 1 when any alert is raised."""
    from safepool.governance.alerts import run_alerts

    governance = _governance(workspace)
    expiry = {p.id: p.request.expiry for p in governance.permits.list()}
    alerts = run(lambda: run_alerts(governance.audit, permit_expiry=expiry))
    if not alerts:
        console.print("No alerts.")
        return
    table = Table("severity", "rule", "user", "permit", "records", "message")
    for a in alerts:
        table.add_row(a.severity, a.rule, a.actor or "", a.permit or "", f"{a.first_seq}-{a.last_seq}", a.message)
    console.print(table)
    raise typer.Exit(1)


def _utc(text: str | None) -> dt.datetime | None:
    from safepool.errors import SafepoolError

    if text is None:
        return None
    try:
        moment = dt.datetime.fromisoformat(text)
    except ValueError:
        raise SafepoolError(f"{text!r} is not a time like 2026-01-31T08:00") from None
    return moment if moment.tzinfo else moment.replace(tzinfo=dt.UTC)


def _enum(kind, value: str, what: str):  # type: ignore[no-untyped-def]
    from safepool.errors import SafepoolError

    try:
        return kind(value)
    except ValueError:
        raise SafepoolError(f"unknown {what} {value!r}; choose from {', '.join(k.value for k in kind)}") from None


def _enum_by_name(kind, name: str):  # type: ignore[no-untyped-def]
    from safepool.errors import SafepoolError

    try:
        return kind[name]
    except KeyError:
        raise SafepoolError(f"unknown phase {name!r}; choose from {', '.join(k.name for k in kind)}") from None
