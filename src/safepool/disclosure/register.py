"""The output register (safe outputs): every table, figure and model result of a permit, its
checks, its review and its release.

An analyst of the permit records an output; the register runs the disclosure checks itself
(it never takes a caller's verdict) and keeps the findings (rule, verdict, cells affected, never
the values of failed cells), the files under <workspace>/outputs/<permit>/<output id>/, where the
output came from, who made it and each change of status. The author asks for release with the
context a checker needs; an output that failed its checks cannot be asked for. A checker who is
not the author approves, returns with comments or rejects, output by output; a permit may need two
different checkers to approve. Each review is shown differencing flags: cells that, set beside a
table already released (or approved) under the same permit, reveal a small group. A checker then
releases approved outputs into the release folder, the only way out. Every step and every refusal
is in the audit log.
"""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from sqlalchemy import Engine, func, insert, select, update

from safepool.disclosure.checks import check
from safepool.disclosure.findings import CheckReport
from safepool.disclosure.differencing import DifferencingFlag, FrequencyCells, flags_against
from safepool.disclosure.output_files import StoredFile, check_names, output_folder, read_verified, replace, store
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
from safepool.disclosure.release import release_folder, write_release
from safepool.disclosure.rules import DisclosureRules
from safepool.errors import SafepoolError
from safepool.governance.audit import AuditLog
from safepool.governance.form import looks_like_identity_code
from safepool.governance.permits import PermitOffice
from safepool.governance.users import Actor, Refused, Role, refuse, require_role

MIN_CONTEXT = 20  # characters: what the output is, why it is needed and how it was made

Decision = Literal["approve", "return", "reject"]


class OutputError(SafepoolError):
    """An output register call with something wrong in it; names the output and the field."""


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
    verdict: Literal["pass", "fail"]
    checks: dict[str, Any]
    files: list[str]
    mitigation: str | None
    context: str | None
    reviews: list[Review]
    history: list[StatusChange]
    differencing: list[DifferencingFlag]  # as last computed (at the request or the latest review)
    request_round: int
    release_id: str | None
    rules: DisclosureRules

    def current_reviews(self) -> list[Review]:
        """The reviews of the latest release request."""
        return [r for r in self.reviews if r.round == self.request_round]


def _now() -> str:
    return dt.datetime.now(dt.UTC).isoformat(timespec="seconds")


