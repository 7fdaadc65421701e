"""The tamper-evident audit log (safe settings): who did what, under which permit, and how it went.

Every access to the pool, every refusal and every release decision is appended here as one
record. Records form a hash chain: each record's `record_hash` is SHA-256 over a canonical
serialisation of all its fields *and* the previous record's hash (`prev_hash`; the first record
links to 64 zeros). `AuditLog.verify()` recomputes the chain and names the first broken record
and why: an edited record, a deleted one, records put out of order, or a record slipped in.

What the chain can and cannot show
  * Any change to a stored record (edit, deletion, insertion, reordering, a stored record copied
    in again) that leaves later records alone is detected, and the first affected record is named.
  * Someone who can write the database and rewrites the *whole* tail after a change (the hash is
    not keyed), or simply cuts records off the end, is caught against the anchors kept outside
    the database (safepool.governance.anchors: the steward zone's `audit-anchors`, every N
    records and at every release, and `audit-witness`, a line per record): `verify()` reads them
    and names the first record that does not match them, or the records cut off. A release's
    MANIFEST.json carries the head too, so `verify(anchor=(seq, hash))` checks the log against
    a copy that left the environment.
  * As a first line of defence the table refuses UPDATE and DELETE (and TRUNCATE on PostgreSQL)
    through triggers, so a mistaken statement cannot change it; an attacker who drops the
    triggers is then caught by the chain.

State changes and their records commit together: `AuditLog.transaction()` opens one transaction
that holds the log's write lock from its start; the caller writes its state through `tx.conn`
and appends with `tx.append(...)`, and a refusal or a conflict found inside is audited after the
rollback. Every `append()` outside such a transaction is a transaction of its own.

Appends are serialised so that two writers can never read the same head and fork the chain:
SQLite takes the database write lock up front (`BEGIN IMMEDIATE`) before reading the head;
PostgreSQL takes `LOCK TABLE audit_records IN EXCLUSIVE MODE` (readers are not blocked) in the
same transaction. `seq` is the primary key and is assigned as head + 1 inside that lock, so the
sequence has no gaps. A record is returned only after its transaction committed; with SQLite
the engine from `connect_engine` runs in WAL mode with `synchronous=FULL`, so a committed record
survives the writing process being killed (and power loss), and a half-written transaction is
discarded on the next open.

Privacy: an audit record says *what* was touched (a register, a permit, an output id, a row
count, a digest of the result), never the data. `append()` refuses (with `UnsafeAuditField`,
naming the field but never echoing the value) any field or detail value, at any depth, that
looks like a Finnish identity code (HETU, any century sign, any case) or like a secret (a
detail key named like password/secret/token/key, or a long hex/base64 string outside the
digest fields). Names and addresses cannot be recognised by pattern: they are kept out by the
callers, which never hold them (outside the steward zone only pseudonyms exist, and the steward
zone logs register names, counts and digests only).
"""

from __future__ import annotations

import collections
import dataclasses
import datetime as dt
import hashlib
import json
import math
import re
import threading
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextlib import contextmanager
from decimal import Decimal
from typing import Any, Literal, TypeVar

from sqlalchemy import (
    BigInteger,
    CheckConstraint,
    Column,
    Connection,
    Engine,
    Index,
    Integer,
    String,
    Table,
    Text,
    select,
)

from safepool.faults import Conflict, Invalid, Refused
from safepool.governance.anchors import AnchorStore, Claim, merge_claims
from safepool.governance.db import metadata
from safepool.identity_pattern import IDENTITY_CODE

E = TypeVar("E", bound=BaseException)

GENESIS_HASH = "0" * 64
OUTCOMES = ("ok", "refused", "error", "withheld")  # withheld: answered, some columns withheld (differencing)
Outcome = Literal["ok", "refused", "error", "withheld"]

_HASH_DOMAIN = "safepool.audit.v1\n"
_TABLE_DOMAIN = "safepool.result.v1\n"
_DIGEST = re.compile(r"^[0-9a-f]{64}$")

audit_records = Table(
    "audit_records",
    metadata,
    Column("seq", BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=False),
    Column("at", String(32), nullable=False),  # UTC, ISO 8601 with microseconds
    Column("actor", String(200), nullable=False),
    Column("role", String(50), nullable=False),
    Column("action", String(100), nullable=False),
    Column("permit", String(200), nullable=True),
    Column("target", String(500), nullable=True),
    Column("rows", BigInteger, nullable=True),
    Column("result_hash", String(64), nullable=True),
    Column("outcome", String(16), nullable=False),
    Column("detail", Text, nullable=False),  # canonical JSON (sorted keys, no spaces)
    Column("prev_hash", String(64), nullable=False),
    Column("record_hash", String(64), nullable=False),
    CheckConstraint("seq >= 1", name="ck_audit_records_seq"),
    CheckConstraint("outcome IN ('ok', 'refused', 'error', 'withheld')", name="ck_audit_records_outcome"),
)
Index("ix_audit_records_at", audit_records.c.at)
Index("ix_audit_records_actor", audit_records.c.actor)
Index("ix_audit_records_permit", audit_records.c.permit)

