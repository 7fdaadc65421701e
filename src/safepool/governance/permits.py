"""Permits (safe projects): the handbook's eight phases, approvals, and scope enforcement.

A permit is a submitted request form plus its assessment and a record of every transition
(who, when, which phase). Nothing is read without an approved, unexpired permit: the pool is
built only under one, and every analyst access is checked against its registers, variables,
window and people. Each refusal is audited and names what was outside the permit.

A request is checked against the workspace when it is submitted: its registers and variables
against the catalogue, its time frame against the years the registers' time variables cover,
its people against the users (each an active analyst or checker) and its expiry against today.
Every problem is reported at once, one per field with its line when the form came from a file
(`FormProblem`, an `Invalid`), and the refusal is audited. A workspace whose catalogue lists no
register yet has nothing to check registers against: then only people and expiry are checked.

Every change of a permit's phase or status commits together with its audit record (one
`AuditLog.transaction`) and is a compare-and-set on the phase and status it read: when someone
else changed the permit in between, nothing is changed and `Conflict` is raised (and audited).
"""

from __future__ import annotations

import datetime as dt
import functools
from collections.abc import Callable
from dataclasses import dataclass
from enum import IntEnum
from typing import Any

import yaml
from sqlalchemy import Column, Connection, Engine, Integer, String, Table, Text, insert, select, update

from safepool.faults import Conflict, Invalid, NotFound
from safepool.governance.assessment import ApprovalRole, Assessment, assess
from safepool.governance.audit import AuditLog, AuditTransaction
from safepool.governance.catalogue_view import CatalogueView
from safepool.governance.db import metadata
from safepool.governance.document import Transition
from safepool.governance.form import PermitRequest, parse_quarter
from safepool.governance.matrices import Decision, Matrices
from safepool.governance.users import Actor, ManagerFunction, Role, refuse, require_role, standing
from safepool.yaml_files import FileProblem, field_problem, loaded_from


class Phase(IntEnum):
    identify_need = 1
    preliminary_estimate = 2
    assessment_decision = 3
    data_request = 4
    preparing_data = 5
    analytic_review = 6
    analysis = 7
    reporting = 8

    @property
    def label(self) -> str:
        return self.name.replace("_", " ")


permits_table = Table(
    "permits",
    metadata,
    Column("id", String(40), primary_key=True),
    Column("name", String(200), nullable=False),
    Column("requested_by", String(40), nullable=False),
    Column("request_yaml", Text, nullable=False),
    Column("assessment_json", Text, nullable=False),
    Column("phase", Integer, nullable=False),
    Column("status", String(20), nullable=False),  # pending, approved, rejected
    Column("expiry", String(10), nullable=False),
    Column("built_by", String(40), nullable=True),
    Column("created_at", String(40), nullable=False),
    Column("version", Integer, nullable=False, server_default="0"),  # +1 on every change (0004)
)

transitions_table = Table(
    "permit_transitions",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("permit", String(40), nullable=False, index=True),
    Column("phase", Integer, nullable=False),
    Column("actor", String(40), nullable=False),
    Column("role", String(40), nullable=False),
    Column("at", String(40), nullable=False),
    Column("note", Text, nullable=False, default=""),
)

approvals_table = Table(
    "permit_approvals",
    metadata,
    Column("permit", String(40), primary_key=True),
    Column("approval_role", String(40), primary_key=True),
    Column("round", Integer, primary_key=True),  # 0: the decision, 1: reassessment after review
    Column("actor", String(40), nullable=False),
    Column("at", String(40), nullable=False),
)


@dataclass(frozen=True)
class Permit:
    id: str
    request: PermitRequest
    assessment: Assessment
    phase: Phase
    status: str
    requested_by: str
    built_by: str | None
    version: int = 0  # the state this was read at: a change checks it is still the same

    @property
    def approved(self) -> bool:
        return self.status == "approved"


class FormProblem(FileProblem, Invalid):
    """A permit request that does not match the workspace: one problem per field, with its line."""


def _now() -> str:
    return dt.datetime.now(dt.UTC).isoformat(timespec="seconds")


_YAML_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)  # libyaml when present: every query reads a permit


@functools.lru_cache(maxsize=64)
def _parsed_request(text: str) -> PermitRequest:
    """A stored request parsed once per process and text: a query reads its permit four times, and
    the row (phase, status, this text) is still read every time, so a change is seen at once. The
    request is frozen, so one parsed copy can be shared."""
    return PermitRequest.model_validate(yaml.load(text, Loader=_YAML_LOADER))


