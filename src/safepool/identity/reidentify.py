"""Re-identification under a permit that allows it (the handbook's preventive-services case).

When an analysis has found an at-risk group, the steward may link the group's pseudonyms back
to identity codes so that preventive services can reach those persons, but only where the
permit asked for it when it was approved. The linkage authority does it, in the steward zone: it
opens the permit's key and reads the identity column of each register its holder released into the
permit (within the permit's time window) in place, classifies and pseudonymises each distinct code once, and keeps the
codes whose pseudonym was asked for.

The matches go to one CSV file under `steward/reidentified/` (mode 0600, folder 0700), written
first in a held scratch folder of the steward zone (which the next build or `safepool doctor`
removes if the run is killed) and published only after the audit record is committed; nothing
else is written anywhere and nothing identifying is returned, only the counts and the file's path.
Every refusal is audited and says why without echoing what was given.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import os
import secrets
from dataclasses import dataclass
from pathlib import Path

import pyarrow as pa

from safepool.duckdb_connection import open_duckdb
from safepool.errors import SafepoolError
from safepool.governance.audit import UnsafeAuditField
from safepool.governance.context import Governance
from safepool.governance.users import Actor, Role, refuse, require_role
from safepool.identity.keystore import KeyStore
from safepool.identity_pattern import looks_like_identity_code
from safepool.identity.pseudonym import Pseudonymiser
from safepool.identity.resolver import IdentityResolver
from safepool.pool.publish import Scratch
from safepool.pool.pseudonyms import DIGITS, MalformedPseudonym, parse, shown
from safepool.pool.scope import Scope, Window, time_predicate
from safepool.registers.credentials import Credentials
from safepool.registers.sources import Scan, open_register
from safepool.workspace import Workspace

ACTION = "reidentify"
FOLDER = "reidentified"
COLUMNS = ("pseudonym", "identity_code")
MALFORMED_NAMED = 5  # malformed items named in a refusal, at most


@dataclass(frozen=True)
class Reidentified:
    """What a re-identification did: counts of distinct pseudonyms, and where the matches are."""

    requested: int
    matched: int
    unmatched: int
    path: Path


def reidentify(
    workspace: Workspace,
    governance: Governance,
    actor: Actor,
    permit_id: str,
    pseudonyms: list[str],
    justification: str,
    *,
    today: dt.date | None = None,
) -> Reidentified:
    """Link `pseudonyms` of permit `permit_id` back to identity codes, as a steward.

    Refused (and audited) unless the actor is the linkage authority and not among the permit's people,
    the permit is approved, in force on `today` and requested re-identification, and the
    justification is given and holds no identity code. Pseudonyms are given as shown (19 digits);
    repeats count once.
    """
    audit = governance.audit

    def refused(reason: str) -> Exception:
        return refuse(audit, actor.name, actor.main_role, ACTION, reason, permit=permit_id)

    require_role(audit, actor, Role.steward, ACTION, permit=permit_id)
    permit = governance.permits.get(permit_id)
    governance.holders.require_linkage_authority(actor, ACTION, permit=permit_id)
    governance.permits.check_in_force(actor, permit, ACTION, today)
    if not permit.request.reidentification.requested:
        raise refused(f"permit {permit_id} does not allow re-identification")
    if actor.name in permit.request.people:
        raise refused(f"user {actor.name} is among the permit's analysts and may not re-identify its data")
    justification = (justification or "").strip()
    if not justification:
        raise refused("a justification is required")
    if looks_like_identity_code(justification):
        raise refused("the justification looks like it holds a personal identity code; it must not")
    wanted, malformed = _parsed(pseudonyms)
    if malformed:
        items = ", ".join(map(str, malformed[:MALFORMED_NAMED])) + (", ..." if len(malformed) > MALFORMED_NAMED else "")
        raise refused(f"{len(malformed)} of {len(pseudonyms)} pseudonyms are malformed (item {items} of the list; "
                      f"a pseudonym is shown as {DIGITS} digits)")
    if not wanted:
        raise refused("no pseudonyms were given")

    released = governance.holders.released_scope(actor, permit, ACTION)  # what the holders released, only
    try:
        key = KeyStore.of(workspace).get(permit_id)
        frame = permit.request.data.time_frame
        scope = Scope(permit=permit_id, window=Window(start=frame.start, end=frame.end),
                      registers=dict(released.sources), withheld=released.withheld)
        matches = _match(workspace, scope, Pseudonymiser(key), wanted)
    except SafepoolError as exc:
        audit.append(actor=actor.name, role=actor.main_role, action=ACTION, permit=permit_id, outcome="error",
                     detail={"error": type(exc).__name__})
        raise

    matched = len({pseudonym for pseudonym, _ in matches})
    folder = workspace.steward_dir / FOLDER
    folder.mkdir(mode=0o700, parents=True, exist_ok=True)
    os.chmod(folder, 0o700)
    stamp = dt.datetime.now(dt.UTC).strftime("%Y%m%dT%H%M%S.%fZ")
    path = folder / f"{permit_id}-{stamp}.csv"
    # written in a held scratch folder of the steward zone, so a killed run leaves nothing that lasts
    with Scratch(workspace.steward_dir / "tmp", permit_id) as scratch:
        temporary = _write_private(scratch.path, matches)
        try:
            audit.append(actor=actor.name, role=actor.main_role, action=ACTION, permit=permit_id, rows=matched,
                         detail={"requested": len(wanted), "matched": matched, "justification": justification})
        except UnsafeAuditField:
            raise refused("the justification holds a string that looks like a key or secret; it must not") from None
        os.link(temporary, path)  # never replaces an earlier file
    return Reidentified(requested=len(wanted), matched=matched, unmatched=len(wanted) - matched, path=path)


def _parsed(pseudonyms: list[str]) -> tuple[list[int], list[int]]:
    """The distinct pseudonyms given, sorted, and the (1-based) items that are not pseudonyms."""
    wanted: set[int] = set()
    malformed: list[int] = []
    for item, text in enumerate(pseudonyms, start=1):
        try:
            wanted.add(parse(text))
        except MalformedPseudonym:
            malformed.append(item)
    return sorted(wanted), malformed


def _match(workspace: Workspace, scope: Scope, pseudonymiser: Pseudonymiser,
           wanted: list[int]) -> list[tuple[str, str]]:
    """(pseudonym as shown, identity code) for each wanted pseudonym found in the scope's registers."""
    plan = scope.resolve(workspace.catalogue())
    credentials = Credentials.load(workspace)
    with Scratch(workspace.steward_dir / "tmp", scope.permit) as spill, \
            open_duckdb(config={"temp_directory": str(spill.path)}) as con:
        con.execute("CREATE TEMP TABLE raw_codes (raw VARCHAR)")
        for register, _ in plan:
            with open_register(workspace, register, credentials) as reader:
                batches = reader.scan(Scan(columns={"raw": register.identity_column},
                                           where=time_predicate(register, scope.window)))
                con.register("identity_batches", batches)
                try:
                    with reader.guarded("reading identity codes"):
                        con.execute("INSERT INTO raw_codes SELECT DISTINCT CAST(raw AS VARCHAR) "
                                    "FROM identity_batches")
                finally:
                    con.unregister("identity_batches")
        resolver = IdentityResolver(con, pseudonymiser)
        resolver.resolve("raw_codes", "raw")
        con.register("wanted", pa.table({"pid": pa.array(wanted, pa.int64())}))
        return [(shown(pid), code) for pid, code in con.execute(
            "SELECT DISTINCT w.pid, m.code FROM wanted w JOIN id_map m ON m.pid = w.pid ORDER BY 1, 2"
        ).fetchall()]


def _write_private(folder: Path, matches: list[tuple[str, str]]) -> Path:
    """Write the matches to a new file of mode 0600 in `folder`, flushed to disk."""
    text = io.StringIO()
    writer = csv.writer(text, lineterminator="\n")
    writer.writerow(COLUMNS)
    writer.writerows(matches)
    temporary = folder / f"reidentified-{secrets.token_hex(8)}.csv"
    fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        with os.fdopen(fd, "w", encoding="utf-8", newline="") as handle:
            handle.write(text.getvalue())
            handle.flush()
            os.fsync(handle.fileno())
    except BaseException:
        temporary.unlink(missing_ok=True)
        raise
    return temporary