# Append-only at the database level: a stray UPDATE or DELETE fails. Dropping these triggers
# takes deliberate effort, and whatever is changed after that shows in verify(). The schema
# migrations create them.
APPEND_ONLY_DDL: dict[str, tuple[str, ...]] = {
    "sqlite": (
        "CREATE TRIGGER audit_records_no_update BEFORE UPDATE ON audit_records "
        "BEGIN SELECT RAISE(ABORT, 'audit_records is append-only'); END",
        "CREATE TRIGGER audit_records_no_delete BEFORE DELETE ON audit_records "
        "BEGIN SELECT RAISE(ABORT, 'audit_records is append-only'); END",
    ),
    "postgresql": (
        "CREATE OR REPLACE FUNCTION audit_records_append_only() RETURNS trigger LANGUAGE plpgsql AS "
        "$fn$ BEGIN RAISE EXCEPTION 'audit_records is append-only'; END $fn$",
        "CREATE TRIGGER audit_records_append_only BEFORE UPDATE OR DELETE OR TRUNCATE "
        "ON audit_records FOR EACH STATEMENT EXECUTE FUNCTION audit_records_append_only()",
    ),
}

_COLUMNS = tuple(c.name for c in audit_records.columns)


# --------------------------------------------------------------------------- records


@dataclasses.dataclass(frozen=True)
class AuditRecord:
    """One stored audit record. `detail` is decoded afresh from `detail_json` on each access."""

    seq: int
    at: dt.datetime  # timezone-aware, UTC
    actor: str
    role: str
    action: str
    permit: str | None
    target: str | None
    rows: int | None
    result_hash: str | None
    outcome: str
    detail_json: str
    prev_hash: str
    record_hash: str

    @property
    def detail(self) -> dict[str, Any]:
        return json.loads(self.detail_json)

    @classmethod
    def _from_row(cls, row: Mapping[str, Any]) -> "AuditRecord":
        values = {name: row[name] for name in _COLUMNS}
        values["at"] = _parse_at(values["at"])
        values["detail_json"] = values.pop("detail")
        return cls(**values)


@dataclasses.dataclass(frozen=True)
class ChainVerdict:
    """The result of `verify()`: `checked` records were found intact before `first_broken`."""

    ok: bool
    checked: int
    first_broken: int | None = None
    reason: str | None = None


class UnsafeAuditField(Invalid, ValueError):
    """A value may not go into the audit log; the message names the field, never the value."""

    def __init__(self, field: str, problem: str) -> None:
        self.field = field
        self.problem = problem
        super().__init__(f"audit field {field} refused: {problem}")


# --------------------------------------------------------------------------- time


def _format_at(at: dt.datetime) -> str:
    if at.tzinfo is None or at.utcoffset() is None:
        raise ValueError("audit timestamps must be timezone-aware")
    return at.astimezone(dt.timezone.utc).isoformat(timespec="microseconds")


def _parse_at(text: str) -> dt.datetime:
    return dt.datetime.fromisoformat(text).astimezone(dt.timezone.utc)


def _utcnow() -> dt.datetime:
    return dt.datetime.now(dt.timezone.utc)


# --------------------------------------------------------------------------- hashing


def _canonical_json(value: Any) -> str:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False)


def _opaque(value: Any) -> str:
    # Only reached for values a tampered database smuggled in (bytes, odd types): never crash.
    return f"<{type(value).__name__}:{value!r}>"


def record_hash(fields: Mapping[str, Any], *, seq: int | None = None) -> str:
    """SHA-256 over the canonical serialisation of a stored record's fields and its prev_hash.

    `fields` are the stored column values (`at` and `detail` as the stored text). `seq` overrides
    the stored sequence number (used by verify() to tell a moved record from an edited one).
    """
    payload = {name: fields[name] for name in _COLUMNS if name != "record_hash"}
    if seq is not None:
        payload["seq"] = seq
    text = json.dumps(payload, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=_opaque)
    return hashlib.sha256((_HASH_DOMAIN + text).encode("utf-8")).hexdigest()