class PermitOffice:
    def __init__(self, engine: Engine, audit: AuditLog, matrices: Matrices | None = None,
                 catalogue: Callable[[], CatalogueView | None] | None = None) -> None:
        self.engine = engine
        self.audit = audit
        self.matrices = matrices or Matrices()
        self.catalogue = catalogue or (lambda: None)

    # -- reading ---------------------------------------------------------------------------

    def get(self, permit_id: str) -> Permit:
        with self.engine.connect() as con:
            row = con.execute(select(permits_table).where(permits_table.c.id == permit_id)).mappings().first()
        if row is None:
            raise NotFound(f"no permit {permit_id}")
        return Permit(
            id=row["id"],
            request=_parsed_request(row["request_yaml"]),
            assessment=Assessment.model_validate_json(row["assessment_json"]),
            phase=Phase(row["phase"]),
            status=row["status"],
            requested_by=row["requested_by"],
            built_by=row["built_by"],
            version=row["version"],
        )

    def list(self) -> list[Permit]:
        with self.engine.connect() as con:
            ids = [r[0] for r in con.execute(select(permits_table.c.id).order_by(permits_table.c.id))]
        return [self.get(i) for i in ids]

    def transitions(self, permit_id: str) -> list[Transition]:
        with self.engine.connect() as con:
            rows = con.execute(select(transitions_table).where(transitions_table.c.permit == permit_id)
                               .order_by(transitions_table.c.id)).mappings().all()
        return [Transition(phase=Phase(r["phase"]).label, actor=r["actor"], role=r["role"],
                           at=dt.datetime.fromisoformat(r["at"]), note=r["note"]) for r in rows]

    # -- the process ----------------------------------------------------------------------

    def check_form(self, request: PermitRequest, today: dt.date | None = None) -> list[tuple[tuple[Any, ...], str]]:
        """What in a request does not match the workspace: (field location, problem) pairs."""
        today = today or dt.date.today()
        catalogue = self.catalogue()
        problems = _catalogue_problems(request, catalogue) if catalogue is not None else []
        with self.engine.connect() as con:
            found = standing(con, list(request.people))
        for index, name in enumerate(request.people):
            if name not in found:
                problems.append((("people", index), f"no user {name} in this workspace"))
            elif found[name] is None:
                problems.append((("people", index), f"user {name} is not active"))
            elif not (found[name].has(Role.analyst) or found[name].has(Role.checker)):  # type: ignore[union-attr]
                problems.append((("people", index), f"user {name} is neither an analyst nor a checker: a permit's "
                                 "people analyse its data or check its outputs"))
        if request.expiry < today:
            problems.append((("expiry",), f"the expiry {request.expiry.isoformat()} is in the past "
                             f"(today is {today.isoformat()})"))
        return problems

    def request(self, actor: Actor, request: PermitRequest, permit_id: str, today: dt.date | None = None) -> Permit:
        """Phases 1-2: the need and data are identified and the estimate form is submitted."""
        if not (actor.has(Role.analyst) or actor.has(Role.steward) or actor.has(Role.manager)):
            raise refuse(self.audit, actor.name, actor.main_role, "permit_request",
                         f"user {actor.name} may not request permits", permit=permit_id)
        problems = self.check_form(request, today)
        if problems:
            self.audit.append(actor=actor.name, role=actor.main_role, action="permit_request", permit=permit_id,
                              outcome="refused", detail={
                                  "reason": "the form does not match the workspace",
                                  "fields": [".".join(str(part) for part in location) for location, _ in problems]})
            raise FormProblem(loaded_from(request) or "permit request",
                              [field_problem(request, location, message) for location, message in problems])
        assessment = assess(request, self.matrices, decided_on=dt.date.today())
        with self.audit.transaction() as tx:
            con = tx.conn
            if con.execute(select(permits_table.c.id).where(permits_table.c.id == permit_id)).first():
                raise Conflict(f"permit {permit_id} exists already; choose another id")
            con.execute(insert(permits_table).values(
                id=permit_id, name=request.analysis.name, requested_by=actor.name,
                request_yaml=yaml.safe_dump(request.model_dump(mode="json"), sort_keys=False, allow_unicode=True),
                assessment_json=assessment.model_dump_json(), phase=Phase.assessment_decision, status="pending",
                expiry=request.expiry.isoformat(), created_at=_now()))
            for phase, note in ((Phase.identify_need, "need and data identified"),
                                (Phase.preliminary_estimate,
                                 f"estimate: benefit {assessment.benefit_class}, risk {assessment.risk_class}, "
                                 f"decision {assessment.decision_label}")):
                self._record(con, permit_id, phase, actor, note)
            self._audit_transition(tx, actor, permit_id, Phase.preliminary_estimate)
        return self.get(permit_id)

    def approve(self, actor: Actor, permit_id: str, as_role: ApprovalRole) -> Permit:
        """Phase 3, or the reassessment in phase 6: one approval per required role."""
        permit = self.get(permit_id)
        reassessing = permit.phase == Phase.analytic_review and permit.assessment.reassessment_after_review
        if permit.status == "rejected" or not (permit.phase == Phase.assessment_decision or reassessing):
            raise self._refuse(actor, permit_id, "permit_approve",
                               f"permit {permit_id} is in phase {permit.phase.label}, not awaiting a decision")
        if actor.name == permit.requested_by:
            raise self._refuse(actor, permit_id, "permit_approve", "nobody approves a permit they requested")
        if not _may_act_as(actor, as_role):
            raise self._refuse(actor, permit_id, "permit_approve", f"user {actor.name} cannot approve as {as_role}")
        round_ = 1 if reassessing else 0
        required = permit.assessment.approvals if not reassessing else [ApprovalRole.approver]
        if as_role not in required:
            raise self._refuse(actor, permit_id, "permit_approve",
                               f"this permit needs approval from {', '.join(required)}, not {as_role}")
        if permit.assessment.decision == Decision.do_not_open:
            raise self._refuse(actor, permit_id, "permit_approve",
                               "the assessment's decision is 'do not open'; the permit can only be rejected")
        with self.engine.connect() as con:
            given = _approvals(con, permit_id, round_)
        if as_role in given:
            raise self._refuse(actor, permit_id, "permit_approve", f"{as_role} has approved already")
        if actor.name in given.values():
            raise self._refuse(actor, permit_id, "permit_approve",
                               f"user {actor.name} has approved already in another role")
        with self.audit.transaction() as tx:
            con = tx.conn
            # Approvals in other roles may have come in since: they count (approvals of different
            # roles do not conflict). The same role or the same person approving meanwhile, or the
            # permit's phase or status changing (a rejection, the last approval), is a conflict.
            given = _approvals(con, permit_id, round_)
            complete = set(required) <= set(given) | {as_role}
            phase = Phase.data_request if complete and not reassessing else permit.phase
            if as_role in given or actor.name in given.values() or not self._still(
                    tx, permit, phase=phase, status="approved" if phase != permit.phase else None, any_version=True):
                raise tx.conflict(actor.name, actor.main_role, "permit_approve", f"permit {permit_id}",
                                  permit=permit_id)
            con.execute(insert(approvals_table).values(permit=permit_id, approval_role=as_role, round=round_,
                                                       actor=actor.name, at=_now()))
            note = f"approved as {as_role}" + ("; reassessed after the analytic review" if reassessing else "")
            self._record(con, permit_id, Phase.assessment_decision if not reassessing else Phase.analytic_review,
                         actor, note)
            if phase != permit.phase:
                self._record(con, permit_id, Phase.data_request, actor, "all approvals given: permit approved")
            self._audit_transition(tx, actor, permit_id, phase, detail={"approved_as": str(as_role)})
        return self.get(permit_id)

    def reject(self, actor: Actor, permit_id: str, reason: str) -> Permit:
        permit = self.get(permit_id)
        if permit.phase != Phase.assessment_decision or permit.status != "pending":
            raise self._refuse(actor, permit_id, "permit_reject", f"permit {permit_id} is not awaiting a decision")
        if not any(_may_act_as(actor, role) for role in permit.assessment.approvals):
            raise self._refuse(actor, permit_id, "permit_reject", f"user {actor.name} may not decide this permit")
        if actor.name == permit.requested_by:
            raise self._refuse(actor, permit_id, "permit_reject", "nobody decides a permit they requested")
        with self.audit.transaction() as tx:
            if not self._still(tx, permit, status="rejected"):
                raise tx.conflict(actor.name, actor.main_role, "permit_reject", f"permit {permit_id}",
                                  permit=permit_id)
            self._record(tx.conn, permit_id, Phase.assessment_decision, actor, f"rejected: {reason}")
            self._audit_transition(tx, actor, permit_id, Phase.assessment_decision, detail={"rejected": True})
        return self.get(permit_id)

    def advance(self, actor: Actor, permit_id: str, to: Phase, note: str = "") -> Permit:
        """Move an approved permit one phase on; the role each step needs is fixed."""
        permit = self.get(permit_id)
        if not permit.approved:
            raise self._refuse(actor, permit_id, "permit_transition", f"permit {permit_id} is not approved")
        if to != permit.phase + 1:
            raise self._refuse(actor, permit_id, "permit_transition",
                               f"permit {permit_id} is in phase {permit.phase.label}; "
                               f"the next phase is {Phase(min(permit.phase + 1, 8)).label}, not {to.label}")
        needed = Role.steward if to in (Phase.preparing_data, Phase.analytic_review) else Role.analyst
        require_role(self.audit, actor, needed, "permit_transition", permit=permit_id)
        if needed == Role.analyst:
            self.check_analyst(actor, permit, "permit_transition")
        if to == Phase.analysis and permit.assessment.reassessment_after_review and not self._reassessed(permit_id):
            raise self._refuse(actor, permit_id, "permit_transition",
                               f"permit {permit_id} is {permit.assessment.risk_class} risk: it must be reassessed "
                               "by an approver after the analytic review before analysis goes on")
        with self.audit.transaction() as tx:
            if not self._still(tx, permit, phase=to):
                raise tx.conflict(actor.name, actor.main_role, "permit_transition", f"permit {permit_id}",
                                  permit=permit_id)
            self._record(tx.conn, permit_id, to, actor, note)
            self._audit_transition(tx, actor, permit_id, to)
        return self.get(permit_id)

    def record_build(self, actor: Actor, permit_id: str) -> None:
        """The steward who built the pool is remembered: they may not analyse it."""
        with self.engine.begin() as con:
            con.execute(update(permits_table).where(permits_table.c.id == permit_id)
                        .values(built_by=actor.name, version=permits_table.c.version + 1))

    # -- scope enforcement --------------------------------------------------------------

    def check_in_force(self, actor: Actor, permit: Permit, action: str, today: dt.date | None = None) -> None:
        today = today or dt.date.today()
        if not permit.approved:
            raise self._refuse(actor, permit.id, action, f"permit {permit.id} is not approved")
        if not permit.request.in_force_on(today):
            raise self._refuse(actor, permit.id, action,
                               f"permit {permit.id} expired on {permit.request.expiry.isoformat()}")

    def authorise_build(self, actor: Actor, permit_id: str, today: dt.date | None = None) -> Permit:
        permit = self.get(permit_id)
        require_role(self.audit, actor, Role.steward, "pool_build", permit=permit_id)
        self.check_in_force(actor, permit, "pool_build", today)
        if permit.phase not in (Phase.data_request, Phase.preparing_data):
            raise self._refuse(actor, permit_id, "pool_build",
                               f"permit {permit_id} is in phase {permit.phase.label}; the pool is built in "
                               "the data request or preparing the data phase")
        if actor.name in permit.request.people:
            raise self._refuse(actor, permit_id, "pool_build",
                               f"user {actor.name} is among the permit's analysts and may not prepare its data")
        return permit

    def check_analyst(self, actor: Actor, permit: Permit, action: str) -> None:
        require_role(self.audit, actor, Role.analyst, action, permit=permit.id)
        if actor.name not in permit.request.people:
            raise self._refuse(actor, permit.id, action, f"user {actor.name} is not named in permit {permit.id}")
        if actor.name == permit.built_by:
            raise self._refuse(actor, permit.id, action,
                               f"user {actor.name} prepared this permit's data and may not analyse it")

    def authorise_access(self, actor: Actor, permit_id: str, wanted: dict[str, list[str]] | None = None,
                         window: tuple[str, str] | None = None, today: dt.date | None = None) -> Permit:
        """Check an analyst's read of `wanted` (register -> variables) in `window` against the permit."""
        permit = self.get(permit_id)
        self.check_analyst(actor, permit, "pool_access")
        self.check_in_force(actor, permit, "pool_access", today)
        if permit.phase < Phase.analytic_review:
            raise self._refuse(actor, permit_id, "pool_access",
                               f"permit {permit_id} is in phase {permit.phase.label}; its data is not ready")
        outside = outside_permit(permit.request, wanted or {}, window)
        if outside:
            raise self._refuse(actor, permit_id, "pool_access", "outside the permit: " + "; ".join(outside))
        return permit

    # -- helpers --------------------------------------------------------------------------

    def _reassessed(self, permit_id: str) -> bool:
        with self.engine.connect() as con:
            return con.execute(select(approvals_table.c.actor).where(
                approvals_table.c.permit == permit_id, approvals_table.c.round == 1)).first() is not None

    def _record(self, con: Connection, permit_id: str, phase: Phase, actor: Actor, note: str) -> None:
        con.execute(insert(transitions_table).values(permit=permit_id, phase=int(phase), actor=actor.name,
                                                     role=actor.main_role, at=_now(), note=note))

    def _still(self, tx: AuditTransaction, permit: Permit, *, phase: Phase | None = None,
               status: str | None = None, any_version: bool = False) -> bool:
        """Compare-and-set: move the permit to `phase` and `status` (each unchanged when None) if it
        is still as it was read into `permit` (its version; with `any_version` its phase and status
        only); False when it changed since. Every change counts up its version."""
        expected = {"phase": int(permit.phase), "status": permit.status}
        return tx.compare_and_set(permits_table, {"id": permit.id},
                                  expected if any_version else {**expected, "version": permit.version},
                                  {"phase": int(phase if phase is not None else permit.phase),
                                   "status": status if status is not None else permit.status,
                                   "version": permit.version + 1})

    def _audit_transition(self, tx: AuditTransaction, actor: Actor, permit_id: str, phase: Phase,
                          detail: dict[str, Any] | None = None) -> None:
        tx.append(actor=actor.name, role=actor.main_role, action="permit_transition", permit=permit_id,
                  target=phase.name, detail=detail)

    def _refuse(self, actor: Actor, permit_id: str, action: str, reason: str) -> Exception:
        return refuse(self.audit, actor.name, actor.main_role, action, reason, permit=permit_id)


