"""The output register (safe outputs): every table, figure, model result and report of a permit,
its checks, its review and its release.

An analysis publishes an output with one call, `publish` (or `publish_all` for the outputs of
one release, e.g. a study): the register checks it under the workspace's policy
(safepool.disclosure.policy; no caller passes thresholds), mitigates it (suppression, or rounding
when the release rounds its counts), has its kind write its files from the checked object and
records it. `record` does the same for an output its caller already mitigated (the query engine
suppresses across columns itself); it never takes a caller's verdict or a caller's bytes. The
register keeps the findings (rule, verdict, cells affected, never the values of failed cells),
the files under <workspace>/outputs/<permit>/<output id>/, the output's shown cells at the
released precision (for re-checks and differencing; nothing of a failed output, never
contributors' values), where the output came from, who made it and each change of status.

Re-checks. Every output is checked again under the workspace's current policy when its release
is asked for, when a checker approves it and when it is released, from the shown cells the
register kept. A rule that reads what is not kept (the contributors behind dominance and the p%
rule) cannot be run again: if a setting it reads changed since the output was recorded, or the
policy now allows fewer decimals than its files hold, the output is refused with a message to
record it again; so is an output recorded before the register kept its cells, once any setting
changed. A release holds outputs of one rounding policy: counts rounded to one base, or exact.

Verdicts are pass, fail and review: a "review" output (a document's text, a quantile without
its window's contributors, a model without its persons per level) passed every automatic rule
but needs a person; it can be asked for, and a checker must comment when approving it. The author asks for release with the
context a checker needs; an output that failed its checks cannot be asked for. A checker who is
not the author approves, returns with comments or rejects, output by output; a permit may need two
different checkers to approve. Each review is shown differencing flags: cells that, set beside a
table already released (or approved) under any permit of the workspace, reveal a small group. A checker then
releases approved outputs into the release folder, the only way out. Every step and every refusal
is in the audit log.

Transactions. Every change (a record, a revision, a release request, a review, a release) commits
together with its audit record in one `AuditLog.transaction`; output ids (`<permit>-0001`) and
release ids (`<permit>-R001`) are taken inside that transaction, so they are unique and have no
gaps. A change is made only if the output is still at the version it was read at: when another
action changed it in between (another checker's review, a second release), nothing is changed and
`safepool.faults.Conflict` is raised and audited. A release's folder is written inside its
transaction and removed if the transaction does not commit; its MANIFEST.json carries the audit
log's head (`audit_anchor`).

The database's verdict column keeps the automatic outcome (pass or fail; its CHECK constraint is
unchanged), and the report's own verdict in checks_json says "review" where a person must look.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import shutil
from dataclasses import dataclass
from pathlib import Path
from collections.abc import Callable, Collection, Mapping
from typing import Any, Literal

from sqlalchemy import Connection, Engine, func, insert, select, update

from safepool.disclosure.differencing import DifferencingFlag, FrequencyCells, compare
from safepool.disclosure.findings import CheckReport
from safepool.disclosure.kinds import Mitigated, NotRecheckable, kind_named, kind_of
from safepool.disclosure.output_files import (
    StoredFile,
    check_names,
    check_output_name,
    output_folder,
    read_verified,
    replace,
    store,
)
from safepool.disclosure.output_tables import (
    DECISIONS,
    SOURCES,
    OutputStatus,
    output_events_table,
    output_reviews_table,
    outputs_table,
    releases_table,
)
from safepool.disclosure.outputs import StatOutput
from safepool.disclosure.policy import policy_of
from safepool.disclosure.release import discard_unrecorded, release_folder, write_release
from safepool.disclosure.rules import OUTPUT_SETTINGS, DisclosureRules
from safepool.errors import SafepoolError
from safepool.faults import Conflict, Invalid, NotFound
from safepool.governance.audit import AuditLog, AuditTransaction
from safepool.governance.form import looks_like_identity_code
from safepool.governance.permits import PermitOffice
from safepool.governance.users import Actor, Refused, Role, refuse, require_role

MIN_CONTEXT = 20  # characters: what the output is, why it is needed and how it was made

Decision = Literal["approve", "return", "reject"]


class OutputError(Invalid):
    """An output register call with something wrong in it; names the output and the field."""


class MissingOutput(OutputError, NotFound):
    """No output has the id asked for."""


@dataclass(frozen=True)
class Review:
    reviewer: str
    decision: str
    comment: str
    at: dt.datetime
    round: int  # the release request it answered (1 for the first)
    differencing: list[DifferencingFlag]


@dataclass(frozen=True)
class StatusChange:
    status: OutputStatus
    actor: str
    at: dt.datetime
    note: str


@dataclass(frozen=True)
class OutputRecord:
    id: str
    permit: str
    title: str
    kind: str
    source: str
    author: str
    created: dt.datetime
    status: OutputStatus
    verdict: Literal["pass", "review", "fail"]
    checks: dict[str, Any]
    files: list[str]
    mitigation: str | None
    context: str | None
    reviews: list[Review]
    history: list[StatusChange]
    differencing: list[DifferencingFlag]  # as last computed (at the request or the latest review)
    request_round: int
    release_id: str | None
    rules: DisclosureRules  # the workspace's policy when it was checked
    counts_rounded_to: int | None = None  # the base every shown count is rounded to, if it is
    version: int = 0  # the state this was read at: a change checks it is still the same

    def current_reviews(self) -> list[Review]:
        """The reviews of the latest release request."""
        return [r for r in self.reviews if r.round == self.request_round]


def _now() -> str:
    return dt.datetime.now(dt.UTC).isoformat(timespec="seconds")


def mitigated_release(outputs: Mapping[str, StatOutput], policy: DisclosureRules, *, margins: bool, rounding: bool,
                      hide: Mapping[str, Collection[tuple]] | None = None,
                      derived: Mapping[str, Callable[[Mapping[str, Mitigated]], StatOutput | None]] | None = None
                      ) -> dict[str, Mitigated]:
    """The outputs of one release checked and mitigated by their kinds under `policy`, nothing
    recorded (`OutputRegister.publish_all` records them): `hide` per output the labels of cells
    hidden for a reason of the caller's, `derived` the outputs made from the others as mitigated
    (each from those before it; one made as None is left out)."""
    hidden = hide or {}

    def mitigate(name: str, output: StatOutput) -> Mitigated:
        return kind_of(output).mitigate(output, policy, margins=margins, rounding=rounding,
                                        **({"hide": hidden[name]} if name in hidden else {}))

    mitigated = {name: mitigate(name, output) for name, output in outputs.items()}
    for name, derive in (derived or {}).items():
        output = derive(mitigated)
        if output is not None:
            mitigated[name] = mitigate(name, output)
    return mitigated


class OutputRegister:
    """Recorded outputs of every permit in one workspace."""

    def __init__(self, engine: Engine, audit: AuditLog, permits: PermitOffice, workspace_root: Path) -> None:
        self.engine = engine
        self.audit = audit
        self.permits = permits
        self.root = workspace_root

    # -- publishing and recording ---------------------------------------------------------------

    def policy(self) -> DisclosureRules:
        """The workspace's disclosure policy, as audited (safepool.disclosure.policy)."""
        return policy_of(self.root, self.audit)

    def publish(self, actor: Actor, permit: str, output: StatOutput, source: str, name: str, *,
                margins: bool = True, rounding: bool = False) -> tuple[Mitigated, OutputRecord]:
        """The one way to publish an output: check it under the workspace's policy, mitigate what
        fails (suppression; with `rounding`, or when the policy rounds counts, its counts rounded),
        have its kind write its files and record it. `name` names its files ("<name>.csv").

        `margins`: one- and two-way frequency and magnitude tables are shown with their totals,
        and secondary suppression protects every suppressed cell against them."""
        return self.publish_all(actor, permit, {name: output}, source, margins=margins,
                                round_if_failing=[name] if rounding else [], rounding=rounding)[name]

    def publish_all(self, actor: Actor, permit: str, outputs: Mapping[str, StatOutput], source: str, *,
                    margins: bool = False, round_if_failing: Collection[str] = (), rounding: bool = False,
                    before_recording: Callable[[Mapping[str, Mitigated]], None] | None = None,
                    hide: Mapping[str, Collection[tuple]] | None = None,
                    derived: Mapping[str, Callable[[Mapping[str, Mitigated]], StatOutput | None]] | None = None
                    ) -> dict[str, tuple[Mitigated, OutputRecord]]:
        """Publish the outputs of one release (e.g. a study's tables) under one rounding policy.

        An output named in `round_if_failing` (a frequency table whose rows are nested steps, which
        suppression cannot protect) is rounded rather than suppressed when it fails; then, as with
        `rounding` or a policy that rounds counts, every count of every output in the release is
        rounded the same way, so that no count rounded in one table is shown exact in another.
        Nothing is recorded unless every output can be mitigated, and `before_recording` (given the
        outputs as they would be recorded: a study checks the persons of the rows they show in the
        differencing ledger) returns without raising. `hide` names, per output, the group labels of
        cells its caller hides for a reason of its own (a study's rows whose baselines would tell a few
        persons' values together): suppressed as failing cells are. `derived` names outputs made
        from the others as their checks leave them (differences between the rates a table shows: a
        difference from a rate the checks hid would give it away beside the other rate): each is
        made from the outputs mitigated before it, then checked and mitigated itself; one made as
        None has nothing to show and is left out."""
        self.permits.authorise_access(actor, permit)
        self._check_source(permit, source)
        derived = derived or {}
        for name in [*outputs, *derived]:
            check_output_name(name)
        policy = self.policy()
        failing = any(kind_of(outputs[name]).check(outputs[name], policy).verdict == "fail"
                      for name in round_if_failing if name in outputs)
        rounds = rounding or policy.round_counts or failing
        mitigated = mitigated_release(outputs, policy, margins=margins, rounding=rounds, hide=hide, derived=derived)
        if before_recording is not None:
            before_recording(mitigated)
        return {name: (m, self._record(actor, permit, m.output, source, name, m.note or None, policy, m.report))
                for name, m in mitigated.items()}

    def record(self, actor: Actor, permit: str, output: StatOutput, source: str, name: str,
               mitigation_note: str | None = None) -> OutputRecord:
        """Check an output its caller already mitigated under the workspace's policy and keep it, its
        files written by its kind, as an output of `permit`; a failing output is kept as failed."""
        self.permits.authorise_access(actor, permit)
        self._check_source(permit, source)
        check_output_name(name)
        return self._record(actor, permit, output, source, name, mitigation_note, self.policy())

    def revise(self, actor: Actor, output_id: str, output: StatOutput, name: str | None = None,
               mitigation_note: str | None = None) -> OutputRecord:
        """The author replaces a returned (or not yet requested) output; it is checked afresh under
        the workspace's policy and its files are written again (named `name`, or as before)."""
        record = self._load(output_id)
        self.permits.authorise_access(actor, record.permit)
        if record.author != actor.name:
            raise self._refuse(actor, "output_revise", record, f"only its author {record.author} revises {output_id}")
        if record.status not in (OutputStatus.checked, OutputStatus.failed, OutputStatus.returned):
            raise self._refuse(actor, "output_revise", record, f"output {output_id} is {record.status}; only a "
                               "checked, failed or returned output can be revised")
        name = name or _name_of(record)
        check_output_name(name)
        report, values, files = _checked(output_id, output, name, self.policy(), mitigation_note)
        with self.audit.transaction() as tx:
            if not self._still(tx, record, {**values, "files_json": _files_json(_described(files))}):
                raise self._conflict(tx, actor, "output_revise", record)
            stored = replace(output_folder(self.root, record.permit, output_id), files)
            self._event(tx.conn, output_id, values["status"], actor, f"revised; checks: {report.verdict}")
            self._audit(tx, actor, "output_revise", record.permit, output_id,
                        detail={"kind": report.kind, "verdict": report.verdict, "files": len(stored)})
        return self._load(output_id)

    def _record(self, actor: Actor, permit: str, output: StatOutput, source: str, name: str,
                mitigation_note: str | None, policy: DisclosureRules, report: CheckReport | None = None
                ) -> OutputRecord:
        report, values, files = _checked(f"{permit} (new)", output, name, policy, mitigation_note, report)
        with self.audit.transaction() as tx:
            # The id is taken inside the transaction, under the log's write lock: unique and dense.
            output_id = _next_id(tx.conn, permit)
            folder = output_folder(self.root, permit, output_id)
            shutil.rmtree(folder, ignore_errors=True)  # left by a process killed before its commit
            try:
                stored = store(folder, files)
                tx.conn.execute(insert(outputs_table).values(
                    id=output_id, permit=permit, source=source, author=actor.name, created_at=_now(), context=None,
                    request_round=0, release_id=None, files_json=_files_json(stored), **values))
                self._event(tx.conn, output_id, values["status"], actor,
                            f"recorded from a {source}; checks: {report.verdict}")
                self._audit(tx, actor, "output_record", permit, output_id, detail={
                    "kind": report.kind, "source": source, "verdict": report.verdict, "files": len(stored),
                    "failed_rules": sorted({f.rule for f in report.findings if f.verdict == "fail"})})
            except BaseException:
                shutil.rmtree(folder, ignore_errors=True)
                raise
        return self._load(output_id)

    def _check_source(self, permit: str, source: str) -> None:
        if source not in SOURCES:
            raise OutputError(f"output of permit {permit}: source {source!r} must be one of {', '.join(SOURCES)}")

    # -- reading ---------------------------------------------------------------------------

    def list(self, actor: Actor, permit: str | None = None, status: OutputStatus | None = None) -> list[OutputRecord]:
        """Outputs a checker may review, or those of the permits an analyst works under."""
        query = select(outputs_table.c.id, outputs_table.c.permit).order_by(outputs_table.c.id)
        if permit is not None:
            self._check_reader(actor, permit, "output_list")
            query = query.where(outputs_table.c.permit == permit)
        elif not actor.has(Role.checker):
            require_role(self.audit, actor, Role.analyst, "output_list")
        if status is not None:
            query = query.where(outputs_table.c.status == OutputStatus(status))
        with self.engine.connect() as con:
            rows = con.execute(query).all()
        readable = {p for p in {row.permit for row in rows} if actor.has(Role.checker) or self._works_on(actor, p)}
        return [self._load(row.id) for row in rows if row.permit in readable]

    def show(self, actor: Actor, output_id: str) -> OutputRecord:
        record = self._load(output_id)
        self._check_reader(actor, record.permit, "output_show")
        return record

    def folder(self, record: OutputRecord) -> Path:
        """Where the output's files are kept inside the environment."""
        return output_folder(self.root, record.permit, record.id)

    # -- release request and review ---------------------------------------------------------

    def request_release(self, actor: Actor, output_ids: list[str], context: str) -> None:
        """The author asks for release of checked (or returned) outputs, saying what a checker needs."""
        require_role(self.audit, actor, Role.analyst, "output_request")
        if not output_ids:
            raise OutputError("a release request names at least one output")
        records = [self._load(output_id) for output_id in dict.fromkeys(output_ids)]
        for record in records:
            self._check_requestable(actor, record, context)
        policy = self.policy()
        for record in records:
            self._recheck(actor, "output_request", record, policy)
        flags = {record.id: self._differencing(record, policy) for record in records}
        with self.audit.transaction() as tx:  # all of them, or none
            for record in records:
                if not self._still(tx, record, {
                        "status": OutputStatus.release_requested, "context": context.strip(),
                        "request_round": record.request_round + 1,
                        "differencing_json": json.dumps([f.to_record() for f in flags[record.id]])}):
                    raise self._conflict(tx, actor, "output_request", record)
                self._event(tx.conn, record.id, OutputStatus.release_requested, actor,
                            f"release requested (round {record.request_round + 1})")
                self._audit(tx, actor, "output_request", record.permit, record.id,
                            detail={"round": record.request_round + 1, "differencing_flags": len(flags[record.id])})

    def review(self, actor: Actor, output_id: str, decision: Decision, comment: str) -> OutputRecord:
        """A checker's decision on one requested output; never the author's own."""
        record = self._load(output_id)
        require_role(self.audit, actor, Role.checker, "output_review", permit=record.permit)
        if decision not in DECISIONS:
            raise OutputError(f"output {output_id}: decision {decision!r} must be one of {', '.join(DECISIONS)}")
        if actor.name == record.author:
            raise self._refuse(actor, "output_review", record, f"user {actor.name} is the author of {output_id} "
                               "and may not review it")
        if record.status != OutputStatus.release_requested:
            raise self._refuse(actor, "output_review", record,
                               f"output {output_id} is {record.status}, not awaiting review")
        if any(r.reviewer == actor.name for r in record.current_reviews()):
            raise self._refuse(actor, "output_review", record, f"user {actor.name} has reviewed {output_id} "
                               "already; another checker must give the next review")
        policy = self.policy()
        again = self._recheck(actor, "output_review", record, policy) if decision == "approve" else None
        flags = self._differencing(record, policy)
        comment = (comment or "").strip()
        review_verdict = record.verdict == "review" or (again is not None and again.verdict == "review")
        if not comment and (decision != "approve" or flags or review_verdict):
            reason = ("differencing flags" if flags else "an output whose checks ask for a person's review (verdict "
                      "review)") if decision == "approve" else f"a decision to {decision}"
            raise self._refuse(actor, "output_review", record, f"output {output_id}: {reason} needs a comment "
                               "for the author")
        _plain_text(output_id, "comment", comment)
        approvals = {r.reviewer for r in record.current_reviews() if r.decision == "approve"}
        required = self.permits.get(record.permit).request.output_checkers
        if decision == "approve":
            approvals.add(actor.name)
            status = OutputStatus.approved if len(approvals) >= required else OutputStatus.release_requested
        else:
            status = OutputStatus.returned if decision == "return" else OutputStatus.rejected
        flags_json = json.dumps([f.to_record() for f in flags])
        with self.audit.transaction() as tx:
            # Compare-and-set on the output as the decision was made from it: another checker's
            # review in between (even one that left its status as it was) is a conflict.
            if not self._still(tx, record, {"status": status, "differencing_json": flags_json}):
                raise self._conflict(tx, actor, "output_review", record)
            tx.conn.execute(insert(output_reviews_table).values(
                output=output_id, round=record.request_round, reviewer=actor.name, decision=decision,
                comment=comment, at=_now(), differencing_json=flags_json))
            self._event(tx.conn, output_id, status, actor,
                        f"{decision} by checker ({len(approvals)} of {required} approvals)")
            self._audit(tx, actor, "output_review", record.permit, output_id, detail={
                "decision": decision, "round": record.request_round, "approvals": len(approvals),
                "required": required, "differencing_flags": len(flags), "status": str(status),
                "recheck": again.verdict if again is not None else None})
        return self._load(output_id)

    # -- release -----------------------------------------------------------------------------

    def release(self, actor: Actor, output_ids: list[str]) -> Path:
        """Copy approved outputs of one permit into a new release folder; return the folder."""
        require_role(self.audit, actor, Role.checker, "output_release")
        if not output_ids:
            raise OutputError("a release names at least one output")
        records = [self._load(output_id) for output_id in dict.fromkeys(output_ids)]
        permits = sorted({r.permit for r in records})
        if len(permits) > 1:
            raise self._refuse(actor, "output_release", records[0],
                               f"a release holds the outputs of one permit, not of {', '.join(permits)}")
        for record in records:
            if record.status != OutputStatus.approved:
                raise self._refuse(actor, "output_release", record,
                                   f"output {record.id} is {record.status}; only approved outputs are released")
            if record.author == actor.name:
                raise self._refuse(actor, "output_release", record,
                                   f"user {actor.name} is the author of {record.id} and may not release it")
        policy = self.policy()
        for record in records:
            self._recheck(actor, "output_release", record, policy)
        self._check_one_rounding(actor, records)
        permit = permits[0]
        try:
            contents = {r.id: read_verified(self.folder(r), r.id, _stored_files(self._row(r.id))) for r in records}
        except SafepoolError as exc:
            raise self._refuse(actor, "output_release", records[0], str(exc)) from None
        with self.audit.transaction() as tx:
            con = tx.conn
            release_id = _next_release_id(con, permit)  # inside the transaction: unique and dense
            for record in records:
                if not self._still(tx, record, {"status": OutputStatus.released}):
                    raise self._conflict(tx, actor, "output_release", record)
            released_at = _now()
            folder = release_folder(self.root, permit, release_id)
            discard_unrecorded(folder)  # left by a process killed before its commit: never released
            seq, head = tx.head()
            manifest = {"release": release_id, "permit": permit, "released_by": actor.name,
                        "released_at": released_at, "audit_anchor": {"seq": seq, "hash": head},
                        "outputs": [_manifest_entry(r) for r in records]}
            try:
                digest = write_release(folder, manifest, contents)
                con.execute(insert(releases_table).values(
                    id=release_id, permit=permit, released_by=actor.name, at=released_at,
                    folder=str(folder.relative_to(self.root)), manifest_sha256=digest))
                for record in records:
                    con.execute(update(outputs_table).where(outputs_table.c.id == record.id)
                                .values(release_id=release_id))
                    self._event(con, record.id, OutputStatus.released, actor, f"released in {release_id}")
                tx.append(actor=actor.name, role=actor.main_role, action="output_release", permit=permit,
                          target=release_id, rows=sum(len(files) for files in contents.values()),
                          result_hash=digest, detail={"outputs": [r.id for r in records],
                                                      "audit_anchor_seq": seq})
                tx.release = release_id  # its record is anchored outside the database once committed
            except BaseException:
                discard_unrecorded(folder)
                raise
        return folder

    # -- helpers ---------------------------------------------------------------------------

    def _check_requestable(self, actor: Actor, record: OutputRecord, context: str) -> None:
        permit = self.permits.get(record.permit)
        self.permits.check_analyst(actor, permit, "output_request")
        self.permits.check_in_force(actor, permit, "output_request")
        if record.author != actor.name:
            raise self._refuse(actor, "output_request", record,
                               f"only its author {record.author} may ask for the release of {record.id}")
        if record.status == OutputStatus.failed:
            raise self._refuse(actor, "output_request", record, f"output {record.id} failed its disclosure checks; "
                               "mitigate it (suppress or round) and record it again")
        if record.status not in (OutputStatus.checked, OutputStatus.returned):
            raise self._refuse(actor, "output_request", record,
                               f"output {record.id} is {record.status} and cannot be asked for")
        if len((context or "").strip()) < MIN_CONTEXT:
            raise self._refuse(actor, "output_request", record, "a release request needs context for the checker "
                               f"(at least {MIN_CONTEXT} characters): what the output is, why it is needed and "
                               "how it was made")
        _plain_text(record.id, "context", context)

    def _check_reader(self, actor: Actor, permit: str, action: str) -> None:
        if not actor.has(Role.checker):
            self.permits.check_analyst(actor, self.permits.get(permit), action)

    def _works_on(self, actor: Actor, permit: str) -> bool:
        """A filter for listings, not a gate: `show` and `list(permit=...)` check (and audit) access."""
        return actor.has(Role.analyst) and actor.name in self.permits.get(permit).request.people

    def _recheck(self, actor: Actor, action: str, record: OutputRecord, policy: DisclosureRules) -> CheckReport | None:
        """The output checked again under the current policy from the cells the register kept;
        refused (and audited) when it now fails or cannot be checked again. None when nothing is
        kept (an output recorded before re-checks) and no setting changed since: its checks stand."""
        row = self._row(record.id)
        kept = _stored_cells(row)["kept"]
        if kept is None:
            changed = sorted(s for s in OUTPUT_SETTINGS if getattr(record.rules, s) != getattr(policy, s))
            if changed:
                raise self._refuse(actor, action, record, f"output {record.id} was checked under an earlier "
                                   f"disclosure policy ({', '.join(changed)} changed since) and the register keeps "
                                   "nothing to check it again from; record it again")
            return None
        try:
            report = _rechecked(record.kind, row["public_cells_json"], kept, record.rules, policy)
        except NotRecheckable as problem:
            raise self._refuse(actor, action, record, f"output {record.id} cannot be checked again under the "
                               f"workspace's current disclosure policy: {problem}; record it again") from None
        if report.verdict == "fail":
            failed = ", ".join(sorted({f.rule for f in report.findings if f.verdict == "fail"}))
            raise self._refuse(actor, action, record, f"output {record.id} fails the disclosure checks under the "
                               f"workspace's current policy (failed rules: {failed}); mitigate it and record it again")
        return report

    def _check_one_rounding(self, actor: Actor, records: list[OutputRecord]) -> None:
        """A release holds outputs of one rounding policy: every count rounded to one base, or none."""
        ways: dict[str, list[str]] = {}
        for record in records:
            cells = _stored_cells(self._row(record.id))
            if cells["has_counts"]:
                way = f"counts rounded to base {cells['rounded_to']}" if cells["rounded_to"] else "exact counts"
                ways.setdefault(way, []).append(record.id)
        if len(ways) > 1:
            described = "; ".join(f"{', '.join(ids)} with {way}" for way, ids in sorted(ways.items()))
            raise self._refuse(actor, "output_release", records[0], "one rounding policy per release: a count "
                               f"rounded in one output would be shown exact in another ({described}); release them "
                               "apart, or publish the exact ones again with rounding")

    def _differencing(self, record: OutputRecord, policy: DisclosureRules) -> list[DifferencingFlag]:
        """Flags for person counts of this output that, set beside an output already released (or
        approved) under any permit of the workspace, reveal a group smaller than the current minimum
        frequency (released tables are public: anyone can set two of them side by side)."""
        mine = _stored_cells(self._row(record.id))["differencing"]
        if not mine:
            return []
        query = select(outputs_table.c.id, outputs_table.c.public_cells_json).where(
            outputs_table.c.id != record.id,
            outputs_table.c.status.in_([OutputStatus.approved, OutputStatus.released]),
            outputs_table.c.public_cells_json.is_not(None))
        with self.engine.connect() as con:
            others = {r.id: _stored_cells(dict(r._mapping))["differencing"] for r in con.execute(query)}
        flags = []
        for other_id, tables in others.items():
            found = [flag for cells in mine for other in tables
                     if (flag := compare(record.id, cells, other_id, other, policy.min_frequency)) is not None]
            if found:
                revealed = [cell for flag in found for cell in flag.cells]
                flags.append(DifferencingFlag(output=record.id, other=other_id, cells=revealed,
                                              message="; ".join(dict.fromkeys(flag.message for flag in found))))
        return flags

    def _row(self, output_id: str) -> dict[str, Any]:
        with self.engine.connect() as con:
            row = con.execute(select(outputs_table).where(outputs_table.c.id == output_id)).mappings().first()
        if row is None:
            raise MissingOutput(f"no output {output_id}")
        return dict(row)

    def _load(self, output_id: str) -> OutputRecord:
        row = self._row(output_id)
        with self.engine.connect() as con:
            reviews = con.execute(select(output_reviews_table).where(output_reviews_table.c.output == output_id)
                                  .order_by(output_reviews_table.c.id)).mappings().all()
            events = con.execute(select(output_events_table).where(output_events_table.c.output == output_id)
                                 .order_by(output_events_table.c.id)).mappings().all()
        return OutputRecord(
            id=row["id"], permit=row["permit"], title=row["title"], kind=row["kind"], source=row["source"],
            author=row["author"], created=dt.datetime.fromisoformat(row["created_at"]),
            status=OutputStatus(row["status"]), verdict=_verdict(row), checks=json.loads(row["checks_json"]),
            files=[f.name for f in _stored_files(row)], mitigation=row["mitigation"], context=row["context"],
            reviews=[Review(reviewer=r["reviewer"], decision=r["decision"], comment=r["comment"],
                            at=dt.datetime.fromisoformat(r["at"]), round=r["round"],
                            differencing=_flags(r["differencing_json"])) for r in reviews],
            history=[StatusChange(status=OutputStatus(e["status"]), actor=e["actor"],
                                  at=dt.datetime.fromisoformat(e["at"]), note=e["note"]) for e in events],
            differencing=_flags(row["differencing_json"]), request_round=row["request_round"],
            release_id=row["release_id"], rules=_rules(row["rules_json"]),
            counts_rounded_to=_stored_cells(row)["rounded_to"], version=row["version"])

    def _event(self, con, output_id: str, status: OutputStatus, actor: Actor, note: str) -> None:  # type: ignore[no-untyped-def]
        con.execute(insert(output_events_table).values(output=output_id, status=status, actor=actor.name,
                                                       at=_now(), note=note))

    def _audit(self, tx: AuditTransaction, actor: Actor, action: str, permit: str, output_id: str,
               detail: dict[str, Any]) -> None:
        tx.append(actor=actor.name, role=actor.main_role, action=action, permit=permit, target=output_id,
                  detail=detail)

    def _still(self, tx: AuditTransaction, record: OutputRecord, values: Mapping[str, Any]) -> bool:
        """Compare-and-set: change the output if it is still as it was read into `record` (its
        version, status and request round); False when anyone changed it since."""
        return tx.compare_and_set(outputs_table, {"id": record.id},
                                  {"version": record.version, "status": record.status,
                                   "request_round": record.request_round},
                                  {**values, "version": record.version + 1})

    def _conflict(self, tx: AuditTransaction, actor: Actor, action: str, record: OutputRecord) -> Conflict:
        return tx.conflict(actor.name, actor.main_role, action, f"output {record.id}", permit=record.permit,
                           target=record.id)

    def _refuse(self, actor: Actor, action: str, record: OutputRecord, reason: str) -> Refused:
        return refuse(self.audit, actor.name, actor.main_role, action, reason, permit=record.permit,
                      target=record.id)


