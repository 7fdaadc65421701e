"""Commands of register holders and their stewards: who stewards which holder, each holder's release
of its data into a permit, its credentials, and the linkage report by holder."""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, Annotated, Any

import typer

from safepool.cli.common import command_group, app, pool_app, registers_app, say, signed_in
from safepool.cli.data import linkage_lines, quarantine_lines, register_rows
from safepool.cli.governance import permit_app
from safepool.cli.render import table, wrap
from safepool.faults import Invalid

if TYPE_CHECKING:
    from safepool.session import Session

steward_app = command_group("Stewards of register holders, and the linkage authority (admins assign).")
app.add_typer(steward_app, name="steward")


# ----------------------------------------------------------------------------- who stewards what


@signed_in(steward_app, "assign")
def steward_assign(
    session: Session,
    name: Annotated[str, typer.Argument(help="The steward (a user with the steward role).")],
    holder: Annotated[list[str] | None, typer.Option(
        help="A register holder as the catalogue names it, or the part before or inside its parentheses "
             "(Kela, DVV, 'City of Espoo'); repeat for more.")] = None,
    linkage_authority: Annotated[bool, typer.Option(
        "--linkage-authority", help="Make the steward the linkage authority: builds pools, holds the keys.")] = False,
) -> None:
    """As an admin: make a steward the steward of register holders, or the linkage authority."""
    scope = session.assign_steward(name, holder or [], linkage_authority)
    say(wrap(f"User {name} is now {scope.describe()}", hanging="  "))


@signed_in(steward_app, "revoke")
def steward_revoke(
    session: Session,
    name: Annotated[str, typer.Argument(help="The steward.")],
    holder: Annotated[list[str] | None, typer.Option(
        help="A register holder to take away, named as for `steward assign`; repeat for more.")] = None,
    linkage_authority: Annotated[bool, typer.Option(
        "--linkage-authority", help="Take the linkage authority away.")] = False,
) -> None:
    """As an admin: take register holders or the linkage authority away from a steward who leaves
    or moves on (audited); their next command for them is refused."""
    scope = session.revoke_steward(name, holder or [], linkage_authority)
    say(wrap(f"User {name} is now {scope.describe()}", hanging="  "))


@signed_in(steward_app, "list")
def steward_list(session: Session) -> None:
    """Who stewards which register holder, and who is the linkage authority (anyone signed in; audited)."""
    found = session.stewards()
    rows = [(name, ", ".join(sorted(scope.holders)) or "-", "yes" if scope.linkage else "")
            for name, scope in found.items()]
    say(table(["steward", "register holders", "linkage authority"], rows, wrap_columns=["register holders"]))


# ----------------------------------------------------------------------------- releases


@signed_in(permit_app, "release")
def permit_release(
    session: Session,
    permit_id: Annotated[str, typer.Argument(help="The permit, in its data request phase.")],
    decision: Annotated[str, typer.Option(help="release, fewer (some variables withheld) or refuse.")],
    holder: Annotated[str | None, typer.Option(
        help="The holder decided for; needed only by a steward of several holders in the permit.")] = None,
    withhold: Annotated[list[str] | None, typer.Option(
        help="With --decision fewer: a variable withheld, as REGISTER.VARIABLE (repeat for more).")] = None,
    reason: Annotated[str, typer.Option(help="Why (required for fewer and refuse); recorded.")] = "",
) -> None:
    """As a register holder's steward: release its registers into a permit, with fewer variables, or refuse.

    Each holder whose registers the permit names decides once, in the data request phase; the pool
    is built only from what was released, and not before every holder has decided."""
    release = session.permit(permit_id).release(decision, holder=holder, withhold=withhold or [],
                                                                 reason=reason)
    say(wrap(f"Permit {permit_id}: {release.summary()}", hanging="  "))
    if release.left_out:
        say(wrap(f"The permit's scope is narrowed: {', '.join(release.left_out)} left out", hanging="  "))


def release_lines(releases: Any, waiting: Any) -> list[str]:
    """The holders' decisions on a permit, and who is still to decide."""
    lines: list[str] = []
    for release in releases:
        lines += wrap(f"{release.summary()} ({release.decided_by})" + (f": {release.reason}" if release.reason
                                                                       else ""), "  ", "  ")
    if waiting:
        lines += wrap(f"still to decide: {', '.join(waiting)}", "  ", "  ")
    return (["Register holders' releases:"] + lines) if lines else []


# ----------------------------------------------------------------------------- credentials


@signed_in(registers_app, "credentials")
def registers_credentials(session: Session) -> None:
    """As a register holder's steward: which of its own registers have a source password kept (never the password)."""
    held = session.credentials()
    say(table(["register", "source", "password kept"],
              [(c.register, c.kind, ("yes (environment)" if c.from_environment else "yes") if c.held else "no")
               for c in held]))


@signed_in(registers_app, "set-credential")
def registers_set_credential(
    session: Session,
    register: Annotated[str, typer.Argument(help="One of the steward's own registers.")],
    password_env: Annotated[str, typer.Option(help="Environment variable holding the source password.")]
    = "SAFEPOOL_SOURCE_PASSWORD",
) -> None:
    """As the steward of the register's holder: keep its source password in the steward zone (audited)."""
    password = os.environ.get(password_env)
    if not password:
        raise Invalid(f"set the source password in the environment variable {password_env}")
    session.set_credential(register, password)
    say(f"Source password of register {register} kept in the steward zone")


# ----------------------------------------------------------------------------- linkage by holder


@signed_in(pool_app, "linkage")
def pool_linkage(
    session: Session,
    permit: Annotated[str, typer.Argument(help="The permit whose linkage report is shown.")],
    holder: Annotated[str | None, typer.Option(help="Only this holder's registers (one the steward stewards).")]
    = None,
) -> None:
    """The linkage report by holder: a holder's steward sees its own registers' counts and quarantine;
    the linkage authority the whole report (audited)."""
    report = session.permit(permit).linkage(holder)
    if report["whole"] is not None:
        say(linkage_lines(report["whole"]))
        return
    for i, view in enumerate(report["holders"]):
        say([""] if i else [], holder_linkage_lines(view))


def holder_linkage_lines(view: dict[str, Any]) -> list[str]:
    """One holder's part of a linkage report: its registers' rows, its quarantine, and counts across
    holders as the disclosure checks let them be shown."""
    lines = register_rows(view["registers"], f"Linkage of {view['holder']}'s registers (rows)")
    lines += quarantine_lines(view["quarantined_rows_by_reason"], "Nothing of these registers was quarantined.")
    k = view["min_frequency"]
    for name, count in view["persons_with_other_holders"].items():
        shown = f"{count:,}" if count is not None else f"not shown (fewer than {k}, or all but fewer than {k})"
        lines += wrap(f"{name}: persons also in another holder's registers: {shown}", hanging="  ")
    for name, count in view["persons_missing_from_population"].items():
        shown = f"{count:,}" if count is not None else f"not shown (fewer than {k}, or all but fewer than {k})"
        lines += wrap(f"{name}: persons not in the population register: {shown}", hanging="  ")
    return lines
