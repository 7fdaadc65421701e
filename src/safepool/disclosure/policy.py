"""The workspace's disclosure policy: one per workspace, changed only by an admin, audited.

No caller passes thresholds. Everything that checks an output (the output register, the query
engine, the study) asks `workspace_policy(governance)`.

Where the policy lives
  * The audit log is the source of truth. Each change is a `policy_set` record (the setting, its
    old and new value, the whole policy after the change, and the SHA-256 of the file written);
    `policy_restore` records an admin putting the audited policy back into the file.
  * `<workspace>/disclosure.yaml` is its readable copy, written only here and only after its
    audit record is committed. Loading the policy compares the file's SHA-256 with the latest
    record's: a file edited, replaced, added or deleted outside `safepool policy set` is
    refused with an error naming the file (and the refusal is audited), until an admin runs
    `safepool policy restore`, which writes the audited policy back (audited too).
  * A workspace without either has the design's defaults.

Anyone signed in may read the policy (`safepool policy show`, audited); only an admin changes
it (`safepool policy set KEY VALUE`), and every refusal is audited with its reason.
"""

from __future__ import annotations

import datetime as dt
import fcntl
import hashlib
import json
import os
import threading
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator

import yaml
from pydantic import ValidationError
from sqlalchemy import Engine, func, select

from safepool.disclosure.rules import DisclosureRules
from safepool.errors import SafepoolError
from safepool.faults import Invalid, Unavailable
from safepool.governance.audit import AuditLog, audit_records
from safepool.governance.users import Actor, Role, refuse, require_role

POLICY_FILE = "disclosure.yaml"
SET, RESTORE, SHOW, MISMATCH = "policy_set", "policy_restore", "policy_show", "policy_check"
CHANGES = (SET, RESTORE)
SYSTEM = "safepool"
_HEADER = ("# The disclosure policy of this workspace, written by `safepool policy set`.\n"
           "# Do not edit: a change made outside that command is detected and stops every\n"
           "# disclosure check until an admin runs `safepool policy restore`.\n")


class PolicyError(SafepoolError):
    """An error of the workspace's policy; each raised one is also one of the typed faults."""


class PolicyMismatch(PolicyError, Unavailable):
    """The policy file was changed outside `safepool policy set`: no check runs until an admin
    restores it (`safepool policy restore`)."""


class PolicyUnchanged(PolicyError, Invalid):
    """A change or a restore that would change nothing."""


@dataclass(frozen=True)
class PolicyChange:
    """One audited change of the policy (or a restore of its file)."""

    seq: int
    at: dt.datetime
    actor: str
    action: str
    setting: str | None
    old: Any
    new: Any
    policy: DisclosureRules
    file_sha256: str


def workspace_policy(governance: Any) -> DisclosureRules:
    """The policy every check of this workspace uses; PolicyError if its file was changed outside
    `safepool policy set`."""
    return policy_of(governance.root, governance.audit)


def policy_of(root: Path, audit: AuditLog) -> DisclosureRules:
    """The policy of the workspace at `root` whose audit log is `audit`."""
    latest = _latest_change(audit)
    path = policy_path(root)
    found = _file_digest(path)
    expected = latest.file_sha256 if latest else None
    if found != expected:
        audit.append(actor=SYSTEM, role="system", action=MISMATCH, outcome="refused",
                     detail={"file_sha256": found, "expected_sha256": expected})
        raise PolicyMismatch(_mismatch(path, found, latest))
    return latest.policy if latest else DisclosureRules()


def policy_path(root: Path) -> Path:
    return Path(root) / POLICY_FILE


def show_policy(governance: Any, actor: Actor) -> tuple[DisclosureRules, list[PolicyChange]]:
    """The policy and its audited changes, for anyone signed in (the reading is audited)."""
    policy = workspace_policy(governance)
    governance.audit.append(actor=actor.name, role=actor.main_role, action=SHOW,
                            detail={"file_sha256": _file_digest(policy_path(governance.root))})
    return policy, policy_history(governance.audit)


def policy_history(audit: AuditLog) -> list[PolicyChange]:
    records = [r for action in CHANGES for r in audit.records(action=action, outcome="ok")]
    return [_change(r.seq, r.at, r.actor, r.action, r.detail) for r in sorted(records, key=lambda r: r.seq)]