def _next_id(con: Connection, permit: str) -> str:
    count = con.execute(select(func.count()).where(outputs_table.c.permit == permit)).scalar_one()
    return f"{permit}-{count + 1:04d}"


def _next_release_id(con: Connection, permit: str) -> str:
    count = con.execute(select(func.count()).where(releases_table.c.permit == permit)).scalar_one()
    return f"{permit}-R{count + 1:03d}"


def _described(files: dict[str, bytes]) -> list[StoredFile]:
    """What `store` will record for these files (name, SHA-256, size), before they are written."""
    return [StoredFile(name=name, sha256=hashlib.sha256(content).hexdigest(), bytes=len(content))
            for name, content in sorted(files.items())]


def _checked(output_id: str, output: StatOutput, name: str, policy: DisclosureRules,
             mitigation_note: str | None, report: CheckReport | None = None
             ) -> tuple[CheckReport, dict[str, Any], dict[str, bytes]]:
    """Check a new or revised output under the policy: the report, the columns that follow from
    it, and the files its kind writes (none for a failed output: nothing of it is kept). `report`:
    the output's check under this policy, made as it was mitigated (not checked a second time)."""
    _plain_text(output_id, "mitigation note", mitigation_note)
    kind = kind_of(output)
    report = report or kind.check(output, policy)
    failed = report.verdict == "fail"
    files = {} if failed else kind.files(output, name, policy)
    check_names(output_id, files, allow_none=failed)
    return report, {
        "title": report.title, "kind": kind.name, "verdict": "fail" if failed else "pass",
        "status": OutputStatus.failed if failed else OutputStatus.checked,
        "checks_json": json.dumps(report.to_record()), "rules_json": policy.model_dump_json(),
        "public_cells_json": None if failed else json.dumps(_kept(kind, output, policy)), "mitigation": mitigation_note,
        "differencing_json": "[]"}, files


