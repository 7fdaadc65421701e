"""A permit's own query ledger, kept before the workspace had one, carried over into the workspace's.

Before the workspace's ledger (`safepool.query.ledger.WORKSPACE_LEDGER`), each permit had a ledger
of its own, named by the permit and keyed by DuckDB's hash of its pseudonyms. What it remembers
was shown to the permit's analysts, so it must go on counting: forgetting it would let a later
answer, of this permit or of another over the same persons, be set against an earlier one. Before
any query of the workspace is answered after the upgrade, under the workspace ledger's lock, every
permit's own ledger still to carry is carried, the asked permit's first (while one of them cannot
be, because its pool has no ledger keys yet, every query is refused, audited, naming the permit and
`safepool pool ledger-keys`):

- the permit's ledger is opened and verified against its record as before (a missing, replaced or
  stopped one is refused as before, and so is every query until a data security officer acts);
- each remembered person is found by the hash of a pseudonym of the permit's pool, and its cells
  go into the workspace's ledger under the person's ledger key, with their definitions and the
  totals kept as the cells they add up, checked as an answer is (`Ledger.carry`): a cell that, with
  what is remembered, gives away too few persons (answers of two permits set against each other
  before) is left out, else every later answer would fail the all-answers audit; cells withheld
  then are not carried (the audit finds them again);
- the permit's record is closed (status stopped, reason `CARRIED`), its file renamed beside it
  (`<permit>.carried.duckdb`, kept), and the step audited (`query_ledger_carried_over`, with the
  number of cells, of cells left out and of persons the pool no longer holds, whose rows could
  not be carried).

A crash after the workspace's ledger took the cells and before the record is closed carries them
again at the next query: remembering more is never unsafe.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
from sqlalchemy import select, update

from safepool.duckdb_connection import open_duckdb
from safepool.governance.context import Governance
from safepool.governance.ledger_state import ACTIVE, STOPPED, query_ledgers_table
from safepool.governance.users import Actor
from safepool.faults import Refused
from safepool.pool.ledger_keys import LedgerKeys, LedgerKeysMissing, ledger_keys
from safepool.query.ledger import LEDGER_DIR, WORKSPACE_LEDGER, Ledger

CARRIED = "carried over into the workspace's query ledger"
CARRIED_ACTION = "query_ledger_carried_over"
_settled: set[str] = set()  # metadata stores with no permit's ledger left to carry: not asked again


class LedgerNotCarried(Refused):
    """A permit's own ledger of an earlier version waits to be carried over, and its pool has no
    ledger keys yet: no query of the workspace is answered until it has."""


def carry_over(workspace_ledger: Ledger, pool_dir: Path, governance: Governance, actor: Actor, permit: str,
               min_frequency: int) -> None:
    """Carry every permit's own ledger still to carry into the workspace's (open), the asked
    permit's first; refused (audited under `permit`) while one of them cannot be carried."""
    store = str(governance.permits.engine.url)
    if store in _settled:
        return
    waiting = sorted(_waiting(governance), key=lambda other: other != permit)
    for other in waiting:
        try:
            persons = ledger_keys(pool_dir, other)
        except LedgerKeysMissing:
            reason = (f"the query ledger that an earlier version kept for permit {other} is not yet carried into "
                      f"the workspace's, and its pool has no ledger keys: a steward gives it them with `safepool "
                      f"pool ledger-keys {other}`; until then no query of the workspace is answered")
            governance.audit.append(actor=actor.name, role=actor.main_role, action="query_refused", permit=permit,
                                    outcome="refused", detail={"reason": reason})
            raise LedgerNotCarried(reason) from None
        _carry(workspace_ledger, pool_dir, governance, actor, other, persons, min_frequency)
    _settled.add(store)


def _carry(workspace_ledger: Ledger, pool_dir: Path, governance: Governance, actor: Actor, permit: str,
           persons: LedgerKeys, min_frequency: int) -> None:
    """Carry one permit's own ledger (verified against its record as it was) into the workspace's."""
    with Ledger.open(pool_dir, governance, actor, permit) as own:
        cells, defined, definitions, *_ = own.contents()
    mapped, lost = _by_ledger_key(cells, persons)
    kept = set(mapped["cell"].tolist())
    defined = {cell: members for cell, members in defined.items() if kept.issuperset(members)}
    left_out = workspace_ledger.carry(mapped, defined, definitions, min_frequency) if kept else []
    _close(governance, permit)
    folder = Path(pool_dir) / LEDGER_DIR
    (folder / f"{permit}.duckdb").replace(folder / f"{permit}.carried.duckdb")
    governance.audit.append(actor=actor.name, role=actor.main_role, action=CARRIED_ACTION, permit=permit,
                            detail={"cells": int(cells["cell"].nunique()) + len(defined),
                                    "cells_not_carried": len(left_out), "persons_not_carried": lost,
                                    **workspace_ledger.state()})


def _waiting(governance: Governance) -> list[str]:
    """The permits whose own ledger has a record not closed by a carry-over (one with nothing
    remembered is closed without opening it); the workspace's own is never one."""
    t = query_ledgers_table.c
    with governance.permits.engine.connect() as conn:
        rows = conn.execute(select(query_ledgers_table).where(t.permit != WORKSPACE_LEDGER)).fetchall()
    waiting = []
    for row in rows:
        if row.status == STOPPED and row.stopped_reason == CARRIED:
            continue
        if row.status == ACTIVE and row.cells == 0 and row.pending_cells is None:
            _close(governance, row.permit)
            continue
        waiting.append(row.permit)
    return waiting


def _by_ledger_key(rows: pd.DataFrame, persons: LedgerKeys) -> tuple[pd.DataFrame, int]:
    """The rows with each person (DuckDB's hash of a pseudonym, as the permit's ledger kept it) as
    its ledger key, and how many persons the pool no longer holds (their rows are left out)."""
    pids, keys = persons.items()
    with open_duckdb() as con:
        con.register("pool_pids", pa.table({"pid": pids.astype(np.int64)}))
        hashed = con.execute("SELECT hash(pid) AS h FROM pool_pids").fetchnumpy()["h"]
    order = np.argsort(hashed)
    hashed, keys = np.asarray(hashed, dtype=np.uint64)[order], keys[order]
    person = rows["person"].to_numpy(dtype=np.uint64)
    found = np.minimum(np.searchsorted(hashed, person), max(len(hashed) - 1, 0))
    known = (hashed[found] == person) if len(hashed) else np.zeros(len(person), dtype=bool)
    lost = len(np.unique(person[~known]))
    return rows[known].assign(person=keys[found[known]]), lost


def _close(governance: Governance, permit: str) -> None:
    with governance.permits.engine.begin() as conn:
        conn.execute(update(query_ledgers_table).where(query_ledgers_table.c.permit == permit).values(
            status=STOPPED, stopped_reason=CARRIED))
