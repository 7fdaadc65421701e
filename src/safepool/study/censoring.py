"""Controls who later enter the treatment: censored from their own entry, and reweighted.

A control at quarter q who enters at e > q has no untreated outcome from e on (the cohort
leaves it missing). That censoring is informative: the controls who enter are those whose
situation stayed poor (entry is selected on unemployment), so the controls left observed look
better off than the untreated clients would have, and the effect reads low. Inverse
probability of censoring weights undo it: a control still uncensored at q+h stands for the
similar controls who entered in between, with weight 1 / P(no entry in q+1..q+h), the product
of one minus the entry hazard of each later quarter. The hazard of a person at quarter s is
the propensity score of its unit at s (the matcher's pooled model with quarter effects: the
probability of entering at s among those still eligible), so no second model is fitted. A
quarter in which the person was not eligible adds no hazard.

Effects are then computed from D's matched cells (safepool.study.effects): within a set the
controls weigh weight x censoring weight, and the set itself counts with the censoring-weighted
share of its controls still observed, so that a set whose only control entered is replaced,
on average, by the sets whose similar controls did not.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

from safepool.study.effects import cells_of, effect_table, estimate_cells, outcome_columns, outcome_levels, unit_keys
from safepool.study.inference import HorizonEstimates
from safepool.study.table_checks import is_binary, numeric_matrix, require_columns, treatment_indicator

WEIGHT = "censoring_weight"


def censoring_weights(units: pd.DataFrame, hazard: pd.Series, matched: pd.DataFrame,
                      horizons: Sequence[int], person: str = "pid") -> pd.DataFrame:
    """matched plus f"{WEIGHT}@{h}" per horizon: 1 for treated units and h <= 0, else 1 / survival."""
    persons = pd.Index(pd.unique(units[person].to_numpy()))
    code = persons.get_indexer(units[person].to_numpy()).astype(np.int64)
    t = units["t"].to_numpy(np.int64)
    log_survival = np.log1p(-np.clip(hazard.reindex(units.index).to_numpy(float), 0, 1 - 1e-9))
    # each person's cumulative log survival over its eligible quarters, in (person, quarter) order
    order = np.lexsort((t, code))
    code, t, log_survival = code[order], t[order], log_survival[order]
    cumulative = pd.Series(log_survival).groupby(code, sort=False).cumsum().to_numpy()
    span = int(t.max() - t.min()) + 2 if t.size else 1
    keys = code * span + (t - (t.min() if t.size else 0))

    def cumulative_at(who: np.ndarray, quarter: np.ndarray) -> np.ndarray:
        """Cumulative log survival of each person at its last eligible quarter up to `quarter` (0 if none)."""
        at = np.clip(quarter - (t.min() if t.size else 0), -1, span - 1)
        found = np.searchsorted(keys, who * span + at, side="right") - 1
        hit = (found >= 0) & (at >= 0) & (code[np.maximum(found, 0)] == who)
        return np.where(hit, cumulative[np.maximum(found, 0)], 0.0)

    who = persons.get_indexer(matched[person].to_numpy()).astype(np.int64)
    start = matched["t"].to_numpy(np.int64)
    at_entry = cumulative_at(who, start)
    treated = matched["treated"].to_numpy() == 1
    columns = {}
    for h in horizons:
        columns[f"{WEIGHT}@{h}"] = (np.ones(len(matched)) if h <= 0 else
                                    np.where(treated, 1.0, np.exp(at_entry - cumulative_at(who, start + h))))
    return pd.concat([matched, pd.DataFrame(columns, index=matched.index)], axis=1)


def weighted_cells(matched: pd.DataFrame, outcome: str, horizons: Sequence[int], method: str = "att",
                   baseline: int = -1, unit_col: str | None = None) -> pd.DataFrame:
    """D's matched cells with the censoring weights applied (needs censoring_weights' columns)."""
    where = f"effects of {outcome}"
    horizons = list(horizons)
    require_columns(matched, ["treated", "set_id", "weight", *[f"{WEIGHT}@{h}" for h in horizons]], where)
    sets = pd.factorize(matched["set_id"])[0]
    treated = treatment_indicator(matched, "treated", where)
    base = numeric_matrix(matched, ["weight"], where)[:, 0]
    units = unit_keys(matched, unit_col, where)
    levels, y = outcome_levels(matched, outcome, horizons, method, baseline, where)
    weights = base[:, None] * numeric_matrix(matched, [f"{WEIGHT}@{h}" for h in horizons], where)
    offered = np.bincount(sets[~treated], weights=base[~treated], minlength=int(sets.max()) + 1)
    return cells_of(sets, treated, units, weights, y, levels, horizons, offered)


def censoring_weighted_effects(matched: pd.DataFrame, outcome: str, horizons: Sequence[int], method: str = "att",
                               baseline: int = -1, ci: str = "cluster_jackknife", alpha: float = 0.05,
                               n_boot: int = 500, random_state: int = 0, unit_col: str | None = None
                               ) -> tuple[pd.DataFrame, HorizonEstimates]:
    """Effect rows (safepool.study.effects.EFFECT_COLUMNS) and estimates with censoring weights."""
    cells = weighted_cells(matched, outcome, horizons, method, baseline, unit_col)
    result = estimate_cells(cells, ci, alpha, n_boot, random_state, f"effects of {outcome}")
    binary = is_binary(numeric_matrix(matched, outcome_columns(outcome, horizons), outcome, allow_missing=True).ravel())
    return effect_table(outcome, method, cells, result, ci, binary), result
