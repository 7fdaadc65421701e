"""Commands of safe people, safe projects and safe settings: users, permits and the audit log."""

from __future__ import annotations

import datetime as dt
import json
import os
from pathlib import Path
from typing import TYPE_CHECKING, Annotated
from zoneinfo import ZoneInfo

import typer

from safepool.cli.common import command_group, PROBLEMS_FOUND, WorkspaceOption, app, command, say, sign_in, signed_in, \
    write_file
from safepool.cli.render import events, fields, path_lines, plural, table, wrap
from safepool.faults import Invalid

if TYPE_CHECKING:
    from safepool.session import Session

user_app = command_group("Users and their roles (admins add users).")
permit_app = command_group("Permits through the handbook's eight phases.")
audit_app = command_group("The hash-chained audit log and its monitoring rules.")
app.add_typer(user_app, name="user")
app.add_typer(permit_app, name="permit")
app.add_typer(audit_app, name="audit")


# ----------------------------------------------------------------------------- users


@command(user_app, "add")
def user_add(
    name: Annotated[str, typer.Argument(help="The new user's name: 2-40 lower-case letters, digits, '.', '_', '-'.")],
    role: Annotated[list[str], typer.Option(help="steward, analyst, checker, approver, manager or admin "
                                                 "(repeat for more).")],
    function: Annotated[list[str] | None, typer.Option(
        help="A manager's function: branch_management, city_management or data_protection_officer.")] = None,
    user: Annotated[str | None, typer.Option("--user", "-u", envvar="SAFEPOOL_USER",
                                             help="The admin who adds (not needed for the very first admin).")] = None,
    password_env: Annotated[str, typer.Option(help="Environment variable holding the new user's password.")]
    = "SAFEPOOL_NEW_PASSWORD",
    workspace: WorkspaceOption = Path("."),
) -> None:
    """Add a user with roles; the very first user must be an admin and needs no sign-in."""
    from safepool.session import create_first_admin

    session = sign_in(workspace, user) if user else None
    password = os.environ.get(password_env) or typer.prompt(f"password for {name}", hide_input=True,
                                                            confirmation_prompt=True)
    if session is None:
        if role != ["admin"] or function:
            raise Invalid("the very first user is an admin with no other role; others are added by an admin "
                          "(--user ADMIN)")
        create_first_admin(workspace, name, password)
    else:
        session.add_user(name, password, role, function or [])
    say(f"User {name} added with roles {', '.join(role)}")


@signed_in(user_app, "list")
def user_list(session: Session) -> None:
    """Users with their roles and functions (admins)."""
    actors = session.users()
    say(table(["user", "roles", "functions"],
              [(a.name, ", ".join(sorted(a.roles)), ", ".join(sorted(a.functions))) for a in actors],
              wrap_columns=["roles", "functions"]))


# ----------------------------------------------------------------------------- permits


@signed_in(permit_app, "request")
def permit_request(
    session: Session,
    form: Annotated[Path, typer.Argument(help="The filled benefit, risk and cost form (YAML).")],
    permit_id: Annotated[str, typer.Option("--id", help="An id for the permit, e.g. SKILLS-2024-01.")],
) -> None:
    """Phases 1-2: submit the request form; it is assessed at once and routed to its approvers."""
    permit = session.request_permit(session.handed_file(form, "FORM (the permit request form)"), permit_id)
    a = permit.assessment
    say(wrap(f"Permit {permit.id} submitted: benefit {a.benefit_class} ({a.benefit_points} points), "
             f"risk {a.risk_class} ({a.risk_points} points), {a.decision_label}; "
             f"needs approval from {', '.join(a.approvals)}", hanging="  "))


@signed_in(permit_app, "approve")
def permit_approve(
    session: Session,
    permit_id: Annotated[str, typer.Argument(help="The permit.")],
    as_role: Annotated[str, typer.Option("--as", help="approver, branch_management, city_management or "
                                                      "data_protection_officer")],
) -> None:
    """Phase 3 (or the reassessment after the analytic review): approve in one role."""
    permit = session.permit(permit_id).approve(as_role)
    say(f"Permit {permit.id}: {permit.status}, phase {permit.phase.name}")