_RECHECKED: dict[tuple[str, str, str, str], CheckReport] = {}
_RECHECKS_KEPT = 64


def _rechecked(kind: str, kept_json: str, kept: Mapping[str, Any], recorded: DisclosureRules,
               policy: DisclosureRules) -> CheckReport:
    """A recorded output checked again from what was kept (`kept_json`, read as `kept`): a function
    of that text and the two policies, so an output requested, reviewed and released under one
    policy is checked again once per process, not at each step (NotRecheckable is not kept)."""
    key = (kind, kept_json, recorded.model_dump_json(), policy.model_dump_json())
    report = _RECHECKED.get(key)
    if report is None:
        report = kind_named(kind).recheck(kept, recorded, policy)
        if len(_RECHECKED) >= _RECHECKS_KEPT:
            _RECHECKED.clear()
        _RECHECKED[key] = report
    return report


def _kept(kind: Any, output: StatOutput, policy: DisclosureRules) -> dict[str, Any]:
    """What the register keeps of a checked output: its shown cells (for re-checks), its person counts
    by group (for differencing) and how its counts are rounded. Never contributors, never failed cells."""
    return {"version": 2, "kept": kind.keep(output, policy),
            "differencing": [cells.to_record() for cells in kind.differencing_cells(output)],
            "has_counts": kind.has_counts(output), "rounded_to": kind.rounded_to(output)}


