"""The Session: the one way in to a safepool workspace, for the command line, notebooks and
any later web or HTTP interface.

    import safepool
    session = safepool.connect("safepool-demo", user="vtt.analyst1", password=...)
    permit = session.permit("SKILLS-DEMO")
    permit.variables()                       # the permit's tables and variables
    answer = permit.query("SELECT sex, count(DISTINCT pid) AS persons FROM population GROUP BY sex")

`connect` signs a person in through the workspace's user directory. Every method names one
action of the access policy (safepool.governance.access_policy.POLICY, role x action) and is
checked against it before the library is called; a refusal is audited through the governance
refusal path, and every read of data or metadata is audited as a view. The library keeps its
own finer checks (who a permit names, separation of duties, phases, expiry).

Failures reach the caller as SafepoolError subclasses with messages safe to show: a locked or
unreachable metadata database is Unavailable, a request nested too deeply to check is Invalid.
"""

from __future__ import annotations

import datetime as dt
import getpass
import os
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from functools import wraps
from pathlib import Path
from typing import Any, ParamSpec, TypeVar

from safepool.errors import SafepoolError
from safepool.faults import Conflict, Invalid, NotFound, Refused, Unavailable, database_unavailable
from safepool.governance import access_policy
from safepool.governance.context import Governance
from safepool.governance.permits import Permit, Phase
from safepool.governance.users import Actor, ManagerFunction, Role, refuse
from safepool.workspace import Workspace

__all__ = ["connect", "Session", "PermitSession", "Outputs", "create_first_admin", "next_step",
           "Conflict", "Invalid", "NotFound", "Refused", "Unavailable"]

PASSWORD_ENV = "SAFEPOOL_PASSWORD"
P = ParamSpec("P")
T = TypeVar("T")


# --------------------------------------------------------------------------- faults


@contextmanager
def expected_faults() -> Iterator[None]:
    """Turn the failures a person can meet that do not come as SafepoolError into typed errors
    with messages safe to show: the metadata database locked, unreachable or damaged, a request
    nested too deeply to check."""
    from sqlalchemy import exc as sql

    try:
        yield
    except SafepoolError:
        raise
    except sql.IntegrityError:
        raise Conflict("the change met another one made at the same time; look again and retry") from None
    except sql.ProgrammingError:
        raise  # a mistake in safepool's own statements: its traceback is what mends it
    except (sql.DatabaseError, sql.InterfaceError) as error:  # locked, unreachable, unopenable, damaged
        raise database_unavailable(error) from None
    except RecursionError:
        raise Invalid("the request is nested too deeply to be checked; write it with fewer nested parts") from None


def _guarded(method: Callable[P, T]) -> Callable[P, T]:
    @wraps(method)
    def call(*args: P.args, **kwargs: P.kwargs) -> T:
        with expected_faults():
            return method(*args, **kwargs)

    return call


# --------------------------------------------------------------------------- signing in


def connect(workspace: str | Path, user: str, password: str | None = None, *,
            metadata_url: str | None = None) -> Session:
    """Sign `user` in to the workspace and return their Session.

    The password is taken from `password`, else SAFEPOOL_PASSWORD, else asked for (hidden).
    The metadata database is the workspace's own SQLite, or `metadata_url` /
    SAFEPOOL_METADATA_URL."""
    with expected_faults():
        ws = Workspace.open(Path(workspace))
        governance = Governance.open(ws.root, url=metadata_url)
        if password is None:
            password = os.environ.get(PASSWORD_ENV) or getpass.getpass(f"password for {user}: ")
        actor = governance.users.authenticate(user, password)
    return Session(ws, governance, actor)


def create_first_admin(workspace: str | Path, name: str, password: str, *, metadata_url: str | None = None) -> None:
    """Add the very first user of a workspace, an admin; needs no sign-in and works only once."""
    with expected_faults():
        ws = Workspace.open(Path(workspace))
        governance = Governance.open(ws.root, url=metadata_url)
        governance.users.add(None, name, password, [Role.admin])


# --------------------------------------------------------------------------- the session