@signed_in(permit_app, "reject")
def permit_reject(session: Session, permit_id: Annotated[str, typer.Argument(help="The permit.")],
                  reason: Annotated[str, typer.Option(help="Why, for the record.")]) -> None:
    """Phase 3: reject the request, with the reason recorded."""
    permit = session.permit(permit_id).reject(reason)
    say(f"Permit {permit.id}: rejected")


@signed_in(permit_app, "advance")
def permit_advance(
    session: Session,
    permit_id: Annotated[str, typer.Argument(help="The permit.")],
    phase: Annotated[str, typer.Argument(help="preparing_data, analytic_review, analysis or reporting")],
    note: Annotated[str, typer.Option(help="A note for the permit's record.")] = "",
) -> None:
    """Move an approved permit to its next phase.

    A steward moves it to preparing_data and analytic_review, an analyst of the permit to
    analysis and reporting."""
    permit = session.permit(permit_id).advance(phase, note)
    say(f"Permit {permit.id}: phase {permit.phase.name}")


@signed_in(permit_app, "list")
def permit_list(session: Session) -> None:
    """Permits with their status, phase, risk and expiry."""
    permits = session.permits()
    say(table(["permit", "status", "phase", "risk", "expiry", "name"],
              [(p.id, p.status, p.phase.name, p.assessment.risk_class, p.request.expiry.isoformat(),
                p.request.analysis.name) for p in permits], wrap_columns=["name"]))


@signed_in(permit_app, "show")
def permit_show(
    session: Session,
    permit_id: Annotated[str, typer.Argument(help="The permit.")],
    markdown: Annotated[Path | None, typer.Option(help="Write the whole decision document as Markdown here.")] = None,
    pdf: Annotated[Path | None, typer.Option(help="Write the whole decision document as PDF here.")] = None,
) -> None:
    """Where a permit stands: request, assessment, transitions and the next step.

    --markdown and --pdf write the handbook's decision document."""
    details = session.permit(permit_id).show()
    permit, request, a = details.permit, details.permit.request, details.permit.assessment
    frame = request.data.time_frame
    sources = [f"{name} ({'all variables' if chosen == '*' else ', '.join(chosen)})"
               for name, chosen in request.data.sources.items()]
    say(fields([("permit", permit.id), ("name", request.analysis.name), ("requested by", permit.requested_by),
                ("status", permit.status), ("phase", permit.phase.name),
                ("assessment", f"benefit {a.benefit_class} ({a.benefit_points} points), risk {a.risk_class} "
                               f"({a.risk_points} points): {a.decision_label}"),
                ("approvals", ", ".join(a.approvals)), ("people", ", ".join(request.people)),
                ("period", f"{frame.start} to {frame.end}"), ("expiry", request.expiry.isoformat()),
                ("registers", "; ".join(sources)), ("next step", details.next_step)]))
    say("", events("Transitions (UTC):", [(t.at, f"{t.phase}, {t.actor}" + (f": {t.note}" if t.note else ""))
                                          for t in details.transitions]))
    from safepool.cli.holders import release_lines

    released = release_lines(details.releases, details.waiting)
    if released:
        say("", released)
    if markdown:
        write_file(markdown, details.markdown().encode("utf-8"))
        say("", path_lines("Decision document (Markdown) written to", markdown))
    if pdf:
        write_file(pdf, details.pdf())
        say("", path_lines("Decision document (PDF) written to", pdf))


# ----------------------------------------------------------------------------- the audit log


@signed_in(audit_app, "verify")
def audit_verify(session: Session) -> None:
    """Recompute the hash chain; name the first broken record. Exits 1 if broken."""
    verdict = session.audit_verify()
    if verdict.ok:
        say(f"Audit log intact: {verdict.checked:,} records")
        return
    say(wrap(f"Audit log broken at record {verdict.first_broken}: {verdict.reason}", hanging="  "))
    raise typer.Exit(PROBLEMS_FOUND)