def _stored_cells(row: Mapping[str, Any]) -> dict[str, Any]:
    """The kept cells of a row; an output recorded before re-checks kept a frequency table's cells only."""
    text = row["public_cells_json"]
    if text is None:
        return {"kept": None, "differencing": [], "has_counts": False, "rounded_to": None}
    stored = json.loads(text)
    if stored.get("version") != 2:
        return {"kept": None, "differencing": [FrequencyCells.from_record(stored)], "has_counts": True,
                "rounded_to": None}
    return {**stored, "differencing": [FrequencyCells.from_record(cells) for cells in stored["differencing"]]}


def _verdict(row: Mapping[str, Any]) -> str:
    """pass, review or fail: the database keeps pass or fail, the report says where a person must look."""
    if row["verdict"] == "fail":
        return "fail"
    return "review" if json.loads(row["checks_json"]).get("verdict") == "review" else "pass"


def _rules(text: str) -> DisclosureRules:
    """The policy an output was checked under (settings added since then take their defaults)."""
    stored = {k: v for k, v in json.loads(text).items() if k in DisclosureRules.model_fields}
    return DisclosureRules.model_validate(stored, strict=False)


def _name_of(record: OutputRecord) -> str:
    """The name an output's files were written under ("<name>.csv", "<name>.html", ...)."""
    for file in record.files:
        for suffix in (".vl.json", ".csv", ".html", ".pdf"):
            if file.endswith(suffix):
                return file[: -len(suffix)]
    return "output"