class Session:
    """What one signed-in person may do in one workspace; see the module's docstring."""

    def __init__(self, workspace: Workspace, governance: Governance, actor: Actor) -> None:
        self.workspace = workspace
        self.governance = governance
        self.actor = actor

    def __repr__(self) -> str:
        return f"<safepool Session {self.actor.name} ({self.actor.main_role}) in {self.workspace.root}>"

    def __enter__(self) -> Session:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()

    def close(self) -> None:
        """Release the metadata database's connections."""
        self.governance.users.engine.dispose()

    @property
    def user(self) -> str:
        return self.actor.name

    @_guarded
    def handed_file(self, path: str | Path, what: str) -> Path:
        """`path` resolved (see `workspace.handed_file`); a file inside a zone is refused, and the
        refusal audited with the zone it tried (never the path: a path names what is in a zone)."""
        from safepool.workspace import HandedFileRefused

        try:
            return self.workspace.handed_file(path, what)
        except HandedFileRefused as refused:
            self.governance.audit.append(actor=self.actor.name, role=self.actor.main_role, action="handed_file_refused",
                                         outcome="refused", target=f"{refused.zone}/", detail={"what": what})
            raise

    @property
    def roles(self) -> frozenset[Role]:
        return self.actor.roles

    def may(self, action: str) -> bool:
        """Whether the access policy lets this person do `action` at all (the library may still refuse)."""
        return access_policy.allowed(self.actor.roles, action) and access_policy.steward_allowed(
            self.actor.roles, self.steward_scope.kinds, action)

    @property
    def steward_scope(self) -> Any:
        """What this person stewards: register holders, and whether they are the linkage authority
        (safepool.governance.holders.StewardScope; empty for anyone who is not an assigned steward)."""
        from safepool.governance.holders import StewardScope

        if not self.actor.has(Role.steward):
            return StewardScope()
        return self.governance.holders.scope(self.actor.name)

    # -- the gate -------------------------------------------------------------------------

    def _authorise(self, action: str, *, permit: str | None = None, target: str | None = None) -> None:
        """Check the access policy; a refusal is audited and raised."""
        if action not in access_policy.POLICY:
            raise RuntimeError(f"action {action} is not in the access policy")  # a programming error
        if not access_policy.allowed(self.actor.roles, action):
            raise refuse(self.governance.audit, self.actor.name, self.actor.main_role, action,
                         access_policy.refusal(self.actor.name, action), permit=permit, target=target)
        if not access_policy.steward_allowed(self.actor.roles, self.steward_scope.kinds, action):
            raise refuse(self.governance.audit, self.actor.name, self.actor.main_role, action,
                         access_policy.steward_refusal(self.actor.name, action), permit=permit, target=target)

    def _refuse(self, action: str, reason: str, *, permit: str | None = None) -> Exception:
        return refuse(self.governance.audit, self.actor.name, self.actor.main_role, action, reason, permit=permit)

    def _viewed(self, action: str, *, permit: str | None = None, target: str | None = None,
                rows: int | None = None, detail: dict[str, Any] | None = None) -> None:
        """Audit a read of data or metadata as a view."""
        self.governance.audit.append(actor=self.actor.name, role=self.actor.main_role, action=action, permit=permit,
                                     target=target, rows=rows, detail={"view": True, **(detail or {})})

    # -- people ---------------------------------------------------------------------------

    @_guarded
    def users(self) -> list[Actor]:
        """Users with their roles and functions (admins)."""
        self._authorise("user_list")
        found = self.governance.users.list()
        self._viewed("user_list", rows=len(found))
        return found

    @_guarded
    def add_user(self, name: str, password: str, roles: list[Role | str],
                 functions: list[ManagerFunction | str] | None = None) -> Actor:
        """Add a user (admins); a manager's functions say which management body they speak for."""
        self._authorise("user_add", target=name)
        wanted = [_member(Role, r, "role") for r in roles]
        speaks_for = [_member(ManagerFunction, f, "function") for f in functions or []]
        self.governance.users.add(self.actor, name, password, wanted, speaks_for)
        added = self.governance.users.actor(name)
        assert added is not None
        return added

    @_guarded
    def unlock_user(self, name: str) -> bool:
        """Lift the sign-in lock of an account (admins, audited); True if it was locked."""
        self._authorise("user_unlock", target=_safe_id(name))
        return self.governance.users.unlock(self.actor, name)

    # -- the audit log --------------------------------------------------------------------

    @_guarded
    def audit_records(self, *, user: str | None = None, permit: str | None = None, action: str | None = None,
                      since: dt.datetime | None = None, until: dt.datetime | None = None) -> list[Any]:
        """Audit records, filtered (their reading is itself audited)."""
        self._authorise("audit_show", permit=permit)
        records = self.governance.audit.records(user=user, permit=permit, action=action, since=since, until=until)
        filters = {k: v for k, v in (("user", user), ("action", action)) if v is not None}
        self._viewed("audit_show", permit=permit, rows=len(records), detail=filters)
        return records

    @_guarded
    def audit_verify(self) -> Any:
        """Recompute the audit log's hash chain; the verdict names the first broken record."""
        self._authorise("audit_verify")
        verdict = self.governance.audit.verify()
        self._viewed("audit_verify", rows=verdict.checked, detail={"intact": verdict.ok})
        return verdict

    @_guarded
    def audit_alerts(self) -> list[Any]:
        """The monitoring rules applied to the whole log."""
        self._authorise("audit_alerts")
        from safepool.governance.alerts import run_alerts

        expiry = {p.id: p.request.expiry for p in self.governance.permits.list()}
        alerts = run_alerts(self.governance.audit, permit_expiry=expiry)
        self._viewed("audit_alerts", rows=len(alerts))
        return alerts

    # -- the disclosure policy ------------------------------------------------------------

    @_guarded
    def policy(self) -> tuple[Any, list[Any]]:
        """The workspace's disclosure policy and its audited changes (the library audits the view)."""
        self._authorise("policy_show")
        from safepool.disclosure.policy import show_policy

        return show_policy(self.governance, self.actor)

    @_guarded
    def set_policy(self, setting: str, value: Any) -> Any:
        """Change one setting of the disclosure policy (admins); audited with its old and new value."""
        self._authorise("policy_set", target=setting if isinstance(setting, str) and setting.isidentifier() else None)
        from safepool.disclosure.policy import set_policy

        return set_policy(self.governance, self.actor, setting, value)

    @_guarded
    def restore_policy(self) -> Any:
        """Write the audited policy back after its file was changed by hand (admins)."""
        self._authorise("policy_restore")
        from safepool.disclosure.policy import restore_policy

        return restore_policy(self.governance, self.actor)

    def policy_file(self) -> Path:
        from safepool.disclosure.policy import policy_path

        return policy_path(self.workspace.root)

    # -- registers ------------------------------------------------------------------------

    @_guarded
    def registers(self) -> list[Any]:
        """The register catalogue: registers, holders, sources and time grain (no identifiers)."""
        self._authorise("registers_list")
        registers = self.workspace.catalogue().registers
        self._viewed("registers_list", rows=len(registers))
        return registers

    @_guarded
    def check_registers(self, names: list[str] | None = None) -> list[Any]:
        """As a register holder's steward: each of its own registers' sources (or those named, all
        its own) against its data dictionary, counts only (audited)."""
        self._authorise("registers_check")
        from safepool.registers.check import check_registers_as

        return check_registers_as(self.workspace, self.governance, self.actor, names or None)

    @_guarded
    def credentials(self) -> list[Any]:
        """As a register holder's steward: which of its own registers have a source password kept
        (never the password; audited as a view)."""
        self._authorise("credentials_list")
        from safepool.registers.credentials import credentials_as

        return credentials_as(self.workspace, self.governance, self.actor)

    @_guarded
    def set_credential(self, register: str, password: str) -> None:
        """As the steward of the register's holder: keep its source password in the steward zone
        (audited: the register, never the password)."""
        self._authorise("credentials_set", target=_safe_id(register))
        from safepool.registers.credentials import set_credential_as

        set_credential_as(self.workspace, self.governance, self.actor, register, password)

    # -- stewards of register holders -------------------------------------------------------

    @_guarded
    def stewards(self) -> dict[str, Any]:
        """Who stewards which register holder, and who is the linkage authority (user -> StewardScope),
        and the holders the catalogue names with their registers."""
        self._authorise("steward_list")
        found = self.governance.holders.assignments()
        self._viewed("steward_list", rows=len(found))
        return found

    @_guarded
    def assign_steward(self, name: str, holders: list[str] | None = None, linkage_authority: bool = False) -> Any:
        """As an admin: make a steward the steward of register holders (named as in the catalogue:
        'Kela', 'City of Espoo') and/or the linkage authority; returns their StewardScope."""
        self._authorise("steward_assign", target=_safe_id(name))
        return self.governance.holders.assign(self.actor, name, list(holders or []), linkage_authority)

    @_guarded
    def revoke_steward(self, name: str, holders: list[str] | None = None, linkage_authority: bool = False) -> Any:
        """As an admin: take register holders and/or the linkage authority away from a steward
        (who leaves, or moves on); their next call is refused. Returns what they still steward."""
        self._authorise("steward_revoke", target=_safe_id(name))
        return self.governance.holders.revoke(self.actor, name, list(holders or []), linkage_authority)

    # -- the workspace's files ---------------------------------------------------------------

    @_guarded
    def doctor(self, fix: bool = False) -> Any:
        """Remove the scratch killed builds left and report what is not owner-only (with `fix`,
        make it owner-only); as a steward or an admin, audited with its counts."""
        self._authorise("doctor")
        from safepool.doctor import doctor

        return doctor(self.workspace, self.governance, self.actor, fix=fix)

    # -- permits --------------------------------------------------------------------------

    @_guarded
    def permits(self) -> list[Permit]:
        """Every permit with its phase, status, assessment and expiry."""
        self._authorise("permit_list")
        found = self.governance.permits.list()
        self._viewed("permit_list", rows=len(found))
        return found

    @_guarded
    def request_permit(self, form: Any, permit_id: str) -> Permit:
        """Phases 1-2: submit the handbook's Appendix 1 form (a PermitRequest, or a YAML file)."""
        self._authorise("permit_request", permit=_safe_id(permit_id))
        from safepool.governance.form import PermitRequest
        from safepool.yaml_files import load_model

        request = form if isinstance(form, PermitRequest) else load_model(
            self.handed_file(form, "form (the permit request form)"), PermitRequest)
        return self.governance.permits.request(self.actor, request, permit_id)

    def permit(self, permit_id: str) -> PermitSession:
        """What this person can do under one permit (nothing is read until a method is called)."""
        return PermitSession(self, permit_id)

    # -- outputs --------------------------------------------------------------------------

    @property
    def outputs(self) -> Outputs:
        """Recorded outputs of every permit this person may see."""
        return Outputs(self, None)