def _json_value(value: Any) -> Any:
    if isinstance(value, (dt.datetime, dt.date, dt.time)):
        return value.isoformat()
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, (bytes, bytearray, memoryview)):
        return bytes(value).hex()
    raise TypeError(f"cannot hash a value of type {type(value).__name__}")


def result_digest(obj: Any) -> str:
    """A SHA-256 hex digest of a result, for `append(result_hash=...)`.

    * bytes: the digest of the bytes themselves (the same as `sha256sum` of a file);
    * str: the digest of its UTF-8 encoding;
    * a pyarrow Table or RecordBatch, or a list of rows (dicts, tuples or lists): the digest of a
      canonical text form, one JSON line for the column names and one per row in order. A Table
      and the list of dicts `table.to_pylist()` give the same digest; chunking and integer or
      string widths do not matter, column order and row order do. Dates and times are hashed as
      ISO text, decimals as their text, bytes as hex.
    """
    if isinstance(obj, (bytes, bytearray, memoryview)):
        return hashlib.sha256(bytes(obj)).hexdigest()
    if isinstance(obj, str):
        return hashlib.sha256(obj.encode("utf-8")).hexdigest()
    digest = hashlib.sha256(_TABLE_DOMAIN.encode("utf-8"))

    def line(value: Any) -> None:
        text = json.dumps(value, separators=(",", ":"), ensure_ascii=False, default=_json_value)
        digest.update(text.encode("utf-8") + b"\n")

    if (type(obj).__module__ or "").startswith("pyarrow"):
        import pyarrow as pa

        if isinstance(obj, pa.RecordBatch):
            obj = pa.Table.from_batches([obj])
        if isinstance(obj, pa.Table):
            columns = list(obj.column_names)
            line({"columns": columns})
            for batch in obj.to_batches():
                for row in batch.to_pylist():
                    line([row[name] for name in columns])
            return digest.hexdigest()
    if isinstance(obj, (list, tuple)):
        return _rows_digest(digest, line, obj)
    raise TypeError(f"result_digest cannot hash a {type(obj).__name__}")


def _rows_digest(digest: Any, line: Any, rows: list[Any] | tuple[Any, ...]) -> str:
    columns: list[str] | None = None
    if rows and isinstance(rows[0], Mapping):
        columns = list(rows[0].keys())
    line({"columns": columns})
    for row in rows:
        if isinstance(row, Mapping):
            if columns is None or list(row.keys()) != columns:
                raise ValueError("rows of a result must all have the same columns, in the same order")
            line([row[name] for name in columns])
        elif isinstance(row, (list, tuple)) and columns is None:
            line(list(row))
        else:
            raise TypeError("a result's rows must be all dicts or all tuples/lists")
    return digest.hexdigest()


# --------------------------------------------------------------------------- privacy guard

_HETU = IDENTITY_CODE  # the one pattern of identity codes, in any spelling
_UUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}", re.IGNORECASE)
_HEX_RUN = re.compile(r"[0-9a-f]{32,}", re.IGNORECASE)
_B64_RUN = re.compile(r"[A-Za-z0-9+/_-]{32,}={0,2}")
_SECRET_WORDS = ("password", "passwd", "passphrase", "secret", "token", "credential", "apikey", "privatekey")
_SECRET_PARTS = frozenset({"key", "keys", "pwd", "pass"})
_CAMEL = re.compile(r"(?<=[a-z0-9])(?=[A-Z])")
# Detail keys that may hold a SHA-256 hex digest (nothing else long and hex is allowed there).
_DIGEST_KEY_SUFFIXES = ("_hash", "_sha256", "_digest")
_DIGEST_KEYS = frozenset({"query_signature"})


def _entropy(text: str) -> float:
    counts = collections.Counter(text)
    n = len(text)
    return -sum(c / n * math.log2(c / n) for c in counts.values())


def _class_changes(text: str) -> float:
    def kind(ch: str) -> str:
        return "u" if ch.isupper() else "l" if ch.islower() else "d" if ch.isdigit() else "o"

    return sum(kind(a) != kind(b) for a, b in zip(text, text[1:])) / (len(text) - 1)


def _looks_random(token: str) -> bool:
    # Calibrated on random base64 of 24+ bytes (caught in all but ~1 in 1,000 cases at 32
    # characters, always at 44) against long identifiers such as register and variable names.
    # An absolute path (a leading '/' and at least three) is judged part by part: a long path of
    # plain names reaches the entropy of random text, a key hidden in it still stands out (random
    # base64 looks like such a path about once in 20,000 cases at 44 characters).
    if token.startswith("/") and token.count("/") >= 3:
        return any(_random_part(part) for part in token.split("/"))
    return _entropy(token) >= 4.3 or _class_changes(token) >= 0.45


