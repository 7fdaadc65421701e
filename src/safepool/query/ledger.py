"""The differencing memory of the workspace's answered queries, one query at a time, bound to its record.

One ledger for every permit
---------------------------
The query engine checks every answer, of any permit, against one ledger (`WORKSPACE_LEDGER`):
an analyst of two permits whose pools hold the same persons could otherwise ask a question in one
and the same question without one person in the other, and subtract (a review read a person's
number of children so). Each pool knows its persons by its own pseudonyms; the ledger knows them
by their ledger keys, the same in every pool of the workspace (`safepool.pool.ledger_keys`: made
by the steward zone from the identity code under a workspace secret), which the engine looks up
for each cell's persons. So analysts of different permits, and different analysts, are checked
against each other's answers too: once shown, an answer can be passed on. The ledger's own tests
open ledgers of other names (a permit's, as they were kept before), which work alike.

What it remembers
-----------------
Answers whose cells hold almost the same persons give away the few who differ: the sum over a
group minus the sum over the same group without one person is that person's value, and with
three answers "everyone" minus "women but one" minus "men" is too. For every cell an answer
shows (and every total and sum of shown cells a reader can add up), the ledger keeps each
person's contribution (persons with rows in the cell, even when their values add up to zero),
keyed by the person's ledger key; a total that adds up shown cells of its column is kept as
those cells where it can be (`safepool.query.ledger_sums`: its rows are theirs). A new answer is
checked three ways against what was shown before:

- pairs: a new cell is compared with every remembered one; when the persons whose contribution
  differs (present in one and not the other, or present in both with another value) number
  between one and the minimum frequency minus one, the two cells would reveal them;
- all answers together (`safepool.query.audit_algebra`): no combination of every shown cell,
  added and subtracted, may give away a class of fewer persons than the minimum frequency;
- groups (`safepool.query.group_audit`, within the all-answers audit): no combination of the
  counts shown (cells whose persons' values are all one value), nor of sums whose persons
  contribute the same amount to each (`safepool.query.value_families`), may pin down a group of
  fewer persons than the minimum frequency, even one that other answers split into persons of
  their own (three answers left four women, their number and their children, after a table by
  year of birth had put each in a cell of her own; three sums alone left their children).

A study's effect rows also enter as sums of a family only (`check`'s `family`, kept in the
file's table `family_only`): each person with the amount the row adds up for it, taken by the
group audit of families of sums alone, so that a row and queries adding up the same values over
nearly the same clients are found, either way round. A member of a study's row may be a part of a
person (a control matched in two sets at other times: its rows in two quarters, or two baseline
values); the row tells whose (`check`'s owners, kept in the table `member_owners`), and the group
audits count persons, not members.

The second check finds every single person the first one finds; the first also finds a group
of two to four persons that two cells single out when other answers tell those persons apart
(the algebra looks at groups that no answer tells apart, the group audit at set differences of
counts and of sums of one amount). `check` names the cells that fail
any check, and the query engine hides them as cells of too few persons are hidden and asks
again with what it would show then; an answer is remembered only when nothing is found. A cell
also carries its definition (`safepool.query.definitions`): one with the
persons of a remembered cell is that cell asked again only under the same definition, and is
close otherwise (an empty difference: it differs by no one, which tells as much as one); any
other combination of cells whose contributions cancel and whose definitions do not imply it is
found by `safepool.query.empty_differences` inside the all-answers audit. A cell the all-answers
audit found is kept as withheld (table `withheld`: its definition, size and signature, chained
into the digest with the next change): asked again under its definition, the comparison finds it
and it is hidden as it was, without the audit, in the steps a small cell takes (a repeat tells
no more than the first answer; under another definition the persons are checked again). Cells remembered
before definitions were kept have none, so no later cell is the same question as one of them.
The algebra assumes what the ledger holds passed it. A quantile enters as its
window's sum and count (a local mean is one over the other), like a mean. Not covered: a
combination that is exactly zero for a person who contributes elsewhere (it tells that some of
that person's rows add up to zero). The file
(<pool_dir>/.query-ledger/<name>.duckdb) lives beside the pools, in the same protected area
as the ledger keys it is keyed by; it is never an output and never leaves the pool. A process
attaches it in the one DuckDB instance it keeps for that folder (`safepool.duckdb_connection`),
which reaches no file outside the folder and spills into it too.

One query at a time, every analyst served
-----------------------------------------
`Ledger.open(pool_dir, governance, actor, name, permit=...)` is the only way in. It takes a
turn on the ledger (`safepool.query.ledger_turn`: an exclusive `fcntl.flock` on <name>.lock
beside the file, across processes, and a lock of the process for its threads) and waits for it,
up to `LOCK_TIMEOUT` seconds, before it fails with `LedgerBusy`. The caller does everything that
must not interleave with another query inside the block: check, record the outputs, append the
audit record (with `state()`). Several analysts, of one permit or of several, can query at once:
they queue, and nobody fails because another is querying. A check that searches for the cells
to hide lets other processes take their turn while it searches (see `check`). The lock is
advisory and local: the pool directory must be on a local file system.

Bound to its record
-------------------
The metadata store (`safepool.governance.ledger_state`, migration 0003) keeps, per ledger (its
name in the column `permit`), the number of remembered cells and a SHA-256 chained over every
remembered cell's canonical content (its number, then its persons and values sorted), starting
from a digest of the ledger's name;
the file keeps the same (cells, digest) beside its own rows. On open, under the lock, the file
must hold exactly the recorded state and its tables must agree with it (cells numbered 1..N,
as many contribution rows as its state says). A missing file when cells were remembered, a
file with no record (unless it is empty and nothing in the audit log says this ledger
remembered anything), another ledger's file, an older copy, an unreadable or edited file: each
marks the ledger's record stopped, appends an audit record (action `query_ledger_mismatch`,
outcome `refused`, under the permit asked) and raises `LedgerTampered`. A stopped ledger stays
stopped: every later open (for the workspace's, every query of the workspace) is refused and
audited the same way, even if the right file comes back, until a data security officer
investigates; the ledger is never recreated quietly. A fresh ledger (no record, no file, no
state of it in the audit log) starts empty. `verify_contents()`
recomputes the digest from every remembered row (the open only checks the stored state and
row counts, which keeps it fast however large the ledger grows).

A process that has just left the file at its record's state keeps the remembered cells in
memory (`safepool.query.ledger_memory`) and notes the file as it left it (`file_fingerprint`:
device, inode, size, modification and change times, and a hash of DuckDB's headers and of any
write-ahead log). Its next open under the lock, with the record still at that state and the file
exactly as noted, trusts the memory and opens the file only when the query needs it (a new cell
to remember), checking the file's state then; a question asked again reads and
writes nothing in it. Any write, rename, copy or touch changes the fingerprint, and the open
checks the file in full as above.

A crash cannot leave it inconsistent without saying so. Remembering is three steps under the
lock, after the update is written into a DuckDB transaction of the file that is not yet
committed (rows and the file's own state together; `check` writes it on a thread beside the
all-answers audit, and rolls it back when a cell is found): (1) the record gets the pending
state (pending_cells, pending_digest) the update will reach, (2) the transaction commits, (3)
the record's state becomes the pending one. A crash before (2) commits leaves the file at the
recorded state: the next open drops the pending state. A crash after (2) leaves the file at the
pending state: the next open rolls the record forward (remembering more is never unsafe).
Either recovery is audited (action `query_ledger_recovered`, outcome `ok`). Any other
difference is a mismatch. A crash never leaves the lock held: the kernel releases it with the
process.

What the audit log needs (written by the query engine)
------------------------------------------------------
A query of which the ledger hid cells is appended with action "query", outcome "withheld"
(`WITHHELD`; `query_outcome(hidden)` picks "ok" or "withheld") and a detail holding
`query_sha256`, `withheld` (`withheld_entries(...)`: [{"column": 1-based position, "measure":
its kind, "cells": how many of its cells, "check": "differencing (pairs)", "differencing (all
answers)" or both}]) and the ledger's
`state()` ({"ledger": its name, "ledger_cells": N, "ledger_digest": hex}). The differencing alert
(`safepool.governance.alerts`) fires on those records.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import os
import re
import struct
from collections.abc import Callable, Collection, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any, NamedTuple

import duckdb
import numpy as np
import pandas as pd
import pyarrow as pa
from sqlalchemy import Engine, select, update

from safepool.duckdb_connection import attach_duckdb, detach_duckdb, prepare_instance
from safepool.governance.context import Governance
from safepool.governance.ledger_state import ACTIVE, STOPPED, query_ledgers_table
from safepool.governance.users import Actor
from safepool.pool.ledger_keys import LEDGER_DIR, WORKSPACE_LEDGER
from safepool.query import ledger_memory
from safepool.query.cell_numbers import by_cell, distinct_numbers, places_among
from safepool.query.deadline import AUDIT_STEP, time_left
from safepool.query.definitions import EntryDefinitions
from safepool.query.empty_differences import Identity, implied_relations
from safepool.query.ledger_pairs import RememberedCells, near_pairs
from safepool.query.ledger_sums import cell_rows, in_cell_order, ranks_of, split_sums, sum_signatures, \
    with_sum_rows
from safepool.query.ledger_turn import LedgerBusy, LedgerTurn
from safepool.query.side_thread import SideThread
from safepool.faults import Invalid, Refused

LOCK_TIMEOUT = 60.0          # seconds a query waits for its turn on the ledger
PAIRS = "pairs"              # a new cell and a remembered one differ by too few persons
ALL_ANSWERS = "all answers"  # a combination of all shown cells gives away too few persons
WITHHELD = "withheld"        # the audit outcome of a query answered with cells the ledger hid
MISMATCH_ACTION = "query_ledger_mismatch"
RECOVERED_ACTION = "query_ledger_recovered"
_SIGNATURE_DECIMALS = 6      # values equal to this many decimals sign a cell alike
_DOMAIN = b"safepool.query-ledger.v1\n"
_HEX_DIGEST = re.compile(r"^[0-9a-f]{64}$")
_LEDGER_NAME = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9._-]{0,199}$")
# each remembered entry: a cell's entries come together (runs of one number), and the persons are
# ledger keys (random 64-bit numbers, which no lightweight scheme makes smaller by much): kept as
# they are rather than analysed for a scheme at every write
_CONTRIBUTIONS = ("CREATE TABLE contributions (cell BIGINT USING COMPRESSION rle, "
                  "person UBIGINT USING COMPRESSION uncompressed, value DOUBLE)")
_SUM_MEMBERS = "CREATE TABLE IF NOT EXISTS sum_members (cell BIGINT, member BIGINT)"  # a sum's cells, one row each
# cells the all-answers audit found, never shown: hidden again when asked again (the same definition,
# persons and values)
_WITHHELD = ("CREATE TABLE IF NOT EXISTS withheld (position BIGINT, after BIGINT, size BIGINT, signature UBIGINT, "
             "definition VARCHAR)")
# cells of a family only (a study's rows as the sums a query would add up): see `check`
_FAMILY_ONLY = "CREATE TABLE IF NOT EXISTS family_only (cell BIGINT)"
# members of cells that are parts of a person, with the person's ledger key: see `check`
_MEMBER_OWNERS = "CREATE TABLE IF NOT EXISTS member_owners (cell BIGINT, member UBIGINT, owner UBIGINT)"
# what `_write` may hand the file's connection, and the statement that takes each into its table
_INSERTS = {
    "incoming": "INSERT INTO contributions SELECT cell, person, value FROM incoming",
    "definitions": "INSERT INTO sum_members SELECT cell, member FROM definitions",
    "withheld_now": "INSERT INTO withheld SELECT position, after, size, signature, definition FROM withheld_now",
    "family_now": "INSERT INTO family_only SELECT cell FROM family_now",
    "owners_now": "INSERT INTO member_owners SELECT cell, member, owner FROM owners_now",
    "sizes": "INSERT INTO cells (cell, size, signature, definition) SELECT cell, size, signature, definition FROM sizes",
}


@dataclass
class _Change:
    """Cells to remember: their rows as numbered (and in the file's order), what the file's tables
    get, and the state the ledger is in once they are remembered."""

    cell: np.ndarray
    person: np.ndarray
    value: np.ndarray
    order: np.ndarray
    columns: dict[str, np.ndarray]
    sizes: pd.DataFrame
    definitions: dict[int, list[int]]
    withheld: pd.DataFrame  # position, after, size, signature
    cells: int
    rows: int
    digest: str
    sums: np.ndarray
    family: np.ndarray  # the cells of a family only, numbered as remembered
    owner: np.ndarray | None  # per row (in the order of `cell`): the person its member is part of, if any
    owners: pd.DataFrame  # cell, member, owner of the members that are parts of a person, sorted
    pending: bool = False  # its state is recorded as the pending one (`_set_pending`)


def _checkpoint(cursor: duckdb.DuckDBPyConnection, name: str) -> None:
    """Move the committed changes from the write-ahead log into the file attached as `name` (on a
    cursor of its own)."""
    try:
        cursor.execute(f"CHECKPOINT {name}")
    finally:
        cursor.close()


class LedgerTampered(Refused):
    """The ledger does not match its record: the queries checked against it are stopped."""


def genesis_digest(name: str) -> str:
    """The digest of an empty ledger: bound to its name, so another ledger's file never fits."""
    return hashlib.sha256(_DOMAIN + name.encode("utf-8")).hexdigest()


def chain_digest(digest: str, frame: pd.DataFrame, defined: Mapping[int, Sequence[int]] | None = None,
                 definitions: Mapping[int, str | None] | None = None,
                 withheld: Iterable[tuple[int, int, int, int, str | None]] = (), family: Collection[int] = (),
                 owners: pd.DataFrame | None = None) -> str:
    """`digest` chained over the cells of `frame` (columns cell, person, value; sorted by cell,
    person and value, cells numbered as remembered) and the cells `defined` as sums of others, in
    the order of their numbers: per cell, SHA-256 of the previous digest and, for a cell of rows,
    its number and size, its persons (uint64) and values (float64), little-endian; for a sum, its
    number and the numbers of the cells it adds up (int64, in order); then the cell's definition
    (`safepool.query.definitions`), when it has one. Cells `withheld` (position, after, size,
    signature, definition) are chained after the cell numbered `after`, in the order of their
    positions: their four numbers (int64, the signature as uint64), then the definition if any. A
    cell of a family only (`family`) has the word "family" after its values, and one with members
    that are parts of a person (`owners`: cell, member, owner, sorted) the word "owners", those
    members and their owners (uint64) after that."""
    family = {int(cell) for cell in family}
    owned = _owners_by_cell(owners)
    cells = frame["cell"].to_numpy(dtype=np.int64)
    persons = np.ascontiguousarray(frame["person"].to_numpy(dtype="<u8"))
    values = frame["value"].to_numpy(dtype="<f8") + 0.0  # -0.0 and 0.0 are one value
    starts = np.flatnonzero(np.r_[True, cells[1:] != cells[:-1]]) if len(cells) else np.array([], dtype=int)
    ends = np.r_[starts[1:], len(cells)]
    steps: list[tuple[int, int, Any]] = [(int(cells[start]), start, end) for start, end in zip(starts, ends)]
    steps += [(int(cell), -1, sorted(int(m) for m in members)) for cell, members in (defined or {}).items()]
    steps += [(int(after), -2, (int(position), int(size), int(signature), definition))
              for position, after, size, signature, definition in withheld]
    for cell, start, end in sorted(steps, key=lambda step: (step[0], step[1] == -2, step[2] if step[1] == -2 else 0)):
        step = hashlib.sha256(bytes.fromhex(digest))
        if start == -2:  # a cell withheld, not remembered
            step.update(b"withheld" + struct.pack("<qqqQ", cell, *end[:3]))
            if end[3]:
                step.update(b"definition" + end[3].encode("ascii"))
            digest = step.hexdigest()
            continue
        if start < 0:  # a sum of other cells
            step.update(b"sum" + struct.pack(f"<qq{len(end)}q", cell, len(end), *end))
        else:
            step.update(b"cell" + struct.pack("<qq", cell, int(end - start)))
            step.update(persons[start:end])  # (their bytes as they lie: a slice of one array, not a copy)
            step.update(values[start:end])
            if cell in family:
                step.update(b"family")
            if cell in owned:
                step.update(b"owners" + owned[cell])
        definition = (definitions or {}).get(cell)
        if definition:
            step.update(b"definition" + definition.encode("ascii"))
        digest = step.hexdigest()
    return digest


def _owners_by_cell(owners: pd.DataFrame | None) -> dict[int, bytes]:
    """Per cell, its members that are parts of a person and their owners, as `chain_digest` takes them."""
    if owners is None or owners.empty:
        return {}
    return {int(cell): rows["member"].to_numpy(dtype="<u8").tobytes() + rows["owner"].to_numpy(dtype="<u8").tobytes()
            for cell, rows in owners.groupby("cell", sort=True)}


def _taken_in(memory: ledger_memory.LedgerMemory, change: _Change) -> None:
    """The memory with a change's cells, withheld cells and sizes in it (taken in while the file commits
    the change; `Ledger._commit` keeps the memory only once it has)."""
    if len(change.cell):
        memory.add(change.cell, change.person, change.value, change.order, sums=change.sums,
                   family=change.family, owner=change.owner)
    if len(change.withheld):
        memory.withheld |= {(definition, int(size), int(signature)) for definition, size, signature in
                            change.withheld[["definition", "size", "signature"]].itertuples(index=False, name=None)}
    memory.withheld_rows += len(change.withheld)
    memory.remembered.take(change.sizes, change.definitions)


def _owners_of(cell: np.ndarray, person: np.ndarray, owner: np.ndarray | None) -> pd.DataFrame:
    """The rows whose member is a part of a person (its owner is not itself), as the file's table
    `member_owners` keeps them: cell, member, owner, sorted."""
    if owner is None:
        return pd.DataFrame({"cell": np.empty(0, dtype=np.int64), "member": np.empty(0, dtype=np.uint64),
                             "owner": np.empty(0, dtype=np.uint64)})
    parts = owner != person
    return pd.DataFrame({"cell": cell[parts], "member": person[parts], "owner": owner[parts]}).drop_duplicates(
        ["cell", "member"]).sort_values(["cell", "member"], ignore_index=True)


def _owner_column(incoming: pd.DataFrame) -> np.ndarray | None:
    """The incoming rows' owners (the person each member is part of), when they come with them (a
    total's rows made here carry its cells' owners, `ledger_sums.sum_rows`)."""
    return incoming["owner"].to_numpy(dtype=np.uint64) if "owner" in incoming.columns else None


def _written_tables(change: _Change) -> dict[str, Any]:
    """What `_write` hands the file's connection, by name (see `_INSERTS`), as Arrow tables: the
    rows of the cells (DuckDB scans Arrow columns in parallel, a DataFrame on one thread: about 40
    against 75 ms for half a million rows) and their sizes, and the other tables only when they
    have rows (each DataFrame handed over cost over a millisecond, an empty table inserted 2-3 ms
    of each answer's write in all)."""
    definitions = [(cell, member) for cell, members in change.definitions.items() for member in members]
    tables: dict[str, Any] = {
        "incoming": pa.table(change.columns),
        "definitions": pd.DataFrame(definitions, columns=["cell", "member"], dtype=np.int64),
        "withheld_now": change.withheld,
        "family_now": pd.DataFrame({"cell": change.family.astype(np.int64)}),
        "owners_now": change.owners,
        "sizes": change.sizes,
    }
    return {name: rows if isinstance(rows, pa.Table) else pa.Table.from_pandas(rows, preserve_index=False)
            for name, rows in tables.items() if name in ("incoming", "sizes") or len(rows)}


def query_outcome(hidden: Collection[Any]) -> str:
    """The audit outcome of an answered query: "withheld" when the ledger hid any cell of it."""
    return WITHHELD if hidden else "ok"


def withheld_entries(hidden: Iterable[tuple[int, str]], measures: Sequence[str]) -> list[dict[str, Any]]:
    """The audit detail `withheld` of a query: per column (0-based in `hidden`, one (column, check)
    per cell the ledger hid; `measures` the kind of each column), how many of its cells were hidden
    and by which checks (PAIRS, ALL_ANSWERS)."""
    checks: dict[int, list[str]] = {}
    for column, check in hidden:
        checks.setdefault(column, []).append(check)
    return [{"column": j + 1, "measure": measures[j], "cells": len(found),
             "check": f"differencing ({', '.join(sorted(set(found)))})"} for j, found in sorted(checks.items())]


def cell_signatures(incoming: pd.DataFrame) -> pd.DataFrame:
    """Per cell (columns cell, size, signature) an order-free hash of its persons and values: the
    xor over its rows of a 64-bit mix of each (person, value to `_SIGNATURE_DECIMALS` decimals).
    Mixing the pair before the xor keeps two values swapped between persons apart."""
    cell = incoming["cell"].to_numpy(dtype=np.int64)
    if len(cell) == 0:
        return pd.DataFrame({"cell": cell, "size": cell, "signature": cell.astype(np.uint64)})
    person = incoming["person"].to_numpy(dtype=np.uint64)
    value = np.round(incoming["value"].to_numpy(dtype=np.float64), _SIGNATURE_DECIMALS)
    hashed = ledger_memory.entry_hash(person.view(np.int64), value)
    if np.any(cell[1:] < cell[:-1]):  # the engine hands cells over in order; others are sorted here
        order = np.argsort(cell, kind="stable")
        cell, hashed = cell[order], hashed[order]
    starts = np.flatnonzero(np.r_[True, cell[1:] != cell[:-1]])
    return pd.DataFrame({"cell": cell[starts], "size": np.diff(np.r_[starts, len(cell)]),
                         "signature": np.bitwise_xor.reduceat(hashed, starts)})


def file_fingerprint(path: Path) -> tuple[Any, ...] | None:
    """What changes whenever the ledger file does: its device, inode, size, modification and change
    times (the kernel sets the change time on every write, rename or touch), a hash of its first
    12 KB (DuckDB's headers, whose checkpoint counter moves on every write) and the same of a
    write-ahead log beside it; None when it is missing, "unreadable" for a folder or a file that
    cannot be read in its place."""
    found: list[Any] = []
    for name in (str(path), f"{path}.wal"):
        try:
            with open(name, "rb") as file:
                info = os.fstat(file.fileno())
                head = hashlib.sha256(file.read(12_288)).hexdigest()
        except FileNotFoundError:
            if name == str(path):
                return None
            found.append(None)
            continue
        except OSError:  # a folder or an unreadable file in its place: fits no fingerprint noted
            found.append("unreadable")
            continue
        found.append((info.st_dev, info.st_ino, info.st_size, info.st_mtime_ns, info.st_ctime_ns, head))
    return tuple(found)


def _checked_sums(incoming: pd.DataFrame, column_of: Mapping[int, int], sums: Mapping[int, Sequence[int]]
                  ) -> dict[int, list[int]]:
    """The claimed sums that hold: a cell of the same column as its members, none of which is
    itself a sum, with no contribution of zero (a person whose contributions are all zero counts
    by membership, which does not add up), whose persons' values weighted by a number drawn from
    each person's hash add up to those of its members (to 1e-9 of their size)."""
    cell = incoming["cell"].to_numpy(dtype=np.int64)
    if not sums or len(cell) == 0 or cell.min() < 0:
        return {}
    top = int(cell.max()) + 1
    # the shape first: a total numbered above every row's cell (kept as a definition, or a remembered
    # cell asked again) is none, and when none is left the persons' draws are not made (3-4 ms at
    # 300,000 persons)
    shaped = {int(total): members for total, members in ((total, sorted({int(m) for m in members}))
                                                         for total, members in sums.items())
              if total in column_of and total < top and members and total not in members
              and all(m in column_of and m < top and column_of[m] == column_of[total] and m not in sums
                      for m in members)}
    if not shaped:
        return {}
    value = incoming["value"].to_numpy(dtype=float)
    person = incoming["person"].to_numpy(dtype=np.uint64)
    with np.errstate(over="ignore"):
        draw = (ledger_memory.mix(person) >> np.uint64(11)).astype(np.float64) / float(2**53) + 0.5
    weighted = np.bincount(cell, weights=draw * value, minlength=top)
    size = np.bincount(cell, weights=draw * np.abs(value), minlength=top)
    zeros = np.bincount(cell[value == 0], minlength=top)
    return {total: members for total, members in shaped.items()
            if zeros[total] == 0
            and abs(weighted[total] - weighted[members].sum()) <= 1e-9 * (size[total] + size[members].sum())}


class Verdict(NamedTuple):
    """What one audit of a set of cells finds: whether they give away too few persons, and (a guess
    where a search will find the first failing cell) the earliest of them that completes a family
    or a study's row the group audits find (see `ledger_memory.LedgerMemory._groups_given_away`)."""

    fails: bool
    completing: int | None = None


class _Audits:
    """The audits of one check's search, each set of cells audited once: a search asks again for a
    prefix it audited (the column found, then its cells)."""

    def __init__(self, audit: Callable[[list[int]], Verdict], known: dict[frozenset[int], Verdict]) -> None:
        self._audit, self._found = audit, known

    def __call__(self, cells: list[int]) -> Verdict:
        key = frozenset(cells)
        if key not in self._found:
            self._found[key] = self._audit(cells)
        return self._found[key]


_GUESSES = 3  # prefixes a search takes from the audits' guesses before it only bisects


def _first_failing(accepted: list[int], groups: Sequence[Sequence[int]], gives_away: Callable[[list[int]], Verdict],
                   near: bool = False) -> int | None:
    """The first of `groups` (of cells, in order) that gives away too few persons with the `accepted`
    cells and the groups before it (`gives_away(cells)`), or None when all of them pass together.
    Adding cells never makes the audit find less, so the prefixes that fail are the longer ones and
    a bisection finds the first: what taking the groups one by one would hide, in a few audits per
    group found instead of one per group (a study's run has several hundred cells, each its own).
    Any prefix between the longest known to pass and the shortest known to fail may be tried
    next. `near`: the first is likely near the start (one was just found before them), so
    prefixes of 1, 2, 4, ... groups are tried before the bisection: where half the cells of a
    table are hidden (counts by two quarters beside a study's rows), two or three audits find each
    instead of seven. Else the search first tries where a failing audit guesses the first failing
    cell is (the earliest cell completing what it found), the prefix through that group and the
    one before it: a study's balance means hidden one after another took eight audits each by
    bisection. (Among cells hidden one after another the guesses are far off: the families found
    reach to the last cells.)"""
    every = [cell for cells in groups for cell in cells]
    verdict = gives_away(accepted + every)
    if not verdict.fails:
        return None
    group_of = {cell: number for number, cells in enumerate(groups) for cell in cells}
    bounds = np.cumsum([len(cells) for cells in groups])
    low, high = 0, len(groups) - 1  # the prefix through `high` fails, the one before `low` passes
    probe, guesses = 0, 0 if near else _GUESSES
    while low < high:
        guess = group_of.get(verdict.completing, -1)  # none after a passing audit
        if near and probe < high:  # the prefixes through groups 0, 1, 3, 7, ...
            middle, probe = probe, 2 * probe + 1
        elif guesses and low <= guess <= high:
            guesses -= 1
            middle = guess if guess < high else high - 1
        else:
            middle = (low + high) // 2
        verdict = gives_away(accepted + every[:bounds[middle]])
        if verdict.fails:
            high, near = middle, False
        else:
            low = middle + 1
    return low


def _rows_of(incoming: pd.DataFrame, cells: Collection[int]) -> pd.DataFrame:
    """The rows of the chosen cells; all of them, not copied, when every row's cell is chosen (an
    answer all of whose cells are checked and kept: the common case, a copy of every row saved)."""
    chosen = ledger_memory.among(incoming["cell"].to_numpy(dtype=np.int64), cells)
    return incoming if chosen.all() else incoming[chosen]


def _canonical_order(cell: np.ndarray, person: np.ndarray, value: np.ndarray) -> tuple[np.ndarray, bool]:
    """The order of the rows by cell, person and value, and whether it moves any row. A person is
    in a cell once as the engine hands cells over, and a few thousand cell numbers sort by
    counting: sorted by person, then stably by cell; otherwise (or when a person is in a cell
    twice) by all three. Rows already in that order (as the engine hands them over) are checked
    in one pass and not sorted (nor gathered by the caller)."""
    if len(cell) > 1 and np.all((cell[1:] > cell[:-1]) | ((cell[1:] == cell[:-1]) & (person[1:] > person[:-1]))):
        return np.arange(len(cell)), False
    if len(cell) > 1 and cell.max() - cell.min() < 2**15:
        order = np.argsort(person)
        order = order[by_cell(cell[order])]
        c, p = cell[order], person[order]
        if not np.any((c[1:] == c[:-1]) & (p[1:] == p[:-1])):
            return order, True
    return np.lexsort((value, person, cell)), True


def _now() -> str:
    return dt.datetime.now(dt.timezone.utc).isoformat(timespec="microseconds")


def _called(name: str) -> str:
    """The ledger as its messages name it."""
    return "the workspace's query ledger" if name == WORKSPACE_LEDGER else f"the query ledger {name}"


class Ledger:
    """Remembered cells of one ledger: contributions(cell, person, value), sum_members(cell, member)
    for totals kept as the cells they add up, cells(cell, size, signature, definition),
    withheld(position, after, size, signature, definition) and ledger_state(permit, cells, rows,
    digest) in the file. Open it with `Ledger.open`."""

    def __init__(self, path: Path, governance: Governance, actor: Actor, name: str, turn: LedgerTurn,
                 permit: str | None = None) -> None:
        self.path = path
        self.name = name
        self.permit = permit or name  # the permit asked, named in the audit records of the ledger
        self._governance = governance
        self._actor = actor
        self._engine: Engine = governance.permits.engine
        self.con: duckdb.DuckDBPyConnection | None = None
        self._name = ""  # the name the file is attached under while `con` is open
        self._inside = False  # within the `Ledger.open` block that holds the ledger's lock
        self._checkpoint: SideThread | None = None  # a checkpoint of the file under way
        self._handed: list[str] = []  # what `_write` handed the file's connection, until its rows are inserted
        self._opened: tuple[int, int] | None = None  # device and inode of the file opened in this block
        # the open found the file exactly as this process left it, so its tables are those this process
        # made or brought up to date when it opened the file before (`_file_state` needs no schema statements)
        self._as_left = False
        self._turn = turn  # this block's turn on the ledger, taken by `Ledger.open`
        self._candidates: list[int] = []
        self._distinct_candidates = np.empty(0, dtype=np.int64)  # the same, distinct and in order
        self._family: set[int] = set()  # the incoming cells of a family only (see `check`)
        self._persons: np.ndarray | None = None  # the distinct persons the incoming rows' ranks point into
        self._sums: dict[int, list[int]] = {}
        # of the query being checked: each incoming cell's definition and column, its signatures, and
        # the cells that are a remembered cell asked again
        self._definitions: dict[int, str | None] = {}
        self._column_of: Mapping[int, int] = {}
        self._splits: Mapping[int, Sequence[Sequence[int]]] = {}
        self._signatures = pd.DataFrame()
        self._same: set[int] = set()
        self._found_before: set[int] = set()  # incoming cells with the persons and values of a withheld one
        # (definition, size, signature) of the cells the all-answers audit found in this block, kept with
        # the next change
        self._withholding: dict[Identity, None] = {}
        # what `compare` found in this block, per minimum frequency: (definition, size, signature) of a
        # cell -> whether it is close to a remembered cell, and the definitions of those it equals
        self._outcomes: dict[int, dict[Identity, tuple[bool, frozenset[str | None]]]] = {}
        # the last request `_compared` took (its frame, columns, sums, definitions, minimum frequency),
        # what it gave, and the state it left: an answer none of whose cells is hidden is compared by
        # `pairs` and then checked with the same frame, which is compared once (`check` takes it and
        # forgets it)
        self._last_compared: tuple[tuple[Any, ...], tuple[Any, ...], tuple[Any, ...]] | None = None
        self.cells = 0
        self.rows = 0
        self.digest = genesis_digest(name)

    @staticmethod
    def prepare(pool_dir: Path, name: str) -> None:
        """Begin, beside the caller, what the first `open` of a process would otherwise wait for:
        the DuckDB instance that the ledger file is attached in (see
        `duckdb_connection.prepare_instance`)."""
        if _LEDGER_NAME.match(name):
            prepare_instance(Path(pool_dir) / LEDGER_DIR / f"{name}.duckdb")

    @classmethod
    @contextmanager
    def open(cls, pool_dir: Path, governance: Governance, actor: Actor, name: str, *, permit: str | None = None,
             timeout: float = LOCK_TIMEOUT) -> Iterator[Ledger]:
        """The ledger called `name` (the query engine's is `WORKSPACE_LEDGER`), exclusively (waiting
        for its turn) and verified against its record; raises `LedgerBusy` after `timeout` seconds,
        `LedgerTampered` on a mismatch (audited under `permit`, the permit asked, by default
        `name`). The caller has authorised `actor` for `permit`."""
        if not _LEDGER_NAME.match(name):
            raise Invalid("a query ledger's name may hold letters, digits, '.', '_' and '-' only")
        folder = Path(pool_dir) / LEDGER_DIR
        folder.mkdir(mode=0o700, exist_ok=True)
        turn = LedgerTurn(folder / f"{name}.lock", _called(name), timeout)
        turn.take()
        try:
            ledger = cls(folder / f"{name}.duckdb", governance, actor, name, turn, permit)
            ledger._inside = True
            try:
                ledger._bind()
                yield ledger
                ledger._close()
                ledger._note_file()
            finally:
                ledger._inside = False
                ledger._close()
        finally:
            turn.give_back()

    def state(self) -> dict[str, Any]:
        """What the audit record of a query carries about the ledger after it."""
        return {"ledger": self.name, "ledger_cells": self.cells, "ledger_digest": self.digest}

    # -- the differencing checks --------------------------------------------------------------

    def check(self, incoming: pd.DataFrame, column_of: dict[int, int], min_frequency: int,
              sums: Mapping[int, Sequence[int]] | None = None,
              definitions: EntryDefinitions | None = None, family: Collection[int] = (),
              persons: np.ndarray | None = None) -> dict[int, str]:
        """Incoming cells that the earlier answers forbid showing, each with the check that found it
        (PAIRS or ALL_ANSWERS); when none is found, every incoming cell is remembered. Incoming
        cells: columns cell, person, value (cell -> its column in column_of). The caller hides what
        is found as it hides a cell of too few persons, and asks again with what it would show then,
        so that an empty difference looks like a small cell (see `safepool.query.engine`); nothing
        is remembered until an answer passes whole.

        The search for the cells to hide, when all of them together fail, reads only the memory of
        the state the check began at: other processes may use the ledger meanwhile (a study's
        search takes minutes), and the check takes its turn back before it returns. What it finds
        is only what to hide; the cells shown in the end pass an audit against every answer
        remembered by then, under the turn, before they are remembered.

        `sums` (optional) names incoming cells that are, person by person, the sum of other
        incoming cells of the same column (a total and the shown cells it adds up): checked here,
        they are left out of the algebra, which they add nothing to, while their members are in it.
        A sum may come without rows: then it is kept as a definition or its rows are made here
        (see `safepool.query.ledger_sums`). `definitions` gives each incoming cell's definition
        (`safepool.query.definitions`, with the ways cells split into others): a cell with the
        persons of a remembered one, or of other cells, is the same question only under the same
        definition or a split, else an empty difference of
        two questions (`safepool.query.empty_differences`). Without them (the ledger's own tests of
        the algebra) every cell has one unknown definition, cells with the same persons are the
        same, and no empty difference is looked for: the query engine always gives them.

        `family` names incoming cells of a family only: sums a study's rows show, each person (by
        the ledger key) with the amount the row adds up for it, as a query would add up the same
        values. They are audited, and remembered, only in the group audit of families of sums
        (`safepool.query.value_families`), so a query over nearly the same persons and the same
        values (the outcome of every client at entry, one query per entry quarter, less a row's
        clients) is found, either way round. Two of them are never one family, and they take no
        part in the pairs or the algebra: a study's rows over a hundred quarters of the same
        clients take other values of each, which the algebra, taking one person's values in
        different cells as known ratios, would count as telling every client apart (the study's
        own rows are checked against each other as their members, `safepool.study.row_persons`).

        `incoming` may carry a column owner: for a member that is a part of a person (a study's
        control matched in two sets at other times has its rows in two quarters, or two baseline
        values, each a member of a row), the ledger key of that person; else the member itself.
        The group audits count a group's persons, not its members (`group_audit.group_persons`), and
        the file keeps the owners (table `member_owners`, chained into the digest). A query's
        cells need none: each holds a person once, in one period (`person_periods`), so its
        members are persons, and those of a study's rows are always told.

        `incoming` may also carry a column rank, each row's person as its place in `persons`
        (distinct ledger keys): the memory then finds its persons by gathering rather than by a
        search per row (`LedgerMemory._found_by_rank`, which checks that the ranks give the rows'
        persons and otherwise searches)."""
        sums = sums or {}
        self._persons = persons
        self._family = {int(cell) for cell in family}
        incoming, defined, signatures, close, same = self._compared(incoming, column_of, min_frequency, sums,
                                                                    definitions)
        self._last_compared = None  # what follows may remember cells: the next comparison is made afresh
        if close:  # the pairs are found first: each is hidden, and what is left is checked again
            return self._labelled(close)
        self._same = same
        candidates = [cell for cell in column_of if cell not in same]
        if not candidates:
            self._keep(self._withheld_change())
            return {}
        chosen = set(candidates)
        # a sum is kept as a definition only with the cells it adds up (not when one is remembered already)
        made = {cell: members for cell, members in defined.items() if cell in chosen and not chosen.issuperset(members)}
        if made:
            incoming = with_sum_rows(incoming, made)
        self._defined = {cell: members for cell, members in defined.items() if cell in chosen and cell not in made}
        self._candidates = candidates
        self._distinct_candidates = distinct_numbers(np.asarray(candidates, dtype=np.int64))
        claimed = {cell: members for cell, members in sums.items() if int(cell) not in self._defined}
        self._sums = {**_checked_sums(incoming, column_of, claimed), **self._defined}
        self._memory()  # read before the write begins, if this process does not keep it
        self._con()  # the file opened (its state checked, a mismatch audited) here, not on the write's thread
        # every candidate kept is the common case: its change is written (uncommitted) beside the audit,
        # which spends most of its time in C code that lets the write's thread run (40-80 ms at
        # 300,000 persons, most of what the audit of a simple question takes)
        writing = SideThread("ledger-write",
                             partial(self._written, *self._to_remember(incoming, signatures, candidates)))
        try:
            first = self._gives_away(incoming, candidates, min_frequency)
            time_left(AUDIT_STEP)  # an audit that ended past the query's deadline is not kept
        except BaseException:
            writing.join()
            if writing.error is None:  # the caller's error is raised, not the write's
                self._abandon(writing.wait())
            raise
        if not first.fails:
            self._commit(writing.wait())
            return {}
        self._abandon(writing.wait())  # a failed write stops the query here too
        with self._others_let_in():  # the search reads only the memory of this state
            found = self._searched(incoming, candidates, min_frequency, first)
        time_left(AUDIT_STEP)
        signed = signatures[signatures["cell"].isin(list(found))]
        self._withholding.update({(self._definitions.get(int(cell)), int(size), int(signature)): None
                                  for cell, size, signature in signed[["cell", "size", "signature"]].itertuples(
                                      index=False, name=None)})
        return found

    @contextmanager
    def _others_let_in(self) -> Iterator[None]:
        """Other processes may use the ledger inside the block (see `safepool.query.ledger_turn`):
        the file is closed and noted as this process leaves it, and on leaving the block the turn
        is taken back and the file checked against its record again. Whatever they remembered
        meanwhile is then the state this block goes on from: what this block compared before is
        compared again, and what it remembers next is audited against all of it."""
        before = self._key()
        self._close()
        self._note_file()
        self._inside = False
        self._turn.let_others_in()
        yield  # an error ends the block: `Ledger.open` gives the turn back whole
        self._turn.take()
        self._inside = True
        self._bind()
        if self._key() != before:
            self._outcomes, self._last_compared = {}, None

    def _labelled(self, close: set[int]) -> dict[int, str]:
        """The close cells, each with the check that found it: ALL_ANSWERS for a cell withheld before
        (the comparison finds it again by its persons and values), else PAIRS."""
        return {cell: ALL_ANSWERS if cell in self._found_before else PAIRS for cell in sorted(close)}

    def pairs(self, incoming: pd.DataFrame, column_of: dict[int, int], min_frequency: int,
              sums: Mapping[int, Sequence[int]] | None = None,
              definitions: EntryDefinitions | None = None) -> tuple[dict[int, str], bool]:
        """The incoming cells close to a remembered one (`compare`), each with PAIRS: the comparison
        alone, without the all-answers audit and without remembering anything; and whether every
        incoming cell is a remembered one under its definition (the question asked again, all of it
        shown before: nothing is left to check). The engine compares every cell of an answer first,
        the hidden ones too, so that an answer takes the same steps whether a cell is hidden for its
        few persons or for the earlier answers (see `safepool.query.engine`)."""
        close, same = self._compared(incoming, column_of, min_frequency, sums or {}, definitions)[3:]
        return self._labelled(close), bool(column_of) and set(column_of) <= same

    def _compared(self, incoming: pd.DataFrame, column_of: dict[int, int], min_frequency: int,
                  sums: Mapping[int, Sequence[int]], definitions: EntryDefinitions | None
                  ) -> tuple[pd.DataFrame, dict[int, Sequence[int]], pd.DataFrame, set[int], set[int]]:
        """The incoming cells as the checks take them (in cell order, sums without rows apart), their
        signatures, and `compare`'s close and same cells; the cells' definitions are kept for the
        audit. The same request again (the same frame and definitions: see `_last_compared`) gets what
        it got, and leaves the state it left."""
        asked = (incoming, dict(column_of), dict(sums), definitions, int(min_frequency), frozenset(self._family))
        self._every_split = definitions is not None and definitions.every_split
        last = self._last_compared
        if last is not None and last[0][0] is incoming and last[0][3] is definitions and last[0][1:3] == asked[1:3] \
                and last[0][4:] == asked[4:]:
            (self._definitions, self._splits, self._column_of, self._signatures, self._found_before) = last[2]
            return last[1]
        keys = definitions.keys if definitions is not None else {}
        self._definitions = {int(cell): keys.get(cell) for cell in column_of}
        self._splits = definitions.splits if definitions is not None else {}
        self._column_of = column_of
        incoming, defined = split_sums(in_cell_order(incoming), column_of, sums)
        signatures = self._signatures = self.signatures(incoming, defined)
        close, same = self.compare(incoming, min_frequency, signatures, defined)
        found = (incoming, defined, signatures, close, same)
        self._last_compared = (asked, found, (self._definitions, self._splits, self._column_of, signatures,
                                              self._found_before))
        return found

    def _searched(self, incoming: pd.DataFrame, candidates: list[int], min_frequency: int, first: Verdict
                  ) -> dict[int, str]:
        """The candidates that give away fewer persons than `min_frequency` with the remembered cells
        and the candidates before them, when all of them together do (`first`, their audit): column
        by column, and within a column that fails, cell by cell in the order the engine numbers them
        (the rows of its table, then lines of shown cells), so that what is hidden is a cell, as a
        small one is. Sums kept as definitions get rows here: a sum tried without the cells it adds
        up stands for its persons."""
        if self._defined:
            incoming = with_sum_rows(incoming, self._defined)
        gives_away = _Audits(partial(self._gives_away, incoming, min_frequency=min_frequency),
                             {frozenset(candidates): first})
        accepted: list[int] = []
        found: dict[int, str] = {}
        columns = [[cell for cell in candidates if self._column_of[cell] == column]
                   for column in sorted({self._column_of[cell] for cell in candidates})]
        while columns:
            failing = _first_failing(accepted, columns, gives_away)
            if failing is None:
                break
            accepted += [cell for cells in columns[:failing] for cell in cells]
            cells, columns = columns[failing], columns[failing + 1:]
            after_one = False  # whether a cell of this column has been found
            while cells:
                cell = _first_failing(accepted, [[cell] for cell in cells], gives_away, near=after_one)
                if cell is None:
                    accepted += cells
                    break
                accepted += cells[:cell]
                found[cells[cell]] = ALL_ANSWERS
                cells = cells[cell + 1:]
                after_one = True
        return found

    def _written(self, *kept: Any) -> _Change | None:
        """The change that remembers the kept cells (see `remember`), written into the file uncommitted,
        and its state recorded as the pending one: on the write's thread, off the audit's way (an
        audit that fails clears it again, and a process that ends first leaves what an open
        drops, as it does a change that never reached the file)."""
        change = self._change(*kept)
        if change is not None:
            self._write(change)
            try:
                self._set_pending(change.cells, change.digest)
            except BaseException:
                self._abandon(change)
                raise
            change.pending = True
        return change

    def _to_remember(self, incoming: pd.DataFrame, signatures: pd.DataFrame, kept: list[int]
              ) -> tuple[pd.DataFrame, list[int], pd.DataFrame, dict[int, Sequence[int]], list[int]]:
        """What `remember` gets to keep the chosen incoming cells."""
        return (_rows_of(incoming, kept), self._sums_within(kept), signatures[signatures["cell"].isin(kept)],
                {cell: members for cell, members in self._defined.items() if cell in kept},
                sorted(self._family.intersection(kept)))

    def _sums_within(self, cells: list[int]) -> list[int]:
        """The checked sums whose cell and members are all among `cells`."""
        chosen = set(cells)
        return [cell for cell, members in self._sums.items() if cell in chosen and chosen.issuperset(members)]

    def _gives_away(self, incoming: pd.DataFrame, cells: list[int], min_frequency: int) -> Verdict:
        """Whether the remembered and the chosen incoming cells together give away a class of fewer
        persons than `min_frequency` (numbered above the remembered cells as remember will number
        them); a person whose contributions are all zero counts by membership (the answers could
        still tell that this person's value is zero). See `safepool.query.ledger_memory`."""
        time_left(AUDIT_STEP)
        chosen = _rows_of(incoming, cells)
        numbers = self._numbers
        memory = self._memory()
        found = memory.audit(numbers(chosen["cell"].to_numpy(dtype=np.int64)),
                             chosen["person"].to_numpy(dtype=np.uint64),
                             chosen["value"].to_numpy(dtype=float) + 0.0, min_frequency,
                             sums=numbers(np.asarray(self._sums_within(cells), dtype=np.int64)),
                             relations=self._relations(cells, memory.remembered.identities)
                             if self._every_split and any(self._definitions.values()) else None,
                             family=numbers(np.asarray(sorted(self._family.intersection(cells)), dtype=np.int64)),
                             owner=_owner_column(chosen), ranked=self._ranked(chosen))
        fails = found.given_away > 0 or found.groups_given_away > 0 or found.empty_differences > 0
        completing = None if found.completing is None else \
            int(self._distinct_candidates[found.completing - self.cells - 1])
        return Verdict(fails, completing)

    def _ranked(self, chosen: pd.DataFrame) -> ledger_memory.Ranked | None:
        """The chosen rows' persons as ranks among the distinct persons the caller gave (`check`'s
        `persons`), when the rows carry them (column rank; rows the ledger made have none)."""
        rank = None if self._persons is None else ranks_of(chosen)
        return None if rank is None else (self._persons, rank)

    def _relations(self, cells: list[int], remembered: set[Identity]) -> np.ndarray:
        """What the chosen cells' definitions imply about their contributions (see
        `empty_differences.implied_relations`), over their rows in the all-answers audit (numbered
        as `_numbers` numbers them): the cells of the same question asked before (`compare`'s
        `same`) take part as remembered ones, and an entry as the parts of each of its splits (its
        persons' contributions are theirs added up, as a reader adds up the shown cells)."""
        chosen = set(cells) - self._family  # no row of the algebra
        distinct = self._distinct_candidates
        rows = {cell: int(np.searchsorted(distinct, cell)) for cell in chosen - set(self._sums_within(cells))}
        signed = self._signatures.set_index("cell")
        size, signature = signed["size"].to_dict(), signed["signature"].to_dict()
        splits = {int(cell): [[int(m) for m in members] for members in ways if all(m in size for m in members)]
                  for cell, ways in self._splits.items() if cell in size}
        columns = {self._column_of[cell] for cell in chosen}
        same = {cell for cell in self._same if self._column_of[cell] in columns}
        entries = sorted(cell for cell in chosen | same if cell in size)  # a cell without rows holds no one
        identity = {cell: (self._definitions.get(cell), int(size[cell]), int(signature[cell])) for cell in entries}
        return implied_relations(entries, rows, {cell: ways for cell, ways in splits.items() if ways}, same,
                                 identity, remembered, len(distinct))

    def _numbers(self, chosen: np.ndarray) -> np.ndarray:
        """Numbers for the chosen candidates above every remembered one, in the order of their own numbers."""
        return self.cells + 1 + np.searchsorted(self._distinct_candidates, chosen)

    def _signed(self) -> dict[tuple[int, int], set[str | None]]:
        """(size, signature) of every remembered cell, with the definitions of the cells that have
        them: from the memory kept in this process, else from the file's table of cells (one row
        per cell, not the contributions)."""
        memory = ledger_memory.recalled(str(self.path), self._key())
        if memory is not None:
            return memory.remembered.signed
        return self._cells_table().signed

    def _withheld(self) -> tuple[set[Identity], int]:
        """(definition, size, signature) of every cell withheld before, and how many the file holds:
        from the memory kept in this process, else from the file."""
        memory = ledger_memory.recalled(str(self.path), self._key())
        if memory is not None:
            return memory.withheld, memory.withheld_rows
        return self._withheld_table()

    def _withheld_table(self) -> tuple[set[Identity], int]:
        rows = self._con().execute("SELECT definition, size, signature FROM withheld").fetchall()
        return {(definition, int(size), int(signature)) for definition, size, signature in rows}, len(rows)

    def _cells_table(self) -> RememberedCells:
        """The file's table of cells (each one's size, signature and definition), with the cells
        each sum kept as a definition adds up (table `sum_members`)."""
        con = self._con()
        cells = pd.DataFrame(con.execute("SELECT cell, size, signature, definition FROM cells").fetchall(),
                             columns=["cell", "size", "signature", "definition"])
        members: dict[int, list[int]] = {}
        for cell, member in con.execute("SELECT cell, member FROM sum_members ORDER BY cell, member").fetchall():
            members.setdefault(int(cell), []).append(int(member))
        remembered = RememberedCells()
        remembered.take(cells, members)
        return remembered

    def _key(self) -> ledger_memory.Key:
        return (self.name, self.cells, self.rows, self.digest)

    def _memory(self) -> ledger_memory.LedgerMemory:
        """The remembered cells as person classes: kept from the last query in this process when
        the file is still at that state, else read from the file."""
        memory = ledger_memory.recalled(str(self.path), self._key())
        if memory is None:
            con = self._con()
            rows = con.execute("SELECT cell, person, value FROM contributions ORDER BY cell, person, value").fetchnumpy()
            memory = ledger_memory.LedgerMemory.of_rows(self._key(), rows["cell"], rows["person"], rows["value"],
                                                        np.asarray(self._family_cells(), dtype=np.int64),
                                                        self._owners_along(rows["cell"], rows["person"]))
            memory.remembered = self._cells_table()
            memory.withheld, memory.withheld_rows = self._withheld_table()
            ledger_memory.keep(str(self.path), memory)
        return memory

    def signatures(self, incoming: pd.DataFrame, defined: Mapping[int, Sequence[int]] | None = None) -> pd.DataFrame:
        """Per incoming cell (and sum `defined` without rows) its size and signature: computed once
        per query, for the comparison and for the cells remembered (see `cell_signatures`)."""
        return sum_signatures(cell_signatures(incoming), defined or {})

    def compare(self, incoming: pd.DataFrame, min_frequency: int, signatures: pd.DataFrame | None = None,
                defined: Mapping[int, Sequence[int]] | None = None) -> tuple[set[int], set[int]]:
        """Incoming cells (columns cell, person, value; every person with rows in the cell, even
        with a value of zero) that differ from a remembered cell by 1 to min_frequency - 1 persons,
        and those equal to a remembered cell of the same definition. A cell with the size and
        signature (an order-free hash of its persons and values) of a remembered one is that cell
        again and adds nothing if it has its definition, and is close (differs by no one: an empty
        difference of two questions) if not; two cells whose sizes differ by the minimum frequency
        or more differ by at least that many persons, so the other incoming cells (those of another
        definition too, so that they cost what a close one costs) are compared only with remembered
        cells of a near size.
        `signatures`: `signatures(incoming, defined)`, when the caller has them; `defined`: sums
        that come without rows (their rows are made for the comparison, and remembered sums' rows
        from the cells they add up)."""
        defined = defined or {}
        sizes = self.signatures(incoming, defined) if signatures is None else signatures
        remembered = self._signed()
        withheld = self._withheld()[0]
        definition = self._definitions
        signed = [(int(cell), (int(size), int(signature)))
                  for cell, size, signature in sizes[["cell", "size", "signature"]].itertuples(index=False, name=None)]
        # a cell withheld before, asked again (the same definition, persons and values), is hidden again
        # as it was: it tells no more than the first answer did (asked under another definition, it is
        # checked again: hidden for the persons alone, it would tell that they are those of that cell)
        self._found_before = {cell for cell, (size, signature) in signed
                              if (definition.get(cell), size, signature) in withheld}
        found = {cell: remembered[key] for cell, key in signed if key in remembered and cell not in self._found_before}
        same = {cell for cell, definitions in found.items() if definition.get(cell) in definitions}
        unlike = set(found) - same  # the same persons and values under another definition: an empty difference
        unlike |= self._found_before
        cells = set(definition) | {int(cell) for cell, _ in signed}  # every incoming cell, with persons or not
        if not remembered or cells <= same:  # nothing remembered, or the question asked again
            return unlike, same
        # the cells found by their signature under another definition are compared as the others are,
        # and the comparison runs even when no cell has a remembered one of a near size or no persons:
        # an answer takes the same steps whether its cells are near the remembered ones, equal to one,
        # or empty
        fresh = sizes[~sizes["cell"].isin(same | self._family)]  # a cell of a family only is no pair
        # a cell compared before in this block (the same definition, persons and values: `pairs` compares
        # every row of an answer, `check` then what it would show) has the outcome it had; the comparison
        # runs on the first comparison of the block and whenever a cell is new to it, so both worlds of
        # an answer (a cell hidden for the earlier answers or for its own few persons) take it alike
        first = int(min_frequency) not in self._outcomes
        outcomes = self._outcomes.setdefault(int(min_frequency), {})
        identity = {cell: (definition.get(cell), size, signature) for cell, (size, signature) in signed}
        unseen = fresh[np.array([identity[int(cell)] not in outcomes for cell in fresh["cell"]], dtype=bool)]
        if first or len(unseen):
            outcomes.update(self._compared_near(incoming, unseen, defined, min_frequency, identity))
        checked = [outcomes[identity[int(cell)]] for cell in fresh["cell"]]
        close = {int(cell) for cell, (near, _) in zip(fresh["cell"], checked) if near}
        equal = {int(cell): definitions for cell, (_, definitions) in zip(fresh["cell"], checked) if definitions}
        same |= {cell for cell, definitions in equal.items() if definition.get(cell) in definitions} - unlike
        return close | unlike | (set(equal) - same), same

    def _compared_near(self, incoming: pd.DataFrame, cells: pd.DataFrame, defined: Mapping[int, Sequence[int]],
                       min_frequency: int, identity: Mapping[int, Identity]
                   ) -> dict[Identity, tuple[bool, frozenset[str | None]]]:
        """For each of `cells` (cell, size, signature): whether it differs from a remembered cell by 1
        to min_frequency - 1 persons, and the definitions of the remembered cells it equals
        (`safepool.query.ledger_pairs`, in the memory: the file is not opened for it)."""
        wanted = {int(cell): defined[cell] for cell in cells["cell"] if cell in defined}
        found = near_pairs(self._memory(), cell_rows(incoming, wanted), cells, min_frequency)
        return {identity[cell]: found[cell] for cell in cells["cell"].tolist()}

    # -- remembering, bound to the record -----------------------------------------------------

    def remember(self, incoming: pd.DataFrame, sums: Sequence[int] = (), signatures: pd.DataFrame | None = None,
                 defined: Mapping[int, Sequence[int]] | None = None, family: Sequence[int] = ()) -> None:
        """Keep the incoming cells, numbered after the remembered ones in the order of their
        numbers: write them to the file in a transaction, record the pending state, commit, then
        make the state the record's. `sums`: incoming cells checked to be sums of other incoming
        cells (see `check`); `signatures`: `signatures(incoming, defined)`, when the caller has
        them; `defined`: sums without rows, kept as the cells they add up (all of them among the
        incoming cells); `family`: cells of a family only (see `check`)."""
        self._keep(self._change(incoming, sums, signatures, defined, family))

    def carry(self, incoming: pd.DataFrame, defined: Mapping[int, Sequence[int]],
              definitions: Mapping[int, str | None], min_frequency: int) -> list[int]:
        """Remember cells another ledger remembered (`safepool.query.ledger_carry_over`), checked as
        an answer is: `incoming`, their rows (cell, person, value); `defined`, totals kept as the
        cells they add up; `definitions`, each cell's definition. A cell that gives away too few
        persons with what is remembered (answers of two permits set against each other before the
        ledger spanned permits) is left out, so that it does not make every later answer fail the
        all-answers audit, which assumes what is remembered passes it; the cells left out."""
        cells = sorted({int(cell) for cell in incoming["cell"]} | set(defined))
        keys = {cell: definition for cell, definition in definitions.items() if definition}
        left_out: list[int] = []
        while cells:
            sums = {cell: list(members) for cell, members in defined.items()
                    if cell in cells and set(members) <= set(cells)}
            rows = incoming[incoming["cell"].isin(cells)]
            found = self.check(rows, {cell: 0 for cell in cells}, min_frequency, sums=sums,
                               definitions=EntryDefinitions(keys))
            if not found:
                break
            left_out += sorted(found)
            cells = [cell for cell in cells if cell not in found]
        return left_out

    def _keep(self, change: _Change | None) -> None:
        """Write and commit a change (nothing when there is none)."""
        if change is not None:
            self._write(change)
            self._commit(change)

    def _change(self, incoming: pd.DataFrame, sums: Sequence[int] = (), signatures: pd.DataFrame | None = None,
                defined: Mapping[int, Sequence[int]] | None = None, family: Sequence[int] = ()) -> _Change | None:
        """What remembering the incoming cells (see `remember`) writes, and the state it leads to."""
        defined = defined or {}
        if incoming.empty:
            return self._withheld_change()
        if signatures is None:
            signatures = self.signatures(incoming, defined)
        person = incoming["person"].to_numpy(dtype=np.uint64)
        value = incoming["value"].to_numpy(dtype=float) + 0.0
        if not np.isfinite(value).all():
            raise ValueError("ledger contributions must be finite numbers")
        numbers = incoming["cell"].to_numpy(dtype=np.int64)
        distinct = distinct_numbers(np.r_[numbers, np.fromiter(defined, dtype=np.int64, count=len(defined))])
        cell = self.cells + 1 + places_among(numbers, distinct)
        number = {int(c): self.cells + 1 + i for i, c in enumerate(distinct)}
        definitions = {number[int(c)]: sorted(number[int(m)] for m in members) for c, members in defined.items()}
        order, moved = _canonical_order(cell, person, value)
        columns = {"cell": cell[order], "person": person[order], "value": value[order]} if moved else \
            {"cell": cell, "person": person, "value": value}
        owner = _owner_column(incoming)
        owners = _owners_of(columns["cell"], columns["person"], None if owner is None else owner[order])
        known = {number[c]: self._definitions.get(c) for c in number}  # each cell's definition, if it has one
        sizes = signatures.assign(cell=self.cells + 1 + np.searchsorted(distinct, signatures["cell"].to_numpy(
            dtype=np.int64)))
        withheld = self._withheld_rows(self.cells + len(distinct))
        family_numbers = self.cells + 1 + np.searchsorted(distinct, np.asarray(list(family), dtype=np.int64))
        return _Change(
            cell=cell, person=person, value=value, order=order, columns=columns,
            sizes=sizes.assign(definition=[known.get(int(c)) for c in sizes["cell"]]),
            definitions=definitions, withheld=withheld, cells=self.cells + len(distinct), rows=self.rows + len(order),
            digest=chain_digest(self.digest, pd.DataFrame(columns, copy=False), definitions, known,
                                withheld.itertuples(index=False, name=None), family_numbers.tolist(), owners),
            sums=self.cells + 1 + np.searchsorted(distinct, np.asarray(list(sums), dtype=np.int64)),
            family=family_numbers, owner=owner, owners=owners)

    def _withheld_rows(self, after: int) -> pd.DataFrame:
        """The cells the all-answers audit found in this block, as the file's table `withheld` gets
        them: numbered on from those it holds, chained after the cell numbered `after`."""
        found = list(self._withholding)
        first = self._withheld()[1]
        return pd.DataFrame({"position": np.arange(first, first + len(found), dtype=np.int64),
                             "after": np.full(len(found), after, dtype=np.int64),
                             "size": np.array([size for _, size, _ in found], dtype=np.int64),
                             "signature": np.array([signature for _, _, signature in found], dtype=np.uint64),
                             "definition": pd.Series([definition for definition, _, _ in found], dtype=object)})

    def _withheld_change(self) -> _Change | None:
        """The change that keeps the withheld cells found in this block when the answer has nothing
        else to remember (none when there are none)."""
        if not self._withholding:
            return None
        withheld = self._withheld_rows(self.cells)
        columns = {"cell": np.empty(0, dtype=np.int64), "person": np.empty(0, dtype=np.uint64),
                   "value": np.empty(0, dtype=np.float64)}
        sizes = pd.DataFrame({"cell": columns["cell"], "size": columns["cell"], "signature": columns["person"],
                              "definition": pd.Series([], dtype=object)})
        return _Change(cell=columns["cell"], person=columns["person"], value=columns["value"],
                       order=np.empty(0, dtype=np.int64), columns=columns, sizes=sizes, definitions={},
                       withheld=withheld, cells=self.cells, rows=self.rows,
                       digest=chain_digest(self.digest, pd.DataFrame(columns), withheld=withheld.itertuples(index=False, name=None)),
                       sums=np.empty(0, dtype=np.int64), family=np.empty(0, dtype=np.int64), owner=None,
                       owners=_owners_of(columns["cell"], columns["person"], None))

    def _write(self, change: _Change) -> None:
        """Begin a transaction of the file and write the change into it, uncommitted (nothing on
        disk changes until `_commit`); rolled back on an error."""
        con = self._con()
        self._handed = []
        try:
            con.execute("BEGIN TRANSACTION")
            for name, rows in _written_tables(change).items():
                con.register(name, rows)
                self._handed.append(name)
                con.execute(_INSERTS[name])
            self._unregister()  # their rows are the transaction's now (taken back here, beside the audit)
            con.execute("UPDATE ledger_state SET cells = ?, rows = ?, digest = ?",
                        [change.cells, change.rows, change.digest])
        except BaseException:
            self._abandon(change)
            raise

    def _abandon(self, change: _Change | None) -> None:
        """Roll back a written change that is not committed (the file's state stays the recorded one,
        and so does the memory's: a file whose bytes changed is checked in full at the next open)."""
        if change is None:
            return
        try:
            self._con().execute("ROLLBACK")
        except duckdb.Error:
            pass
        finally:
            self._unregister()
            if change.pending:
                change.pending = False
                self._clear_pending()

    def _unregister(self) -> None:
        """Take back from the file's connection what `_write` handed it."""
        handed, self._handed = self._handed, []
        for name in handed:
            self._con().unregister(name)

    def _commit(self, change: _Change | None) -> None:
        """Record the pending state and commit the written change (`_committed`), then make the state
        the record's and the memory's. The memory takes the change in meanwhile, beside the commit
        (which mostly waits for the disk): it is kept only once the file holds the new state."""
        if change is None:
            return
        memory = ledger_memory.recalled(str(self.path), self._key())
        ledger_memory.keep(str(self.path), None)  # kept again below once the file holds the new state
        committing = SideThread("ledger-commit", partial(self._committed, change))
        try:
            if memory is not None:
                _taken_in(memory, change)
        finally:
            committing.wait()  # (the commit's error first: a memory that took the change in is dropped)
        self.cells, self.rows, self.digest = change.cells, change.rows, change.digest
        self._withholding = {}
        self._outcomes = {}  # compared with what is remembered now
        if memory is not None:
            memory.key = self._key()
            ledger_memory.keep(str(self.path), memory)
        # the checkpoint goes on while the caller records the answer (not while the memory takes the
        # change in: the two on a machine's two cores took up to three times as long); the connection
        # waits for it
        self._checkpoint = SideThread("ledger-checkpoint", partial(_checkpoint, self._con().cursor(), self._name))

    def _committed(self, change: _Change) -> None:
        """Record the pending state (if the write did not), commit the written change and make the
        record's state the new one; on an error the file keeps the recorded state."""
        try:
            if not change.pending:
                self._set_pending(change.cells, change.digest)
                change.pending = True
            self._con().execute("COMMIT")
        except BaseException:
            try:
                self._abandon(change)  # the file kept the recorded state: the pending one is cleared
            except Exception:  # the next open drops it
                pass
            raise
        self._commit_pending(change.cells, change.digest)

    def contents(self) -> tuple[pd.DataFrame, dict[int, list[int]], dict[int, str], list[tuple[Any, ...]], list[int],
                                pd.DataFrame]:
        """Everything remembered: the rows (cell, person, value, in that order), the totals kept as
        the cells they add up, the definitions of the cells that have one, the cells withheld
        (position, after, size, signature, definition), the cells of a family only, and the members
        that are parts of a person (cell, member, owner, sorted). Reads the whole ledger."""
        con = self._con()
        frame = con.sql("SELECT cell, person, value FROM contributions ORDER BY cell, person, value").df()
        defined: dict[int, list[int]] = {}
        for cell, member in con.execute("SELECT cell, member FROM sum_members ORDER BY cell, member").fetchall():
            defined.setdefault(int(cell), []).append(int(member))
        known = {int(cell): definition for cell, definition in
                 con.execute("SELECT cell, definition FROM cells WHERE definition IS NOT NULL").fetchall()}
        withheld = con.execute("SELECT position, after, size, signature, definition FROM withheld "
                               "ORDER BY position").fetchall()
        return frame, defined, known, withheld, self._family_cells(), self._member_owners()

    def _family_cells(self) -> list[int]:
        """The remembered cells of a family only, from the file."""
        return [int(cell) for (cell,) in self._con().execute("SELECT cell FROM family_only ORDER BY cell").fetchall()]

    def _member_owners(self) -> pd.DataFrame:
        """The remembered members that are parts of a person (cell, member, owner, sorted), from the file."""
        return self._con().sql("SELECT cell, member, owner FROM member_owners ORDER BY cell, member").df()

    def _owners_along(self, cell: np.ndarray, person: np.ndarray) -> np.ndarray | None:
        """The owner of each of the given remembered rows (itself, for a member that is a person);
        None when no member is a part of a person."""
        owners = self._member_owners()
        if owners.empty:
            return None
        owner = person.copy()
        found = pd.MultiIndex.from_arrays([owners["cell"], owners["member"]]).get_indexer(
            pd.MultiIndex.from_arrays([cell, person]))
        owner[found >= 0] = owners["owner"].to_numpy(dtype=np.uint64)[found[found >= 0]]
        return owner

    def verify_contents(self) -> None:
        """Recompute the digest from every remembered row; a difference stops the ledger's queries
        like any mismatch (`LedgerTampered`, audited). Reads the whole ledger."""
        found = chain_digest(genesis_digest(self.name), *self.contents())
        if found != self.digest:
            self._stop("the ledger file's remembered rows do not add up to its digest (edited)",
                       file_cells=self.cells, file_digest=found)

    # -- binding to the record ----------------------------------------------------------------

    def _con(self) -> duckdb.DuckDBPyConnection:
        """The file's connection; opened (and its state checked against ours) on first use when
        the open found the file exactly as this process left it (see `_unchanged_since_noted`)."""
        if not self._inside:
            raise RuntimeError("the query ledger is used outside its `Ledger.open` block")
        self._wait_for_checkpoint()
        if self.con is None:
            if not self.path.exists():
                self._stop("the ledger file is missing")
            if self._file_state() != (self.name, self.cells, self.rows, self.digest):
                self._stop("the ledger file holds another state than its record (replaced or an older copy)")
        assert self.con is not None
        return self.con

    def _note_file(self) -> None:
        """After a block that ended well, having opened the file (checked then, and now closed at the
        state of the memory kept): note the file as this process leaves it, so that the next open
        here can trust the memory without reading the file."""
        memory = ledger_memory.recalled(str(self.path), self._key())
        if memory is None or self._opened is None:  # not opened here: the file is as noted before
            return
        fingerprint = file_fingerprint(self.path)
        # the file checked at its opening, not one put in its place since
        memory.fingerprint = fingerprint if fingerprint and fingerprint[0][:2] == self._opened else None

    def _unchanged_since_noted(self, row: Any) -> bool:
        """Whether the record is at the state of the memory this process kept and the file is exactly
        as this process left it; then the state is taken from the memory and the file is opened only
        when a query needs it (a question asked again reads and writes nothing in it)."""
        memory = ledger_memory.recalled_state(str(self.path), self.name, row.cells, row.digest)
        if memory is None or memory.fingerprint is None or memory.fingerprint != file_fingerprint(self.path):
            return False
        _, self.cells, self.rows, self.digest = memory.key
        return True

    def _close(self) -> None:
        """Close the file, once a checkpoint under way is done (raising what it raised)."""
        try:
            self._wait_for_checkpoint()
        finally:
            if self.con is not None:
                detach_duckdb(self.con, self._name)
                self.con = None

    def _wait_for_checkpoint(self) -> None:
        """Wait for a checkpoint under way (closing would make it, 10-50 ms, and wait)."""
        checkpoint, self._checkpoint = self._checkpoint, None
        if checkpoint is not None:
            checkpoint.wait()

    def _row(self) -> Any:
        with self._engine.connect() as conn:
            return conn.execute(select(query_ledgers_table)
                                .where(query_ledgers_table.c.permit == self.name)).first()

    def _bind(self) -> None:
        """Check the file against the record (see the module docstring) and load its state."""
        self._as_left = False
        row = self._row()
        if row is not None and row.status == STOPPED:
            self._refuse(f"stopped earlier: {row.stopped_reason}")
        if row is not None and row.pending_cells is None and self._unchanged_since_noted(row):
            self._as_left = True
            return
        genesis = genesis_digest(self.name)
        if row is None:
            if self._used_before():
                self._stop("the ledger's record is missing while the audit log shows it remembered answers")
            if not self.path.exists():
                self._create()
                self._insert_row(ACTIVE, 0, genesis)
                return
            found = self._file_state()
            if found == (self.name, 0, 0, genesis):  # made, but its record was not yet written
                self._insert_row(ACTIVE, 0, genesis)
                return
            self._stop("a ledger file exists without a record", file_cells=found[1], file_digest=found[3])
        if not self.path.exists():
            if (row.cells, row.digest, row.pending_cells) == (0, genesis, None):  # nothing remembered, nothing lost
                self._create()
                return
            self._stop("the ledger file is missing", row=row)
        name, cells, rows, digest = self._file_state(row)
        if name != self.name:
            self._stop("the ledger file belongs to another ledger", row=row, file_cells=cells, file_digest=digest)
        if (cells, digest) == (row.cells, row.digest):
            if row.pending_cells is not None:
                self._clear_pending()
                self._audit_recovery("an update interrupted before it reached the ledger file was dropped", cells,
                                     digest)
        elif row.pending_cells is not None and (cells, digest) == (row.pending_cells, row.pending_digest):
            self._commit_pending(cells, digest)
            self._audit_recovery("an update interrupted after it reached the ledger file was completed", cells,
                                 digest)
        else:
            self._stop("the ledger file holds another state than its record (replaced or an older copy)", row=row,
                       file_cells=cells, file_digest=digest)
        self.cells, self.rows, self.digest = cells, rows, digest
        counted, highest, contributions = self._con().execute(
            "SELECT (SELECT count(*) FROM cells), (SELECT coalesce(max(cell), 0) FROM cells), "
            "(SELECT count(*) FROM contributions)").fetchall()[0]
        if (counted, highest, contributions) != (cells, cells, rows):
            self._stop("the ledger file's rows do not match its own state (edited)", row=row, file_cells=cells,
                       file_digest=digest)

    def _connect(self) -> duckdb.DuckDBPyConnection:
        try:
            con, self._name = attach_duckdb(self.path)
        except duckdb.IOException as exc:
            if "lock" in str(exc).lower():
                raise LedgerBusy(f"{_called(self.name)} is held by a process outside the "
                                 "ledger's lock; try again later") from None
            raise
        try:
            info = os.stat(self.path)
        except BaseException as exc:
            detach_duckdb(con, self._name)  # left attached, the file would stay locked for the process's life
            if isinstance(exc, OSError):  # moved away while it was being attached
                self._stop("the ledger file is missing")
            raise
        self._opened = (info.st_dev, info.st_ino)
        return con

    def _create(self) -> None:
        Path(f"{self.path}.wal").unlink(missing_ok=True)  # a write-ahead log left without its file
        try:
            self.con = self._connect()
        except (duckdb.Error, OSError):  # never quoted: the engine's text names paths
            self._stop("the ledger file cannot be made in its folder")
        self.con.execute("BEGIN TRANSACTION")
        self.con.execute(_CONTRIBUTIONS)
        self.con.execute("CREATE TABLE cells (cell BIGINT PRIMARY KEY, size BIGINT, signature UBIGINT, "
                         "definition VARCHAR)")
        self.con.execute(_SUM_MEMBERS)
        self.con.execute(_WITHHELD)
        self.con.execute(_FAMILY_ONLY)
        self.con.execute(_MEMBER_OWNERS)
        self.con.execute("CREATE TABLE ledger_state (permit VARCHAR, cells BIGINT, rows BIGINT, digest VARCHAR)")
        self.con.execute("INSERT INTO ledger_state VALUES (?, 0, 0, ?)", [self.name, genesis_digest(self.name)])
        self.con.execute("COMMIT")

    def _file_state(self, row: Any = None) -> tuple[str, int, int, str]:
        """(name, cells, rows, digest) the file says it holds (its name in the column `permit`); an
        unreadable file is a mismatch."""
        try:
            self.con = self._connect()
            state = self.con.execute("SELECT permit, cells, rows, digest FROM ledger_state").fetchall()
        except LedgerBusy:
            raise
        except duckdb.Error:
            self._close()
            self._stop("the ledger file cannot be read as a ledger", row=row)
        try:
            [(permit, cells, rows, digest)] = state
            if not isinstance(digest, str) or not _HEX_DIGEST.match(digest):
                raise ValueError("not a digest")
            found = str(permit), int(cells), int(rows), digest
        except (TypeError, ValueError):  # never quoted: the file's content is not trusted
            self._stop("the ledger file's own state is damaged", row=row)
            raise
        if self._as_left:  # (1-2 ms of each question's first write)
            return found
        try:  # a file written before sums were kept as definitions has none, and holds their rows; one
            # written before cells had definitions has none either (its cells have no definition), nor
            # one written before withheld cells, cells of a family only or the owners of members were kept
            self.con.execute(_SUM_MEMBERS)
            self.con.execute(_WITHHELD)
            self.con.execute(_FAMILY_ONLY)
            self.con.execute(_MEMBER_OWNERS)
            self.con.execute("ALTER TABLE IF EXISTS cells ADD COLUMN IF NOT EXISTS definition VARCHAR")
        except duckdb.Error:
            self._close()
            self._stop("the ledger file cannot be read as a ledger", row=row)
        return found

    def _used_before(self) -> bool:
        """Whether the audit log shows that this ledger remembered cells or was stopped (a record
        names its ledger; one written before records did is a permit's, named by its permit)."""
        for record in self._governance.audit.records():
            if '"ledger' not in record.detail_json or record.detail.get("ledger", record.permit) != self.name:
                continue
            if record.action == MISMATCH_ACTION:
                return True
            if '"ledger_cells"' in record.detail_json:
                cells = record.detail.get("ledger_cells")
                if isinstance(cells, int) and cells > 0:
                    return True
        return False

    def _insert_row(self, status: str, cells: int, digest: str, reason: str | None = None) -> None:
        with self._engine.begin() as conn:
            conn.execute(query_ledgers_table.insert().values(
                permit=self.name, status=status, cells=cells, digest=digest, stopped_reason=reason,
                updated_at=_now()))

    def _set_pending(self, cells: int, digest: str) -> None:
        t = query_ledgers_table.c
        with self._engine.begin() as conn:
            changed = conn.execute(update(query_ledgers_table).where(
                t.permit == self.name, t.status == ACTIVE, t.cells == self.cells, t.digest == self.digest
            ).values(pending_cells=cells, pending_digest=digest, updated_at=_now())).rowcount
        if changed != 1:
            self._stop("the ledger's record changed while the ledger was in use")

    def _clear_pending(self) -> None:
        with self._engine.begin() as conn:
            conn.execute(update(query_ledgers_table).where(query_ledgers_table.c.permit == self.name)
                         .values(pending_cells=None, pending_digest=None, updated_at=_now()))

    def _commit_pending(self, cells: int, digest: str) -> None:
        t = query_ledgers_table.c
        with self._engine.begin() as conn:
            changed = conn.execute(update(query_ledgers_table).where(
                t.permit == self.name, t.status == ACTIVE, t.pending_cells == cells, t.pending_digest == digest
            ).values(cells=cells, digest=digest, pending_cells=None, pending_digest=None, updated_at=_now())).rowcount
        if changed != 1:
            self._stop("the ledger's record changed while the ledger was in use")

    def _stop(self, reason: str, *, row: Any = None, file_cells: int | None = None,
              file_digest: str | None = None) -> None:
        """Mark the permit's ledger stopped, audit the mismatch and raise LedgerTampered."""
        t = query_ledgers_table.c
        with self._engine.begin() as conn:
            changed = conn.execute(update(query_ledgers_table).where(t.permit == self.name).values(
                status=STOPPED, stopped_reason=reason, updated_at=_now())).rowcount
        if not changed:
            self._insert_row(STOPPED, 0, genesis_digest(self.name), reason)
        detail: dict[str, Any] = {"record_cells": None if row is None else row.cells,
                                  "record_digest": None if row is None else row.digest,
                                  "file_cells": file_cells, "file_digest": file_digest}
        self._refuse(reason, detail)

    def _refuse(self, reason: str, detail: dict[str, Any] | None = None) -> None:
        self._close()
        self._governance.audit.append(actor=self._actor.name, role=self._actor.main_role, action=MISMATCH_ACTION,
                                      permit=self.permit, outcome="refused",
                                      detail={"ledger": self.name, "reason": reason,
                                              **{k: v for k, v in (detail or {}).items() if v is not None}})
        asked = "every query of the workspace is" if self.name == WORKSPACE_LEDGER else "its queries are"
        raise LedgerTampered(f"{_called(self.name)} does not match its record ({reason}); {asked} stopped until a "
                             "data security officer investigates")

    def _audit_recovery(self, what: str, cells: int, digest: str) -> None:
        self._governance.audit.append(actor=self._actor.name, role=self._actor.main_role, action=RECOVERED_ACTION,
                                      permit=self.permit, outcome="ok",
                                      detail={"recovered": what, "ledger": self.name, "ledger_cells": cells,
                                              "ledger_digest": digest})