# --------------------------------------------------------------------------- one permit


# In which phases an action may happen: a refusal outside them names the command that moves the
# permit on (the library checks the same phases again).
ACTION_PHASES: dict[str, tuple[Phase, ...]] = {
    "pool_build": (Phase.data_request, Phase.preparing_data),
    "query": (Phase.analytic_review, Phase.analysis, Phase.reporting),
    "study_run": (Phase.analytic_review, Phase.analysis, Phase.reporting),
    "insight_run": (Phase.analytic_review, Phase.analysis, Phase.reporting),
    "insight_handover": (Phase.analytic_review, Phase.analysis, Phase.reporting),
    "pool_variables": (Phase.analytic_review, Phase.analysis, Phase.reporting),
    "pool_show": (Phase.analytic_review, Phase.analysis, Phase.reporting),
}
STEWARD_PHASES = (Phase.preparing_data, Phase.analytic_review)  # the steward moves a permit into these


def where(permit: Permit) -> str:
    """Where a permit stands, in words: 'permit P is in phase preparing_data'."""
    if permit.status == "rejected":
        return f"permit {permit.id} was rejected"
    if permit.status == "stopped":
        return f"permit {permit.id} was stopped"
    if permit.status != "approved":
        return f"permit {permit.id} is awaiting its decision"
    return f"permit {permit.id} is in phase {permit.phase.name}"