def _approvals(con: Connection, permit_id: str, round_: int) -> dict[str, str]:
    """approval role -> who gave it, in one round of a permit's approvals."""
    return {r["approval_role"]: r["actor"] for r in con.execute(
        select(approvals_table).where(approvals_table.c.permit == permit_id,
                                      approvals_table.c.round == round_)).mappings()}


def _catalogue_problems(request: PermitRequest, catalogue: CatalogueView) -> list[tuple[tuple[Any, ...], str]]:
    """Registers and variables the catalogue does not hold, and a time frame outside their data."""
    problems: list[tuple[tuple[Any, ...], str]] = []
    frame = request.data.time_frame
    first, last = parse_quarter(frame.start)[0], parse_quarter(frame.end)[0]
    spans = []
    for register, wanted in request.data.sources.items():
        view = catalogue.registers.get(register)
        if view is None:
            problems.append((("data", "sources", register), f"unknown register {register}; the catalogue holds "
                             f"{', '.join(sorted(catalogue.registers))}"))
            continue
        if wanted != "*":
            problems.extend((("data", "sources", register, index), f"register {register} has no variable {name}")
                            for index, name in enumerate(wanted) if name not in view.variables)
        if view.years is not None:
            spans.append(view.years)
            if last < view.years[0] or first > view.years[1]:
                problems.append((("data", "sources", register), f"register {register} holds data for "
                                 f"{view.years[0]}-{view.years[1]}, none of it in the time frame "
                                 f"{frame.start}-{frame.end}"))
    if spans:
        earliest, latest = min(a for a, _ in spans), max(b for _, b in spans)
        if first < earliest:
            problems.append((("data", "time_frame", "start"), f"the time frame starts in {frame.start}, before the "
                             f"data of the registers asked for (from {earliest})"))
        if last > latest:
            problems.append((("data", "time_frame", "end"), f"the time frame ends in {frame.end}, after the data "
                             f"of the registers asked for (up to {latest})"))
    return problems


def _may_act_as(actor: Actor, role: ApprovalRole) -> bool:
    if role == ApprovalRole.approver:
        return actor.has(Role.approver)
    return actor.has(Role.manager) and ManagerFunction(role.value) in actor.functions


def outside_permit(request: PermitRequest, wanted: dict[str, list[str]], window: tuple[str, str] | None) -> list[str]:
    """Everything in `wanted` and `window` that the permit does not cover, named."""
    problems = []
    for register, variables in wanted.items():
        allowed = request.data.sources.get(register)
        if allowed is None:
            problems.append(f"register {register}")
            continue
        if allowed != "*":
            problems.extend(f"variable {register}.{v}" for v in variables if v not in allowed)
    if window is not None:
        frame = request.data.time_frame
        if window[0] < frame.start or window[1] > frame.end:
            problems.append(f"period {window[0]}-{window[1]} (the permit covers {frame.start}-{frame.end})")
    return problems