def _files_json(stored: list[StoredFile]) -> str:
    return json.dumps([f.to_record() for f in stored])


def _plain_text(output_id: str, field: str, text: str | None) -> None:
    if text is not None and looks_like_identity_code(text):
        raise OutputError(f"output {output_id}: the {field} looks like it holds a personal identity code")


def _stored_files(row: dict[str, Any]) -> list[StoredFile]:
    return [StoredFile(**entry) for entry in json.loads(row["files_json"])]


def _flags(text: str) -> list[DifferencingFlag]:
    return [DifferencingFlag.from_record(entry) for entry in json.loads(text)]


def _manifest_entry(record: OutputRecord) -> dict[str, Any]:
    """What a reader of the release needs about one output: no cell values, no contributors."""
    findings = record.checks.get("findings", [])
    return {
        "id": record.id, "title": record.title, "kind": record.kind, "source": record.source,
        "author": record.author, "created": record.created.isoformat(),
        "checks": {"verdict": record.verdict,
                   "rules": [{"rule": f["rule"], "verdict": f["verdict"], "cells_affected": len(f["cells"])}
                             for f in findings]},
        "mitigation": record.mitigation,
        "context": record.context,
        "reviews": [{"reviewer": r.reviewer, "decision": r.decision, "comment": r.comment, "at": r.at.isoformat()}
                    for r in record.current_reviews()],
        "differencing_flags": [f.message for f in record.differencing],
    }