def next_step(permit: Permit, reassessed: bool | None = None, waiting: list[str] | None = None) -> str:
    """Who moves a permit on from where it is, and with which command (`waiting`: the register
    holders that have not decided on its release yet)."""
    pid = permit.id
    if permit.status in ("rejected", "stopped"):
        return "a new request is needed"
    if permit.status != "approved":
        roles = ", ".join(permit.assessment.approvals)
        return f"it needs approval from {roles}: each approves with `safepool permit approve {pid} --as ROLE`"
    if permit.phase >= Phase.reporting:
        return "it is in its last phase"
    following = Phase(permit.phase + 1)
    if permit.phase == Phase.data_request and waiting:
        return (f"it waits for the release of {', '.join(waiting)}: each holder's steward decides with "
                f"`safepool permit release {pid} --decision release|fewer|refuse`")
    if permit.phase == Phase.data_request:
        return f"the linkage authority builds its pool with `safepool pool build --permit {pid}`, which moves it on"
    if awaits_reassessment(permit, reassessed):
        return (f"it is {permit.assessment.risk_class} risk and must first be reassessed: an approver runs "
                f"`safepool permit approve {pid} --as approver`")
    who = "the linkage authority" if following in STEWARD_PHASES else "an analyst of the permit"
    return f"{who} moves it on with `safepool permit advance {pid} {following.name}`"


def awaits_reassessment(permit: Permit, reassessed: bool | None) -> bool:
    """A moderate or high risk permit after its analytic review, before an approver reassessed it."""
    return (permit.approved and permit.phase == Phase.analytic_review
            and permit.assessment.reassessment_after_review and reassessed is False)


