"""The values behind each mean of the balance table, for the differencing ledger.

The balance table shows, per covariate, the mean over the clients the run describes and over the
persons eligible as controls (before matching), and over the matched clients and controls (after).
A mean times its count is a sum of the persons' values, and an analyst can add up the same values
with queries: an attacking review summed the clients' children, the married and the women among
them, and their benefits in the four quarters before entry (one query per entry quarter) over
every client, and subtracted the balance table's sums over the clients it describes, which leave
out the few not matched. That gave those four clients' children and benefits from the demo's own
release, and one client's after a study cut at another quarter.

So each mean the balance table shows enters the workspace's ledger as the sum it is: a cell of
the arm's persons, each keyed by its ledger key as a query answer's persons are, with the value it
adds (its covariate over its units, times their weights after matching). A query over nearly the
same persons and values is then set against it as against another answer: a count or sum that
differs from it by a few persons is close, and sums whose shared persons add the same amounts are
one family for the group audit. A row the checks hide tells nothing and stays out; a row the
ledger finds is hidden so too (`safepool.study.arm_values.RowsFound`), as the query engine hides a cell: within one
run the means before matching less those after tell the clients not matched, and when those are
many but only a few of them have a value (tertiary education, earnings), those few's values.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence

import numpy as np
import pandas as pd

from safepool.study.arm_values import ArmValues, ShownArm

STAGES = {"before": "before matching", "after": "after matching"}
ARMS = {1: "clients", 0: "controls"}


def balance_values(stages: Mapping[str, pd.DataFrame], covariates: Sequence[str], person: str,
                   weight: str) -> dict[tuple[str, str], dict[str, ArmValues]]:
    """Per (stage, covariate) of the balance table, each arm's persons and values: `stages` holds the
    units each stage describes (columns `person`, treated, the covariates, and `weight` where the
    stage weighs them; one otherwise)."""
    found: dict[tuple[str, str], dict[str, ArmValues]] = {}
    for stage, units in stages.items():
        weights = units[weight].to_numpy(float) if weight in units.columns else np.ones(len(units))
        weighted = units[list(covariates)].to_numpy(float) * weights[:, None]
        treated = units["treated"].to_numpy() == 1
        for arm, name in ARMS.items():
            chosen = treated if arm == 1 else ~treated
            sums = pd.DataFrame(weighted[chosen], columns=list(covariates)).groupby(
                units[person].to_numpy()[chosen], sort=True).sum()
            persons = sums.index.to_numpy()
            for covariate in covariates:
                found.setdefault((stage, covariate), {})[name] = ArmValues(persons, sums[covariate].to_numpy())
    return found


def shown_balance_cells(values: Mapping[tuple[str, str], Mapping[str, ArmValues]],
                        rows: Iterable[tuple[str, str]], shown: np.ndarray) -> dict[str, ShownArm]:
    """The arms of the balance rows shown (`rows`: the table's (stage, covariate) in its order,
    `shown` whether each is), each named by its row and arm, with the row's position."""
    return {f"balance: {covariate} {STAGES.get(stage, stage)}, {arm}": ShownArm("balance", position, arm_values)
            for position, ((stage, covariate), visible) in enumerate(zip(rows, shown)) if visible
            for arm, arm_values in values[(stage, covariate)].items()}
