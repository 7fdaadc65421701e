"""The workspace's differencing ledger for the analyses that publish tables rather than answer
queries (a study's groups and rows, an insight run's cells).

The ledger is made if the pool has none yet, opened under its lock for the permit and brought up
to date with what other permits released (`carry_over`); then asked: the cells it finds are
returned, and when it finds none it has remembered them. The caller decides what a finding means
for its own outputs (withhold the run, or hide cells and ask again).

An analysis is a batch job: it waits for its turn on the ledger up to `ANALYSIS_WAIT`, not the
query's minute. A study whose check hides cells searches for them (about two minutes for a study
of 5,000 persons whose small groups it hides) without holding the ledger: queries and insight
runs of other processes take their turns meanwhile (see `safepool.query.ledger.Ledger.check`),
and the study waits for its turn again, up to the same `ANALYSIS_WAIT`.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pandas as pd

from safepool.governance.context import Governance
from safepool.governance.users import Actor
from safepool.pool.ledger_keys import WORKSPACE_LEDGER
from safepool.query.ledger import Ledger
from safepool.query.ledger_carry_over import carry_over

ANALYSIS_WAIT = 900.0  # seconds a study or an insight run waits for its turn on the ledger


@contextmanager
def opened_ledger(pool_dir: Path, governance: Governance, actor: Actor, permit: str, min_frequency: int
                  ) -> Iterator[Ledger]:
    """The workspace's ledger (made if the pool has none yet) opened under its lock for the permit
    and brought up to date with what other permits released: a caller that hides what a check
    finds and checks again keeps it open meanwhile, so that the cells found are remembered as
    withheld with the check that passes."""
    Ledger.prepare(pool_dir, WORKSPACE_LEDGER)
    with Ledger.open(pool_dir, governance, actor, WORKSPACE_LEDGER, permit=permit, timeout=ANALYSIS_WAIT) as ledger:
        carry_over(ledger, pool_dir, governance, actor, permit, min_frequency)
        yield ledger


def check_in_ledger(pool_dir: Path, governance: Governance, actor: Actor, permit: str, incoming: pd.DataFrame,
                    column_of: dict[int, int], min_frequency: int, **options: Any) -> tuple[dict[int, str], dict]:
    """The incoming cells (columns cell, person: ledger key, value; `column_of`: each cell's column)
    that the ledger finds with every earlier answer, each with the check that found it, and the
    ledger's state after the check (for the audit record). `options` go to `Ledger.check`
    (`family`, `definitions`)."""
    with opened_ledger(pool_dir, governance, actor, permit, min_frequency) as ledger:
        return ledger.check(incoming, column_of, min_frequency, **options), ledger.state()