@dataclass(frozen=True)
class PermitDetails:
    """A permit as its decision document shows it, and where it stands."""

    permit: Permit
    transitions: list[Any]
    next_step: str
    releases: tuple[Any, ...] = ()  # each register holder's decision (safepool.governance.holders.Release)
    waiting: tuple[str, ...] = ()  # the register holders in its scope that have not decided yet

    def markdown(self) -> str:
        from safepool.governance.document import render_markdown

        return render_markdown(self.permit.request, self.permit.assessment, self.transitions,
                               permit_id=self.permit.id, releases=self.releases, waiting=self.waiting)

    def pdf(self) -> bytes:
        from safepool.governance.document import render_pdf

        return render_pdf(self.permit.request, self.permit.assessment, self.transitions, permit_id=self.permit.id,
                          releases=self.releases, waiting=self.waiting)


class PermitSession:
    """What the signed-in person can do under one permit."""

    def __init__(self, session: Session, permit_id: str) -> None:
        self.session = session
        self.id = permit_id

    def __repr__(self) -> str:
        return f"<safepool permit {self.id} for {self.session.user}>"

    @property
    def _governance(self) -> Governance:
        return self.session.governance

    @property
    def _actor(self) -> Actor:
        return self.session.actor

    def _get(self) -> Permit:
        return self._governance.permits.get(self.id)

    def _in_phase(self, action: str) -> None:
        """Refuse (audited) an action outside the phases it belongs to, naming what moves the permit on."""
        phases = ACTION_PHASES[action]
        if action in ("pool_show", "pool_variables") and self.session.steward_scope.linkage:
            return  # the linkage authority, who prepares the data, sees the pool whenever it exists
        permit = self._get()
        if permit.approved and permit.phase in phases:
            return
        wanted = " or ".join(p.name for p in phases)
        if permit.approved and permit.phase > max(phases):
            raise self.session._refuse(action, f"{where(permit)}; to {access_policy.WORDS[action]} a permit must "
                                       f"be in phase {wanted}", permit=self.id)
        step = next_step(permit, self._reassessed(), self._waiting(permit))
        raise self.session._refuse(action, f"{where(permit)}, not {wanted}; {step}", permit=self.id)

    def _waiting(self, permit: Permit) -> list[str]:
        """The register holders of an approved permit in its data request phase that have not decided."""
        if not (permit.approved and permit.phase == Phase.data_request):
            return []
        return self._governance.holders.waiting(permit)

    def _reassessed(self) -> bool | None:
        """Whether the permit was reassessed after its analytic review (None when that is not known)."""
        reassessed = getattr(self._governance.permits, "_reassessed", None)
        return reassessed(self.id) if reassessed else None

    # -- the permit itself ----------------------------------------------------------------

    @_guarded
    def show(self) -> PermitDetails:
        """The filled form, its assessment and every transition, and the next step."""
        self.session._authorise("permit_show", permit=_safe_id(self.id))
        permit = self._get()
        transitions = self._governance.permits.transitions(self.id)
        waiting = self._waiting(permit)
        details = PermitDetails(permit, transitions, next_step(permit, self._reassessed(), waiting),
                                tuple(self._governance.holders.releases(self.id)), tuple(waiting))
        self.session._viewed("permit_show", permit=self.id, rows=len(transitions))
        return details

    @_guarded
    def approve(self, as_role: str) -> Permit:
        """Phase 3 (or the reassessment after the analytic review): approve in one role."""
        self.session._authorise("permit_approve", permit=_safe_id(self.id))
        from safepool.governance.assessment import ApprovalRole

        return self._governance.permits.approve(self._actor, self.id, _member(ApprovalRole, as_role, "approval role"))

    @_guarded
    def reject(self, reason: str) -> Permit:
        """Phase 3: reject the request, the reason recorded."""
        self.session._authorise("permit_reject", permit=_safe_id(self.id))
        return self._governance.permits.reject(self._actor, self.id, reason)

    @_guarded
    def advance(self, phase: Phase | str, note: str = "") -> Permit:
        """Move an approved permit to its next phase (steward: preparing_data, analytic_review;
        an analyst of the permit: analysis, reporting)."""
        self.session._authorise("permit_advance", permit=_safe_id(self.id))
        target = phase if isinstance(phase, Phase) else _phase(phase)
        permit = self._get()
        reassessed = self._reassessed()
        if permit.approved and permit.phase < Phase.reporting and (
                target != permit.phase + 1 or awaits_reassessment(permit, reassessed)):
            raise self.session._refuse("permit_advance", f"{where(permit)}, so it cannot move to {target.name}; "
                                       f"{next_step(permit, reassessed, self._waiting(permit))}", permit=self.id)
        if target in STEWARD_PHASES and self._actor.has(Role.steward) and not self.session.steward_scope.linkage:
            raise self.session._refuse("permit_advance", f"user {self.session.user} is not the linkage authority; "
                                       f"only the linkage authority moves a permit to {target.name}", permit=self.id)
        return self._governance.permits.advance(self._actor, self.id, target, note)

    # -- the register holders' release ----------------------------------------------------

    @_guarded
    def release(self, decision: str, *, holder: str | None = None, withhold: list[str] | None = None,
                reason: str = "") -> Any:
        """As the steward of a register holder whose registers the permit names, in its data request
        phase: `release` them, release them with `fewer` variables (`withhold`: REGISTER.VARIABLE
        names), or `refuse`, with a reason (required for fewer and refuse). `holder` is needed only
        by a steward of several holders in the permit. Returns the Release; decided once, audited."""
        self.session._authorise("release_decide", permit=_safe_id(self.id))
        return self._governance.holders.decide(self._actor, self.id, decision, holder=holder,
                                               withhold=list(withhold or []), reason=reason)

    @_guarded
    def linkage(self, holder: str | None = None) -> dict[str, Any]:
        """The permit's linkage report. The linkage authority gets the whole of it ({"whole": report});
        a register holder's steward gets, for `holder` or for each holder it stewards in the permit,
        its own registers' counts and quarantine by reason, with counts across holders only as they
        pass the disclosure checks ({"holders": [view, ...]}, safepool.pool.linkage.holder_view)."""
        self.session._authorise("linkage_show", permit=_safe_id(self.id))
        from safepool.disclosure.policy import workspace_policy
        from safepool.pool.access import linkage_report
        from safepool.pool.linkage import holder_view

        scope = self.session.steward_scope
        in_scope = self._governance.holders.in_scope(self._get())
        chosen = self._governance.holders.resolve_holder(holder) if holder is not None else None
        if holder is not None and chosen not in scope.holders:
            raise self.session._refuse("linkage_show", f"user {self.session.user} is {scope.describe()}, not the "
                                       f"steward of {chosen or _safe_id(' '.join(holder.split())[:80])}",
                                       permit=self.id)
        holders = [chosen] if chosen else [] if scope.linkage else [h for h in in_scope if h in scope.holders]
        if not holders and not scope.linkage:
            raise self.session._refuse("linkage_show", f"permit {self.id} names no register of "
                                       f"{', '.join(sorted(scope.holders))}", permit=self.id)
        report = linkage_report(self.session.workspace.pool_dir, self.id)
        if not holders:
            self.session._viewed("linkage_show", permit=self.id, target="all holders",
                                 rows=len(report.get("registers", {})))
            return {"whole": report, "holders": []}
        rules = workspace_policy(self._governance)
        views = [holder_view(report, h, in_scope.get(h, []), min_frequency=rules.min_frequency, zeros=rules.zeros,
                             rounding_base=rules.rounding_base if rules.round_counts else None) for h in holders]
        self.session._viewed("linkage_show", permit=self.id, target=",".join(holders),
                             rows=sum(len(v["registers"]) for v in views))
        return {"whole": None, "holders": views}

    # -- the pool -------------------------------------------------------------------------

    @_guarded
    def build(self, progress: Callable[[str, str, int], None] | None = None) -> Any:
        """As the linkage authority: read what each holder released into the permit in place,
        pseudonymise, publish the pool (refused while a holder in its scope has not decided)."""
        self.session._authorise("pool_build", permit=_safe_id(self.id))
        from safepool.pool.build import build_for_permit

        self._in_phase("pool_build")
        return build_for_permit(self.session.workspace, self._governance, self._actor, self.id, progress=progress)

    @_guarded
    def give_ledger_keys(self) -> int:
        """As the linkage authority, in any phase: give a pool built before ledger keys existed its
        ledger keys (from the registers' identity codes, without building it again); the number of
        its persons (audited by the library)."""
        self.session._authorise("pool_ledger_keys", permit=_safe_id(self.id))
        from safepool.pool.build import give_ledger_keys

        return give_ledger_keys(self.session.workspace, self._governance, self._actor, self.id)

    @_guarded
    def pool(self) -> tuple[dict[str, int], dict[str, Any]]:
        """The pool's tables with their row counts, and its linkage report (audited by the library)."""
        self.session._authorise("pool_show", permit=_safe_id(self.id))
        from safepool.pool import access

        self._in_phase("pool_show")
        return access.describe_pool(self.session.workspace.pool_dir, self._governance, self._actor, self.id)

    @_guarded
    def variables(self) -> dict[str, dict[str, Any]]:
        """The permit's tables and variables: measurement level, labels, code lists, units, bins
        and years (safepool.dictionary.Variable), by table (audited by the library)."""
        self.session._authorise("pool_variables", permit=_safe_id(self.id))
        from safepool.pool import access

        self._in_phase("pool_variables")
        return access.describe_variables(self.session.workspace.pool_dir, self._governance, self._actor, self.id)

    @_guarded
    def query(self, question: Any, title: str | None = None) -> Any:
        """A non-disclosive aggregate query: SQL text in the query model, or an AggregateRequest
        (or a dict of one). Returns the answer with only the cells that passed the checks."""
        self.session._authorise("query", permit=_safe_id(self.id))
        from safepool.query.engine import run_query
        from safepool.query.request import AggregateRequest

        self._in_phase("query")
        if isinstance(question, dict):
            question = AggregateRequest.model_validate(question)
        return run_query(self.session.workspace.pool_dir, self._governance, self._actor, self.id, question,
                         title=title)

    @_guarded
    def study(self, study: Any, progress: Callable[[str], None] | None = None) -> Any:
        """Run an impact study (a study file's path or a StudyFile) that names this permit."""
        self.session._authorise("study_run", permit=_safe_id(self.id))
        from safepool.study.run import run_study
        from safepool.study.studyfile import StudyFile, load_study

        loaded = study if isinstance(study, StudyFile) else load_study(
            self.session.handed_file(study, "study (the study file)"))
        if loaded.permit != self.id:
            raise Invalid(f"the study file names permit {loaded.permit}, not {self.id}")
        self._in_phase("study_run")
        return run_study(self.session.workspace.pool_dir, self._governance, self._actor, loaded, progress=progress)

    @_guarded
    def insight(self, insight: Any, progress: Callable[[str], None] | None = None) -> Any:
        """Run a customer-information analysis (an insight file's path, or one loaded with
        safepool.insight.spec.load_insight) that names this permit; its outputs and report are
        published under the workspace policy."""
        self.session._authorise("insight_run", permit=_safe_id(self.id))
        from safepool.insight.run import run_insight

        loaded = self._insight_file(insight)
        self._in_phase("insight_run")
        return run_insight(self.session.workspace.pool_dir, self._governance, self._actor, loaded, progress=progress)

    @_guarded
    def handover(self, insight: Any, progress: Callable[[str], None] | None = None) -> Any:
        """As an analyst, where the permit allows re-identification for preventive services: hand
        the steward the pseudonyms a need-prediction file's `handover` selects (into the steward
        zone; the analyst learns only the handover's name)."""
        self.session._authorise("insight_handover", permit=_safe_id(self.id))
        from safepool.insight.handover import hand_over

        loaded = self._insight_file(insight)
        self._in_phase("insight_handover")
        return hand_over(self.session.workspace.pool_dir, self._governance, self._actor, loaded, progress=progress)

    def _insight_file(self, insight: Any) -> Any:
        """An insight file (its path, or loaded with safepool.insight.spec.load_insight) naming this permit."""
        from safepool.insight.spec import load_insight

        loaded = load_insight(self.session.handed_file(insight, "insight (the insight file)")) \
            if isinstance(insight, (str, Path)) else insight
        if loaded.permit != self.id:
            raise Invalid(f"the insight file names permit {loaded.permit}, not {self.id}")
        return loaded

    @property
    def outputs(self) -> Outputs:
        """This permit's recorded outputs."""
        return Outputs(self.session, self.id)

    # -- the steward zone -----------------------------------------------------------------

    @_guarded
    def destroy_key(self, justification: str) -> bool:
        """As a steward: destroy the permit's pseudonymisation key, with a justification (audited).
        Returns whether there was a key; its pseudonyms can never be traced back afterwards."""
        self.session._authorise("keys_destroy", permit=_safe_id(self.id))
        from safepool.identity.keystore import destroy_key

        return destroy_key(self.session.workspace, self._governance, self._actor, self.id, justification)

    @_guarded
    def reidentify(self, pseudonyms: list[str], justification: str) -> Any:
        """As a steward, where the permit allows it: link pseudonyms back to identity codes into a
        private file in the steward zone; returns the counts and the file's path."""
        self.session._authorise("reidentify", permit=_safe_id(self.id))
        from safepool.identity.reidentify import reidentify

        return reidentify(self.session.workspace, self._governance, self._actor, self.id, list(pseudonyms),
                          justification)