def set_policy(governance: Any, actor: Actor, setting: str, value: Any) -> PolicyChange:
    """An admin changes one setting; audited with its old and new value, then the file is written.

    `value` may be text as typed on the command line ("10", "0.8", "true", "suppress")."""
    audit, root = governance.audit, governance.root
    require_role(audit, actor, Role.admin, SET)

    def refused(reason: str) -> SafepoolError:
        return refuse(audit, actor.name, actor.main_role, SET, reason)

    settings = list(DisclosureRules.model_fields)
    if setting not in settings:
        raise refused(f"there is no setting {setting!r}; the settings are {', '.join(settings)}"
                      if isinstance(setting, str) and setting.isidentifier() and len(setting) <= 30
                      else f"unknown setting; the settings are {', '.join(settings)}")
    with _policy_lock(root):
        try:
            current = policy_of(root, audit)
        except PolicyError:  # the refusal is audited: it names the file by its name, never a folder path
            raise refused(f"the policy file {POLICY_FILE} does not match the audit log (`safepool policy show` "
                          "says why); restore it before changing the policy") from None
        parsed = yaml.safe_load(value) if isinstance(value, str) else value
        try:
            changed = DisclosureRules.model_validate({**current.model_dump(), setting: parsed})
        except ValidationError as error:
            raise refused(f"setting {setting}: {error.errors()[0]['msg']}") from None
        old, new = getattr(current, setting), getattr(changed, setting)
        if old == new:
            raise PolicyUnchanged(f"setting {setting} is already {old}; the policy is unchanged")
        return _write(governance, actor, SET, changed, {"setting": setting, "old": old, "new": new})


def restore_policy(governance: Any, actor: Actor) -> PolicyChange:
    """An admin writes the audited policy back into disclosure.yaml (after it was changed outside
    the command); audited with the digest of the file that was found."""
    audit, root = governance.audit, governance.root
    require_role(audit, actor, Role.admin, RESTORE)
    with _policy_lock(root):
        latest = _latest_change(audit)
        policy = latest.policy if latest else DisclosureRules()
        found = _file_digest(policy_path(root))
        if latest is not None and found == latest.file_sha256:
            raise PolicyUnchanged(f"{policy_path(root)} is as audited; there is nothing to restore")
        return _write(governance, actor, RESTORE, policy, {"setting": None, "found_sha256": found})


# -- internals ----------------------------------------------------------------------------------


def policy_bytes(policy: DisclosureRules) -> bytes:
    """The file's content: always the same bytes for the same policy."""
    body = yaml.safe_dump(policy.model_dump(mode="json"), sort_keys=False, allow_unicode=True)
    return (_HEADER + body).encode("utf-8")


def _write(governance: Any, actor: Actor, action: str, policy: DisclosureRules, detail: dict[str, Any]) -> PolicyChange:
    content = policy_bytes(policy)
    digest = hashlib.sha256(content).hexdigest()
    record = governance.audit.append(actor=actor.name, role=actor.main_role, action=action, detail={
        **detail, "policy": policy.model_dump(mode="json"), "file_sha256": digest})
    path = policy_path(governance.root)
    partial = path.with_name(f".{path.name}.partial")
    partial.write_bytes(content)
    os.replace(partial, path)
    return _change(record.seq, record.at, record.actor, record.action, record.detail)


def _change(seq: int, at: dt.datetime, actor: str, action: str, detail: dict[str, Any]) -> PolicyChange:
    known = {k: v for k, v in detail["policy"].items() if k in DisclosureRules.model_fields}
    return PolicyChange(seq=seq, at=at, actor=actor, action=action, setting=detail.get("setting"),
                        old=detail.get("old"), new=detail.get("new"),
                        policy=DisclosureRules.model_validate(known, strict=False), file_sha256=detail["file_sha256"])


def _file_digest(path: Path) -> str | None:
    try:
        return hashlib.sha256(path.read_bytes()).hexdigest()
    except FileNotFoundError:
        return None


def _mismatch(path: Path, found: str | None, latest: PolicyChange | None) -> str:
    fix = "an admin can write the audited policy back with `safepool policy restore`"
    if latest is None:
        return (f"disclosure policy file {path} was not written by `safepool policy set` (the audit log has no "
                f"change of the policy); {fix}")
    if found is None:
        return (f"disclosure policy file {path} is missing (it was written by {latest.action} in audit record "
                f"{latest.seq}); {fix}")
    return (f"disclosure policy file {path} was changed outside `safepool policy set` (its SHA-256 differs from "
            f"the one in audit record {latest.seq}); {fix}")


@contextmanager
def _policy_lock(root: Path) -> Iterator[None]:
    """One change at a time per workspace, across processes."""
    with open(Path(root) / f".{POLICY_FILE}.lock", "a+") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


# The latest change is found by reading only the audit records appended since the last look.
_cache: dict[tuple[str, int], tuple[int, PolicyChange | None]] = {}
_cache_lock = threading.Lock()


def _latest_change(audit: AuditLog) -> PolicyChange | None:
    engine: Engine = audit._engine  # the log's own engine: the records are read, never written, here
    key = (str(engine.url), id(engine))
    t = audit_records.c
    with _cache_lock:
        scanned, latest = _cache.get(key, (0, None))
        with engine.connect() as con:
            head = con.execute(select(func.max(t.seq))).scalar() or 0
            if head < scanned:  # a different (or shortened) log: read it afresh
                scanned, latest = 0, None
            rows = con.execute(select(t.seq, t.at, t.actor, t.action, t.detail)
                               .where(t.seq > scanned, t.seq <= head, t.action.in_(CHANGES), t.outcome == "ok")
                               .order_by(t.seq)).all()
        for row in rows:
            latest = _change(row.seq, dt.datetime.fromisoformat(row.at), row.actor, row.action, json.loads(row.detail))
        _cache[key] = (head, latest)
        return latest