class OutputRegister:
    """Recorded outputs of every permit in one workspace."""

    def __init__(self, engine: Engine, audit: AuditLog, permits: PermitOffice, workspace_root: Path) -> None:
        self.engine = engine
        self.audit = audit
        self.permits = permits
        self.root = workspace_root

    # -- recording -------------------------------------------------------------------------

    def record(self, actor: Actor, permit: str, output: StatOutput, files: dict[str, bytes], source: str,
               rules: DisclosureRules, mitigation_note: str | None = None) -> OutputRecord:
        """Check `output` and keep it, with its files, as an output of `permit`."""
        self.permits.authorise_access(actor, permit)
        if source not in SOURCES:
            raise OutputError(f"output of permit {permit}: source {source!r} must be one of {', '.join(SOURCES)}")
        output_id = self._next_id(permit)
        report, values = _checked(output_id, output, files, rules, mitigation_note)
        stored = store(output_folder(self.root, permit, output_id), files)
        with self.engine.begin() as con:
            con.execute(insert(outputs_table).values(
                id=output_id, permit=permit, source=source, author=actor.name, created_at=_now(), context=None,
                request_round=0, release_id=None, files_json=_files_json(stored), **values))
            self._event(con, output_id, values["status"], actor, f"recorded from a {source}; checks: {report.verdict}")
        self._audit(actor, "output_record", permit, output_id, detail={
            "kind": output.kind, "source": source, "verdict": report.verdict, "files": len(stored),
            "failed_rules": sorted({f.rule for f in report.findings if f.verdict == "fail"})})
        return self._load(output_id)

    def revise(self, actor: Actor, output_id: str, output: StatOutput, files: dict[str, bytes],
               rules: DisclosureRules, mitigation_note: str | None = None) -> OutputRecord:
        """The author replaces a returned (or not yet requested) output; it is checked afresh."""
        record = self._load(output_id)
        self.permits.authorise_access(actor, record.permit)
        if record.author != actor.name:
            raise self._refuse(actor, "output_revise", record, f"only its author {record.author} revises {output_id}")
        if record.status not in (OutputStatus.checked, OutputStatus.failed, OutputStatus.returned):
            raise self._refuse(actor, "output_revise", record, f"output {output_id} is {record.status}; only a "
                               "checked, failed or returned output can be revised")
        report, values = _checked(output_id, output, files, rules, mitigation_note)
        stored = replace(output_folder(self.root, record.permit, output_id), files)
        with self.engine.begin() as con:
            con.execute(update(outputs_table).where(outputs_table.c.id == output_id)
                        .values(files_json=_files_json(stored), **values))
            self._event(con, output_id, values["status"], actor, f"revised; checks: {report.verdict}")
        self._audit(actor, "output_revise", record.permit, output_id,
                    detail={"kind": output.kind, "verdict": report.verdict, "files": len(stored)})
        return self._load(output_id)

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
        for record in records:
            flags = self._differencing(record)
            with self.engine.begin() as con:
                con.execute(update(outputs_table).where(outputs_table.c.id == record.id).values(
                    status=OutputStatus.release_requested, context=context.strip(),
                    request_round=record.request_round + 1,
                    differencing_json=json.dumps([f.to_record() for f in flags])))
                self._event(con, record.id, OutputStatus.release_requested, actor,
                            f"release requested (round {record.request_round + 1})")
            self._audit(actor, "output_request", record.permit, record.id,
                        detail={"round": record.request_round + 1, "differencing_flags": len(flags)})

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
        flags = self._differencing(record)
        comment = (comment or "").strip()
        if not comment and (decision != "approve" or flags):
            reason = "differencing flags" if decision == "approve" else f"a decision to {decision}"
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
        with self.engine.begin() as con:
            con.execute(insert(output_reviews_table).values(
                output=output_id, round=record.request_round, reviewer=actor.name, decision=decision,
                comment=comment, at=_now(), differencing_json=flags_json))
            con.execute(update(outputs_table).where(outputs_table.c.id == output_id)
                        .values(status=status, differencing_json=flags_json))
            self._event(con, output_id, status, actor,
                        f"{decision} by checker ({len(approvals)} of {required} approvals)")
        self._audit(actor, "output_review", record.permit, output_id, detail={
            "decision": decision, "round": record.request_round, "approvals": len(approvals),
            "required": required, "differencing_flags": len(flags), "status": str(status)})
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
        permit = permits[0]
        try:
            contents = {r.id: read_verified(self.folder(r), r.id, _stored_files(self._row(r.id))) for r in records}
        except SafepoolError as exc:
            raise self._refuse(actor, "output_release", records[0], str(exc)) from None
        release_id = self._next_release_id(permit)
        released_at = _now()
        folder = release_folder(self.root, permit, release_id)
        manifest = {"release": release_id, "permit": permit, "released_by": actor.name, "released_at": released_at,
                    "outputs": [_manifest_entry(r) for r in records]}
        digest = write_release(folder, manifest, contents)
        with self.engine.begin() as con:
            con.execute(insert(releases_table).values(
                id=release_id, permit=permit, released_by=actor.name, at=released_at,
                folder=str(folder.relative_to(self.root)), manifest_sha256=digest))
            for record in records:
                con.execute(update(outputs_table).where(outputs_table.c.id == record.id)
                            .values(status=OutputStatus.released, release_id=release_id))
                self._event(con, record.id, OutputStatus.released, actor, f"released in {release_id}")
        self.audit.append(actor=actor.name, role=actor.main_role, action="output_release", permit=permit,
                          target=release_id, rows=sum(len(files) for files in contents.values()),
                          result_hash=digest, detail={"outputs": [r.id for r in records]})
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

    def _differencing(self, record: OutputRecord) -> list[DifferencingFlag]:
        row = self._row(record.id)
        if row["public_cells_json"] is None:
            return []
        query = select(outputs_table.c.id, outputs_table.c.public_cells_json).where(
            outputs_table.c.permit == record.permit, outputs_table.c.id != record.id,
            outputs_table.c.status.in_([OutputStatus.approved, OutputStatus.released]),
            outputs_table.c.public_cells_json.is_not(None))
        with self.engine.connect() as con:
            others = {r.id: FrequencyCells.from_record(json.loads(r.public_cells_json)) for r in con.execute(query)}
        cells = FrequencyCells.from_record(json.loads(row["public_cells_json"]))
        return flags_against(record.id, cells, others, record.rules.min_frequency)

    def _next_id(self, permit: str) -> str:
        with self.engine.connect() as con:
            count = con.execute(select(func.count()).where(outputs_table.c.permit == permit)).scalar_one()
        return f"{permit}-{count + 1:04d}"

    def _next_release_id(self, permit: str) -> str:
        with self.engine.connect() as con:
            count = con.execute(select(func.count()).where(releases_table.c.permit == permit)).scalar_one()
        return f"{permit}-R{count + 1:03d}"

    def _row(self, output_id: str) -> dict[str, Any]:
        with self.engine.connect() as con:
            row = con.execute(select(outputs_table).where(outputs_table.c.id == output_id)).mappings().first()
        if row is None:
            raise OutputError(f"no output {output_id}")
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
            status=OutputStatus(row["status"]), verdict=row["verdict"], checks=json.loads(row["checks_json"]),
            files=[f.name for f in _stored_files(row)], mitigation=row["mitigation"], context=row["context"],
            reviews=[Review(reviewer=r["reviewer"], decision=r["decision"], comment=r["comment"],
                            at=dt.datetime.fromisoformat(r["at"]), round=r["round"],
                            differencing=_flags(r["differencing_json"])) for r in reviews],
            history=[StatusChange(status=OutputStatus(e["status"]), actor=e["actor"],
                                  at=dt.datetime.fromisoformat(e["at"]), note=e["note"]) for e in events],
            differencing=_flags(row["differencing_json"]), request_round=row["request_round"],
            release_id=row["release_id"], rules=DisclosureRules.model_validate_json(row["rules_json"]))

    def _event(self, con, output_id: str, status: OutputStatus, actor: Actor, note: str) -> None:  # type: ignore[no-untyped-def]
        con.execute(insert(output_events_table).values(output=output_id, status=status, actor=actor.name,
                                                       at=_now(), note=note))

    def _audit(self, actor: Actor, action: str, permit: str, output_id: str, detail: dict[str, Any]) -> None:
        self.audit.append(actor=actor.name, role=actor.main_role, action=action, permit=permit, target=output_id,
                          detail=detail)

    def _refuse(self, actor: Actor, action: str, record: OutputRecord, reason: str) -> Refused:
        return refuse(self.audit, actor.name, actor.main_role, action, reason, permit=record.permit,
                      target=record.id)


def _checked(output_id: str, output: StatOutput, files: dict[str, bytes], rules: DisclosureRules,
             mitigation_note: str | None) -> tuple[CheckReport, dict[str, Any]]:
    """Run the checks on a new or revised output; the columns that follow from them."""
    check_names(output_id, files)
    _plain_text(output_id, "mitigation note", mitigation_note)
    report = check(output, rules)
    return report, {
        "title": output.title, "kind": output.kind, "verdict": report.verdict,
        "status": OutputStatus.checked if report.verdict == "pass" else OutputStatus.failed,
        "checks_json": json.dumps(report.to_record()), "rules_json": rules.model_dump_json(),
        "public_cells_json": _public_cells(output, report.verdict), "mitigation": mitigation_note,
        "differencing_json": "[]"}


def _public_cells(output: StatOutput, verdict: str) -> str | None:
    """A passing frequency table's shown cells (public once released); never a failed table's."""
    if verdict != "pass":
        return None
    cells = FrequencyCells.of_output(output)
    return json.dumps(cells.to_record()) if cells is not None else None


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