def _random_part(part: str) -> bool:
    return (len(part) >= 8 and _class_changes(part) >= 0.5 and any(c.isupper() for c in part)
            and any(c.islower() for c in part) and any(c.isdigit() for c in part))


def _string_problem(text: str) -> str | None:
    if _HETU.search(text):
        return "it contains what looks like a personal identity code"
    stripped = _UUID.sub("-", text)
    if _HEX_RUN.search(stripped):
        return "it contains a long hexadecimal string that looks like a key or secret"
    for match in _B64_RUN.finditer(stripped):
        if _looks_random(match.group(0).rstrip("=")):
            return "it contains a long random-looking string that looks like a key or secret"
    return None


def _secret_key_name(name: str) -> bool:
    lowered = name.lower()
    compact = re.sub(r"[^a-z0-9]", "", lowered)
    if any(word in compact for word in _SECRET_WORDS):
        return True
    parts = re.split(r"[^a-z0-9]+", _CAMEL.sub("_", name).lower())
    return any(part in _SECRET_PARTS for part in parts)


def _check_string(field: str, value: str) -> None:
    problem = _string_problem(value)
    if problem:
        raise UnsafeAuditField(field, problem)


def _check_detail(path: str, value: Any, *, key: str | None = None) -> Any:
    """Check a detail value recursively; returns it in JSON-ready form (dates as ISO text)."""
    if value is None or isinstance(value, bool):
        return value
    if isinstance(value, int):
        return value
    if isinstance(value, float):
        if not math.isfinite(value):
            raise ValueError(f"audit field {path} must be a finite number")
        return value
    if isinstance(value, str):
        if key is not None and (key in _DIGEST_KEYS or key.endswith(_DIGEST_KEY_SUFFIXES)):
            if _DIGEST.match(value):
                return value
        _check_string(path, value)
        return value
    if isinstance(value, (dt.datetime, dt.date, dt.time)):
        return value.isoformat()
    if isinstance(value, Mapping):
        out: dict[str, Any] = {}
        for k, v in value.items():
            if not isinstance(k, str):
                raise TypeError(f"audit field {path}: keys must be strings")
            problem = _string_problem(k)
            if problem:
                raise UnsafeAuditField(f"{path} (one of its keys)", problem)
            if _secret_key_name(k):
                raise UnsafeAuditField(f"{path}.{k}", "keys named like a password, secret, token or key are not allowed")
            out[k] = _check_detail(f"{path}.{k}", v, key=k)
        return out
    if isinstance(value, (list, tuple)):
        return [_check_detail(f"{path}[{i}]", v) for i, v in enumerate(value)]
    raise TypeError(f"audit field {path}: a {type(value).__name__} cannot be stored")


def _check_plain(field: str, value: Any, *, required: bool) -> None:
    if value is None:
        if required:
            raise ValueError(f"audit field {field} is required")
        return
    if not isinstance(value, str):
        raise TypeError(f"audit field {field} must be text")
    if required and not value.strip():
        raise ValueError(f"audit field {field} must not be empty")
    _check_string(field, value)


# --------------------------------------------------------------------------- the log