# --------------------------------------------------------------------------- outputs


@dataclass(frozen=True)
class OutputView:
    """One output as a checker sees it before approving: its record, the public tables of its
    files (the checked, shown cells) and where its files are."""

    record: Any
    folder: Path
    tables: dict[str, list[list[str]]]  # file name -> rows (the first is the header)


class Outputs:
    """Recorded outputs, of one permit or (permit None) of every permit this person may see."""

    def __init__(self, session: Session, permit: str | None) -> None:
        self.session = session
        self.permit = permit

    def __repr__(self) -> str:
        return f"<safepool outputs of {self.permit or 'every permit'} for {self.session.user}>"

    @property
    def _register(self) -> Any:
        return self.session.governance.outputs

    def _own(self, output_id: str) -> None:
        if self.permit is not None and output_id.rpartition("-")[0] != self.permit:
            raise NotFound(f"output {output_id} is not an output of permit {self.permit}")

    @_guarded
    def list(self, status: str | None = None, permit: str | None = None) -> list[Any]:
        """The outputs this person may see: a checker all, an analyst those of their permits."""
        from safepool.disclosure.register import OutputStatus

        permit = permit or self.permit
        self.session._authorise("output_list", permit=_safe_id(permit) if permit else None)
        wanted = _member(OutputStatus, status, "status") if status else None
        found = self._register.list(self.session.actor, permit=permit, status=wanted)
        self.session._viewed("output_list", permit=permit, rows=len(found),
                             detail={"status": str(wanted)} if wanted else None)
        return found

    @_guarded
    def show(self, output_id: str) -> OutputView:
        """One output: its checks, differencing flags, reviews, history, and its public tables."""
        self._own(output_id)
        self.session._authorise("output_show", target=_safe_id(output_id))
        record = self._register.show(self.session.actor, output_id)
        folder = self._register.folder(record)
        tables = {name: _csv_rows(folder / name) for name in record.files if name.endswith(".csv")}
        self.session._viewed("output_show", permit=record.permit, target=record.id,
                             rows=sum(max(len(rows) - 1, 0) for rows in tables.values()))
        return OutputView(record, folder, tables)

    @_guarded
    def request_release(self, output_ids: list[str], context: str) -> list[Any]:
        """As the author: ask a checker to release outputs that passed their checks."""
        for output_id in output_ids:
            self._own(output_id)
        self.session._authorise("output_request", permit=self.permit)
        self._register.request_release(self.session.actor, list(output_ids), context)
        return [self._register.show(self.session.actor, output_id) for output_id in dict.fromkeys(output_ids)]

    @_guarded
    def review(self, output_id: str, decision: str, comment: str = "") -> Any:
        """As a checker who is not the author: approve, return (with comments) or reject one output."""
        self._own(output_id)
        self.session._authorise("output_review", permit=self.permit, target=_safe_id(output_id))
        return self._register.review(self.session.actor, output_id, decision, comment)

    @_guarded
    def release(self, output_ids: list[str]) -> Path:
        """As a checker: copy approved outputs of one permit into a new release folder; returns it."""
        for output_id in output_ids:
            self._own(output_id)
        self.session._authorise("output_release", permit=self.permit)
        return self._register.release(self.session.actor, list(output_ids))


# --------------------------------------------------------------------------- helpers


def _member(kind: Any, value: Any, what: str) -> Any:
    if isinstance(value, kind):
        return value
    try:
        return kind(value)
    except ValueError:
        raise Invalid(f"unknown {what} {str(value)[:40]!r}; choose from {', '.join(k.value for k in kind)}") from None


def _phase(name: str) -> Phase:
    try:
        return Phase[name]
    except KeyError:
        raise Invalid(f"unknown phase {str(name)[:40]!r}; choose from {', '.join(p.name for p in Phase)}") from None


def _safe_id(text: str | None) -> str | None:
    """An id as it may go into an audit record (the log refuses anything that looks identifying)."""
    from safepool.governance.audit import UnsafeAuditField, _check_plain

    if text is None:
        return None
    try:
        _check_plain("id", text, required=False)
    except (UnsafeAuditField, TypeError, ValueError):
        return "(unsafe id)"
    return text[:200]


def _csv_rows(path: Path) -> list[list[str]]:
    import csv

    try:
        with path.open(newline="", encoding="utf-8") as handle:
            return [row for row in csv.reader(handle)]
    except (OSError, UnicodeDecodeError, csv.Error):
        raise NotFound(f"the file {path.name} of this output is missing or unreadable") from None
