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

from safepool.study.effects import effect_table, estimate_cells, matched_cells, outcome_columns
from safepool.study.inference import HorizonEstimates
from safepool.study.table_checks import is_binary, numeric_matrix

WEIGHT = "censoring_weight"


def censoring_weights(units: pd.DataFrame, hazard: pd.Series, matched: pd.DataFrame,
                      horizons: Sequence[int], person: str = "pid") -> pd.DataFrame:
    """matched plus f"{WEIGHT}@{h}" per horizon: 1 for treated units and h <= 0, else 1 / survival."""
    survival = pd.DataFrame({person: units[person].to_numpy(), "t": units["t"].to_numpy(),
                             "log_survival": np.log1p(-np.clip(hazard.reindex(units.index).to_numpy(), 0, 1 - 1e-9))})
    survival = survival.sort_values([person, "t"], kind="stable")
    survival["cumulative"] = survival.groupby(person, sort=False)["log_survival"].cumsum()
    survival = survival.sort_values("t", kind="stable")
    keys = pd.DataFrame({person: matched[person].to_numpy(), "t": matched["t"].to_numpy(),
                         "row": np.arange(len(matched))})
    at_entry = _cumulative_at(keys, survival, person)
    treated = matched["treated"].to_numpy() == 1
    out = matched.copy()
    for h in horizons:
        if h <= 0:
            out[f"{WEIGHT}@{h}"] = 1.0
            continue
        later = _cumulative_at(keys.assign(t=keys["t"] + h), survival, person)
        out[f"{WEIGHT}@{h}"] = np.where(treated, 1.0, np.exp(at_entry - later))
    return out


def _cumulative_at(keys: pd.DataFrame, survival: pd.DataFrame, person: str) -> np.ndarray:
    """Cumulative log survival of each key's person at its quarter (last eligible quarter up to it)."""
    found = pd.merge_asof(keys.sort_values("t", kind="stable"), survival[[person, "t", "cumulative"]],
                          on="t", by=person, direction="backward")
    return found.sort_values("row")["cumulative"].fillna(0.0).to_numpy()


def weighted_cells(matched: pd.DataFrame, outcome: str, horizons: Sequence[int], method: str = "att",
                   baseline: int = -1, unit_col: str | None = None) -> pd.DataFrame:
    """D's matched cells with the censoring weights applied (needs censoring_weights' columns)."""
    sets = pd.factorize(matched["set_id"])[0]
    control = matched["treated"].to_numpy() != 1
    base = matched["weight"].to_numpy(float)
    keep = ["treated", "set_id", *([unit_col] if unit_col else [])]
    slim = matched[keep].copy()
    if method == "did":
        slim[f"{outcome}@{baseline}"] = matched[f"{outcome}@{baseline}"]
    parts = []
    for h in horizons:
        weight = base * matched[f"{WEIGHT}@{h}"].to_numpy(float)
        column = f"{outcome}@{h}"
        slim[column], slim["_weight"] = matched[column], weight
        cells = matched_cells(slim, outcome, [h], method, baseline, weight_col="_weight", unit_col=unit_col)
        observed = ~np.isnan(slim[column].to_numpy(float))
        if method == "did":
            observed &= ~np.isnan(slim[f"{outcome}@{baseline}"].to_numpy(float))
        kept = np.bincount(sets[control & observed], weights=weight[control & observed], minlength=sets.max() + 1
                           ).astype(float)
        offered = np.bincount(sets[control], weights=base[control], minlength=sets.max() + 1)
        share = np.divide(kept, offered, out=np.zeros(kept.size), where=offered > 0)
        cells["w"] = cells["w"] * share[cells["set"].to_numpy()]
        parts.append(cells)
        if column != f"{outcome}@{baseline}" or method != "did":
            slim = slim.drop(columns=[column])
    return pd.concat(parts, ignore_index=True)


def censoring_weighted_effects(matched: pd.DataFrame, outcome: str, horizons: Sequence[int], method: str = "att",
                               baseline: int = -1, ci: str = "cluster_robust", alpha: float = 0.05,
                               n_boot: int = 500, random_state: int = 0, unit_col: str | None = None
                               ) -> tuple[pd.DataFrame, HorizonEstimates]:
    """Effect rows (safepool.study.effects.EFFECT_COLUMNS) and estimates with censoring weights."""
    cells = weighted_cells(matched, outcome, horizons, method, baseline, unit_col)
    result = estimate_cells(cells, ci, alpha, n_boot, random_state, f"effects of {outcome}")
    binary = is_binary(numeric_matrix(matched, outcome_columns(outcome, horizons), outcome, allow_missing=True).ravel())
    return effect_table(outcome, method, cells, result, ci, binary), result