class AuditLog:
    """The append-only, hash-chained audit log in the workspace's metadata database.

    `anchors` (an `AnchorStore` in the workspace's steward zone) keeps the chain's head outside
    the database; without it the log checks its chain alone.
    """

    def __init__(self, engine: Engine, anchors: AnchorStore | None = None) -> None:
        self._engine = engine
        self._dialect = engine.dialect.name
        self.anchors = anchors
        self._local = threading.local()
        if self._dialect not in ("sqlite", "postgresql"):
            raise ValueError(f"the audit log supports SQLite and PostgreSQL, not {self._dialect}")
        if self._dialect == "sqlite":
            with engine.connect() as conn:
                synchronous = conn.exec_driver_sql("PRAGMA synchronous").scalar()
            if synchronous is None or int(synchronous) < 2:
                raise ValueError(
                    "the audit log needs SQLite with synchronous=FULL: open the engine with "
                    "safepool.governance.db.connect_engine"
                )

    @property
    def engine(self) -> Engine:
        return self._engine

    # ----------------------------------------------------------------- writing

    @contextmanager
    def _append_transaction(self) -> Iterator[Connection]:
        """One transaction that holds the log's write lock from before the head is read."""
        if self._dialect == "sqlite":
            with self._engine.connect() as conn:
                # Let us issue BEGIN ourselves: pysqlite would otherwise open a deferred
                # transaction, in which two writers could both read the same head.
                conn.execution_options(isolation_level="AUTOCOMMIT")
                conn.exec_driver_sql("BEGIN IMMEDIATE")
                try:
                    yield conn
                    conn.exec_driver_sql("COMMIT")
                except BaseException:
                    if conn.connection.driver_connection.in_transaction:
                        try:
                            conn.exec_driver_sql("ROLLBACK")
                        except Exception:  # the original error matters more
                            pass
                    raise
        else:
            with self._engine.begin() as conn:
                conn.exec_driver_sql("LOCK TABLE audit_records IN EXCLUSIVE MODE")
                yield conn

    @contextmanager
    def transaction(self) -> Iterator[AuditTransaction]:
        """One transaction for a state change and its audit records: both commit, or neither.

        It holds the log's write lock from its start (SQLite: BEGIN IMMEDIATE; PostgreSQL: an
        EXCLUSIVE lock on audit_records), so every writer that goes through it is serialised:
        what it reads through `tx.conn` is what it changes. Write the state through `tx.conn`
        and the records with `tx.append(...)`. A refusal or conflict found inside is made with
        `tx.refuse(...)` / `tx.conflict(...)` and raised: the transaction is rolled back and the
        refusal is audited afterwards in its own transaction. Nothing else may append to this log
        from the same thread while the transaction is open (that would wait for its own lock).
        After the commit each record is witnessed, and anchored when due (see `anchors`).
        """
        if getattr(self._local, "open", False):
            raise RuntimeError("an audit transaction is already open in this thread")
        tx: AuditTransaction | None = None
        self._local.open = True
        try:
            with self._append_transaction() as conn:
                tx = AuditTransaction(self, conn)
                yield tx
        except BaseException as error:
            self._local.open = False
            pending = getattr(error, "_audit_after_rollback", None)
            if pending is not None:
                del error._audit_after_rollback  # type: ignore[attr-defined]
                self.append(**pending)
            raise
        finally:
            self._local.open = False
        if self.anchors is not None and tx is not None:
            self.anchors.committed(tx.heads, release=tx.release)

    def append(self, **fields: Any) -> AuditRecord:
        """Append one record in a transaction of its own and return it once it is durably committed.

        The fields are `AuditTransaction.append`'s: `actor`, `role` and `action` (required),
        `permit`, `target` (what was touched: a register, an output id, never data), `rows` (a
        count), `result_hash` (a SHA-256 hex digest, see `result_digest`), `outcome` ('ok' by
        default), `detail` (a JSON-able mapping, stored canonically) and `at` (default now, taken
        under the write lock so that times follow `seq`; a given `at` must be timezone-aware).
        Raises `UnsafeAuditField` for anything that looks like an identity code or a secret.
        """
        if getattr(self._local, "open", False):
            raise RuntimeError("append inside an open audit transaction: use the transaction's append")
        with self.transaction() as tx:
            return tx.append(**fields)

    def anchor(self, why: str = "asked for") -> AuditRecord | None:
        """Write the current head to the anchors file now (and return it); None for an empty log."""
        head = self.head()
        if head is not None and self.anchors is not None:
            self.anchors.anchor(head.seq, head.record_hash, why)
        return head

    # ----------------------------------------------------------------- reading

    def records(
        self,
        user: str | None = None,
        permit: str | None = None,
        action: str | None = None,
        outcome: str | None = None,
        since: dt.datetime | None = None,
        until: dt.datetime | None = None,
    ) -> list[AuditRecord]:
        """Records in `seq` order, filtered by actor, permit, action, outcome and time.

        `since` is inclusive and `until` exclusive; both must be timezone-aware.
        """
        t = audit_records.c
        query = select(audit_records).order_by(t.seq)
        if user is not None:
            query = query.where(t.actor == user)
        if permit is not None:
            query = query.where(t.permit == permit)
        if action is not None:
            query = query.where(t.action == action)
        if outcome is not None:
            query = query.where(t.outcome == outcome)
        if since is not None:
            query = query.where(t.at >= _format_at(since))
        if until is not None:
            query = query.where(t.at < _format_at(until))
        with self._engine.connect() as conn:
            return [AuditRecord._from_row(row._mapping) for row in conn.execute(query)]

    def head(self) -> AuditRecord | None:
        """The latest record (keep its seq and record_hash elsewhere as an anchor), or None."""
        with self._engine.connect() as conn:
            row = conn.execute(select(audit_records).order_by(audit_records.c.seq.desc()).limit(1)).first()
        return AuditRecord._from_row(row._mapping) if row else None

    def _stored_rows(self, batch: int = 2000) -> Iterator[dict[str, Any]]:
        last = 0
        while True:
            query = (
                select(audit_records)
                .where(audit_records.c.seq > last)
                .order_by(audit_records.c.seq)
                .limit(batch)
            )
            with self._engine.connect() as conn:
                rows = [dict(row._mapping) for row in conn.execute(query)]
            yield from rows
            if len(rows) < batch:
                return
            last = rows[-1]["seq"]

    def verify(self, anchor: AuditRecord | tuple[int, str] | None = None) -> ChainVerdict:
        """Recompute the whole chain and compare it with the anchors kept outside the database;
        name the first broken record and why.

        `anchor` is an earlier `head()` (or its `(seq, record_hash)`) kept elsewhere, e.g. the
        `audit_anchor` of a release's MANIFEST.json: it is checked as well.
        """
        if isinstance(anchor, AuditRecord):
            anchor = (anchor.seq, anchor.record_hash)
        claims = self.anchors.claims() if self.anchors is not None else {}
        if anchor is not None:
            claims = merge_claims(claims, {anchor[0]: [Claim(anchor[0], anchor[1], "saved anchor")]})
        return verify_rows(self._stored_rows(), claims=claims, stored_as=self._stored_as)

    def _stored_as(self, digest: str, before: int) -> int | None:
        """The seq of the earliest stored record before `before` whose hash is `digest`, if any
        (a full scan: asked only for a record that broke the chain)."""
        t = audit_records.c
        with self._engine.connect() as conn:
            return conn.execute(select(t.seq).where(t.record_hash == digest, t.seq < before)
                                .order_by(t.seq).limit(1)).scalar()