@signed_in(audit_app, "show")
def audit_show(
    session: Session,
    actor: Annotated[str | None, typer.Option(help="Only this user's records.")] = None,
    permit: Annotated[str | None, typer.Option(help="Only this permit's records.")] = None,
    action: Annotated[str | None, typer.Option(help="Only this action, e.g. pool_build.")] = None,
    since: Annotated[str | None, typer.Option(help="From this UTC time, e.g. 2026-01-31T08:00.")] = None,
    until: Annotated[str | None, typer.Option(help="Before this UTC time.")] = None,
) -> None:
    """The audit records, filtered by user, permit, action and time (reading them is audited)."""
    records = session.audit_records(user=actor, permit=permit, action=action, since=_utc(since),
                                                      until=_utc(until))
    for i, r in enumerate(records):
        where = ", ".join(part for part in (f"permit {r.permit}" if r.permit else "",
                                            f"target {r.target}" if r.target else "",
                                            plural(r.rows, "row") if r.rows is not None else "") if part)
        say([""] if i else [], wrap(f"#{r.seq} {r.at.isoformat(timespec='seconds')} {r.actor} ({r.role}): "
                                    f"{r.action}, {r.outcome}", hanging="    "))
        if where:
            say(wrap(where, "    ", "  "))
        if r.detail:
            say(wrap(", ".join(f"{key} {json.dumps(value, ensure_ascii=False)}" for key, value in r.detail.items()),
                     "    ", "  "))
    if not records:
        say("No audit records match.")


@signed_in(audit_app, "alerts")
def audit_alerts(
    session: Session,
    every: Annotated[bool, typer.Option("--every", help="List every alert on its own, not one line per rule, "
                                                        "user and day.")] = False,
) -> None:
    """Apply the monitoring rules to the log; exits 1 when any alert is raised.

    Alerts of one rule about one user on one day are shown together, with their number, time span,
    permits and records (`safepool audit show` lists the records); `--every` lists each alert."""
    from safepool.governance.alerts import AlertSettings, group_alerts

    alerts = session.audit_alerts()
    if not alerts:
        say("No alerts.")
        return
    if every:
        for i, a in enumerate(alerts):
            who = ", ".join(part for part in (f"user {a.actor}" if a.actor else "", f"permit {a.permit}" if a.permit
                                              else "", f"records {a.first_seq}-{a.last_seq}") if part)
            say([""] if i else [], wrap(f"{a.severity} {a.rule}: {a.message}", hanging="    "), wrap(who, "    "))
        raise typer.Exit(PROBLEMS_FOUND)
    settings = AlertSettings()
    zone = ZoneInfo(settings.timezone)
    groups = group_alerts(alerts, settings)
    say(wrap(f"{plural(len(alerts), 'alert')} on {plural(len(groups), 'line')}, one per rule, user and day, with "
             f"the audit records they are made of (times in {settings.timezone}; `--every` lists each alert with "
             "its message)."))
    for day in dict.fromkeys(group.day for group in groups):
        rows = []
        for group in (g for g in groups if g.day == day):
            span = group.span(zone)
            time = "" if span is None else f"{span[0]:%H:%M}-{span[1]:%H:%M}" + \
                (f" (+{(span[1].date() - span[0].date()).days}d)" if span[1].date() != span[0].date() else "")
            who = group.actor or ", ".join(group.actors)
            rows.append((f"{group.severity} {group.rule}", who, time, group.records, ", ".join(group.permits)))
        say("", table(["alert", "user", "time", "records", "permits"], rows, wrap_columns=["user", "permits"],
                      title=f"{day:%A %Y-%m-%d}" if day else "The whole log"))
    raise typer.Exit(PROBLEMS_FOUND)


def _utc(text: str | None) -> dt.datetime | None:
    if text is None:
        return None
    try:
        moment = dt.datetime.fromisoformat(text)
    except ValueError:
        raise Invalid(f"{text[:40]!r} is not a time like 2026-01-31T08:00") from None
    return moment if moment.tzinfo else moment.replace(tzinfo=dt.UTC)