class AuditTransaction:
    """An open `AuditLog.transaction()`: its connection, and appends that commit with it."""

    def __init__(self, log: AuditLog, conn: Connection) -> None:
        self.log = log
        self.conn = conn
        self.heads: list[tuple[int, str]] = []
        self.release: str | None = None  # set by a release: its record is anchored after the commit

    def head(self) -> tuple[int, str]:
        """(seq, record_hash) of the latest record as this transaction sees it; (0, genesis) if none."""
        row = self.conn.execute(
            select(audit_records.c.seq, audit_records.c.record_hash).order_by(audit_records.c.seq.desc()).limit(1)
        ).first()
        return (row.seq, row.record_hash) if row else (0, GENESIS_HASH)

    def append(
        self,
        *,
        actor: str,
        role: str,
        action: str,
        permit: str | None = None,
        target: str | None = None,
        rows: int | None = None,
        result_hash: str | None = None,
        outcome: Outcome = "ok",
        detail: Mapping[str, Any] | None = None,
        at: dt.datetime | None = None,
    ) -> AuditRecord:
        """Append one record inside the transaction (the fields are described at `AuditLog.append`);
        it is committed with the transaction's other changes, or not at all."""
        detail_json = _checked_fields(actor=actor, role=role, action=action, permit=permit, target=target,
                                      rows=rows, result_hash=result_hash, outcome=outcome, detail=detail)
        seq, prev = self.head()
        fields: dict[str, Any] = {
            "seq": seq + 1,
            "at": _format_at(at) if at is not None else _format_at(_utcnow()),
            "actor": actor,
            "role": role,
            "action": action,
            "permit": permit,
            "target": target,
            "rows": rows,
            "result_hash": result_hash,
            "outcome": outcome,
            "detail": detail_json,
            "prev_hash": prev,
        }
        fields["record_hash"] = record_hash(fields)
        self.conn.execute(audit_records.insert().values(**fields))
        self.heads.append((fields["seq"], fields["record_hash"]))
        return AuditRecord._from_row(fields)

    def refuse(self, actor: str, role: str, action: str, reason: str, *, permit: str | None = None,
               target: str | None = None) -> Refused:
        """The error to raise for a refusal found inside the transaction: raising it rolls the
        transaction back, then the refusal is audited (outcome 'refused') in its own."""
        return _after_rollback(Refused(f"{action} refused: {reason}"), actor=actor, role=role, action=action,
                               permit=permit, target=target, outcome="refused", detail={"reason": reason})

    def conflict(self, actor: str, role: str, action: str, what: str, *, permit: str | None = None,
                 target: str | None = None) -> Conflict:
        """The error to raise when the state read before the transaction changed meanwhile (another
        action won): rolled back, then audited with outcome 'error' and reason 'conflict'."""
        return _after_rollback(
            Conflict(f"{action}: {what} changed while this action was being made; look again and retry"),
            actor=actor, role=role, action=action, permit=permit, target=target, outcome="error",
            detail={"reason": "conflict", "changed": what})

    def compare_and_set(self, table: Table, key: Mapping[str, Any], expected: Mapping[str, Any],
                        values: Mapping[str, Any]) -> bool:
        """UPDATE table SET values WHERE key AND expected: True when exactly the row read was changed,
        False when it no longer holds what was read (the caller raises `conflict`)."""
        condition = [table.c[name] == value for name, value in {**key, **expected}.items()]
        result = self.conn.execute(table.update().where(*condition).values(**values))
        return result.rowcount == 1


def _after_rollback(error: E, **record: Any) -> E:
    error._audit_after_rollback = record  # type: ignore[attr-defined]
    return error


def _checked_fields(*, actor: str, role: str, action: str, permit: str | None, target: str | None,
                    rows: int | None, result_hash: str | None, outcome: str,
                    detail: Mapping[str, Any] | None) -> str:
    """Check a record's fields (privacy guard included); return its canonical detail JSON."""
    _check_plain("actor", actor, required=True)
    _check_plain("role", role, required=True)
    _check_plain("action", action, required=True)
    _check_plain("permit", permit, required=False)
    _check_plain("target", target, required=False)
    if outcome not in OUTCOMES:
        raise ValueError(f"audit field outcome must be one of {', '.join(OUTCOMES)}")
    if rows is not None and (isinstance(rows, bool) or not isinstance(rows, int) or rows < 0):
        raise ValueError("audit field rows must be a count (an integer >= 0)")
    if result_hash is not None and (not isinstance(result_hash, str) or not _DIGEST.match(result_hash)):
        raise UnsafeAuditField("result_hash", "it must be a SHA-256 digest (64 lowercase hex digits)")
    if detail is not None and not isinstance(detail, Mapping):
        raise TypeError("audit field detail must be a mapping")
    return _canonical_json(_check_detail("detail", dict(detail or {})))


# --------------------------------------------------------------------------- verification

_LOOK = 64  # how far verify() looks around a break to tell a move or insertion from an edit


class _Lookahead:
    def __init__(self, rows: Iterable[Mapping[str, Any]]) -> None:
        self._rows = iter(rows)
        self._buffer: collections.deque[Mapping[str, Any]] = collections.deque()

    def next(self) -> Mapping[str, Any] | None:
        if self._buffer:
            return self._buffer.popleft()
        return next(self._rows, None)

    def peek(self, k: int) -> Mapping[str, Any] | None:
        """The k-th row after the current one (k >= 1), or None past the end."""
        while len(self._buffer) < k:
            row = next(self._rows, None)
            if row is None:
                return None
            self._buffer.append(row)
        return self._buffer[k - 1]


def _hashes_as(row: Mapping[str, Any], seq: int) -> bool:
    try:
        return record_hash(row, seq=seq) == row["record_hash"]
    except Exception:
        return False


def _missing(first: int, last: int, suffix: str = "") -> str:
    if first == last:
        return f"record {first} is missing (deleted{suffix})"
    return f"records {first} to {last} are missing (deleted{suffix})"


def _inserted(count: int, before: int) -> str:
    if count == 1:
        return f"a record was inserted before {before}"
    return f"{count} records were inserted before {before}"


def verify_rows(
    rows: Iterable[Mapping[str, Any]],
    *,
    anchor: tuple[int, str] | None = None,
    claims: Mapping[int, list[Claim]] | None = None,
    stored_as: Callable[[str, int], int | None] | None = None,
) -> ChainVerdict:
    """Verify stored audit rows (column name -> stored value) given in ascending `seq` order.

    `claims` are what is kept outside the database about record hashes (the anchors and the
    witness, see safepool.governance.anchors), `anchor` one saved head: each record they name
    must have that hash, and none of them may name a record past the end. `stored_as(hash, i)`,
    when given, finds an earlier record by its hash, so that a copy of a record from anywhere
    before is named as a replay (without it, only copies of the records shortly before are).

    This is what `AuditLog.verify()` runs; it also serves an exported copy of the log.
    """
    if anchor is not None:
        claims = merge_claims(claims or {}, {anchor[0]: [Claim(anchor[0], anchor[1], "saved anchor")]})
    claims = claims or {}
    window = _Lookahead(rows)
    history: dict[int, str] = {0: GENESIS_HASH}  # position -> record_hash of accepted records
    recent: collections.deque[int] = collections.deque()
    expected = 1
    prev = GENESIS_HASH

    def broken(first: int, reason: str) -> ChainVerdict:
        return ChainVerdict(ok=False, checked=max(first - 1, 0), first_broken=first, reason=reason)

    while (row := window.next()) is not None:
        i = expected
        seq = row.get("seq")
        if not isinstance(seq, int) or seq < i:
            return broken(i, f"record {i} has a malformed sequence number")
        if seq > i:
            return broken(i, _missing(i, seq - 1))
        own = _hashes_as(row, i)
        link = row.get("prev_hash") == prev
        if own and link:
            unmet = [c for c in claims.get(i, ()) if not c.holds_for(row["record_hash"])]
            if unmet:
                return broken(i, _unanchored(i, unmet, claims, window))
            history[i] = row["record_hash"]
            recent.append(i)
            if len(recent) > _LOOK + 1:
                history.pop(recent.popleft(), None)
            prev = row["record_hash"]
            expected += 1
            continue
        return _diagnose(i, row, prev, history, window, broken, stored_as)

    last = expected - 1
    beyond = [c for seq, found in claims.items() if seq > last for c in found]
    if beyond:
        furthest = max(c.seq for c in beyond)
        if all(c.source == "saved anchor" for c in beyond):
            why = "; the log was cut short after the anchor was taken"
        else:
            why = f"; the log was cut short: the anchors kept outside the database reach record {furthest}"
        return broken(last + 1, _missing(last + 1, furthest, why))
    return ChainVerdict(ok=True, checked=last)


def _unanchored(i: int, unmet: list[Claim], claims: Mapping[int, list[Claim]], window: _Lookahead) -> str:
    """Record i is well chained but not what the anchors say record i is: name how, if we can."""
    following = window.peek(1)
    if following is not None and all(c.holds_for(following.get("record_hash")) for c in claims.get(i, ())):
        return _inserted(1, i)
    if len(unmet) < len(claims.get(i, ())):  # another record i was witnessed before this one
        return (f"record {i} is not the first record {i} written: the records from {i} on were cut off the end "
                "and new records were written in their place")
    if all(c.source == "saved anchor" for c in unmet):
        return f"record {i} does not match the saved anchor (the log was rewritten)"
    return (f"record {i} does not match its anchor kept outside the database: it was changed, or records "
            "were removed, slipped in or moved at this point, and every hash after it was recomputed")


def _diagnose(
    i: int,
    row: Mapping[str, Any],
    prev: str,
    history: Mapping[int, str],
    window: _Lookahead,
    broken: Any,
    stored_as: Callable[[str, int], int | None] | None = None,
) -> ChainVerdict:
    """Record i failed its own hash or its link to i-1: work out the most likely cause."""
    if _hashes_as(row, i):
        # Its own hash is right, so it was written (or re-hashed) as record i; the link to i-1
        # is what fails. Either i-1 was edited and re-hashed, or i-1 was slipped in and
        # hashed properly while this record was renumbered and re-hashed.
        if i == 1:
            return broken(1, "record 1 was edited (its link to the start of the chain was changed)")
        if history.get(i - 2) == row.get("prev_hash"):
            return broken(i - 1, _inserted(1, i - 1))
        return broken(i - 1, f"record {i - 1} was edited (its hash was recomputed; record {i} no longer links to it)")

    # Its own hash is wrong. Was it written under another sequence number?
    for distance in range(1, _LOOK + 1):
        for s in (i + distance, i - distance):
            if s < 1 or not _hashes_as(row, s):
                continue
            if s > i:
                other = window.peek(s - i)
                if other is not None and other.get("seq") == s and _hashes_as(other, i):
                    return broken(i, f"records {i} and {s} are out of order")
                following = window.peek(1)
                renumbered = following is None or _hashes_as(following, s + 1)
                if row.get("prev_hash") != prev and renumbered:
                    return broken(i, _missing(i, s - 1, "; the records after it were renumbered"))
                return broken(i, f"records {i} and {s} are out of order")
            # s < i: this record was written as s. If it is record s itself, it was replayed
            # (copied in again); otherwise records in front of it were slipped in.
            if history.get(s) == row.get("record_hash"):
                return broken(i, f"record {i} is a copy of record {s} (replayed)")
            if history.get(s - 1) == row.get("prev_hash"):
                return broken(s, _inserted(i - s, s))
            return broken(s, f"records {s} and {i} are out of order")

    # A copy of a record from further back than the look-around reaches?
    digest = row.get("record_hash")
    original = stored_as(digest, i) if stored_as is not None and isinstance(digest, str) else None
    if original is not None and _hashes_as(row, original):
        return broken(i, f"record {i} is a copy of record {original} (replayed)")

    # Not a moved record. Were records slipped in before i without proper hashes?
    for distance in range(1, _LOOK + 1):
        other = window.peek(distance)
        if other is None:
            break
        if other.get("prev_hash") == prev and _hashes_as(other, i):
            return broken(i, _inserted(distance, i))
    return broken(i, f"record {i} was edited")
