"""Effects of the treatment on the treated, from matched sets, and the naive comparison.

Outcomes are wide columns f"{outcome}@{h}" (h = quarters relative to entry); a missing value
means not observed. A (set, horizon) cell is used when its treated unit and at least one of
its controls are observed; the controls' weights are renormalised over those observed, so
each usable set counts once.
- method="att": the difference in the outcome at horizon h.
- method="did": the difference in the change from the baseline horizon (default -1, the
  quarter before entry) to h; a cell then needs both quarters observed.
Every effect row carries n_treated and n_control (distinct units in the usable cells; units
are rows, or persons when unit_col names a person column) for the disclosure checks, the
number of independent clusters, and the weighted outcome levels (mean_treated,
mean_control, sd_control) that the sensitivity analysis converts effects with.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal

import numpy as np
import pandas as pd

from safepool.study.balance import weighted_mean_var
from safepool.study.inference import (
    HorizonEstimates,
    cluster_bootstrap,
    cluster_jackknife,
    cluster_robust,
    merged_clusters,
)
from safepool.study.table_checks import (
    StudyTableError,
    is_binary,
    numeric_matrix,
    require_columns,
    require_frame,
    treatment_indicator,
)

EFFECT_COLUMNS = ["outcome", "horizon", "method", "estimate", "std_error", "ci_low", "ci_high", "p_value",
                  "n_treated", "n_control", "n_clusters", "mean_treated", "mean_control", "sd_control",
                  "outcome_type", "ci_method"]


def outcome_columns(outcome: str, horizons: Sequence[int]) -> list[str]:
    return [f"{outcome}@{h}" for h in horizons]


def unit_keys(df: pd.DataFrame, unit_col: str | None, where: str) -> np.ndarray:
    """Codes that say which rows are the same unit: the person column if given, else the index."""
    if unit_col is None:
        return pd.factorize(df.index)[0]
    require_columns(df, [unit_col], where)
    return pd.factorize(df[unit_col])[0]


def matched_cells(matched: pd.DataFrame, outcome: str, horizons: Sequence[int], method: str = "att",
                  baseline: int = -1, treatment: str = "treated", set_col: str = "set_id",
                  weight_col: str = "weight", unit_col: str | None = None) -> pd.DataFrame:
    """Usable (set, horizon) cells in long form: horizon, treated, y, w, level, cluster, unit."""
    where = f"effects of {outcome}"
    matched = require_frame(matched, where)
    if method not in ("att", "did"):
        raise StudyTableError(where, f"method must be att or did, not {method}")
    horizons = list(horizons)
    require_columns(matched, [treatment, set_col, weight_col, *outcome_columns(outcome, horizons)], where)
    treated = treatment_indicator(matched, treatment, where)
    weight = numeric_matrix(matched, [weight_col], where)[:, 0]
    units = unit_keys(matched, unit_col, where)
    sets = pd.factorize(matched[set_col])[0]
    levels, y = outcome_levels(matched, outcome, horizons, method, baseline, where)
    return cells_of(sets, treated, units, np.broadcast_to(weight[:, None], y.shape), y, levels, horizons)


def outcome_levels(matched: pd.DataFrame, outcome: str, horizons: Sequence[int], method: str, baseline: int,
                   where: str) -> tuple[np.ndarray, np.ndarray]:
    """The outcome's levels at the horizons (rows x horizons, NaN where not observed), and what the
    estimator differences: the levels (att) or their change from the baseline horizon (did)."""
    levels = numeric_matrix(matched, outcome_columns(outcome, horizons), where, allow_missing=True)
    if method == "att":
        return levels, levels
    base = numeric_matrix(matched, outcome_columns(outcome, [baseline]), where, allow_missing=True)
    return levels, levels - base


def cells_of(sets: np.ndarray, treated: np.ndarray, units: np.ndarray, weights: np.ndarray, y: np.ndarray,
             levels: np.ndarray, horizons: Sequence[int], offered: np.ndarray | None = None) -> pd.DataFrame:
    """Usable (set, horizon) cells from the matched rows, horizon by horizon in row order (`row`:
    the matched row of each).

    sets, treated, units: per row (codes 0.., bool, codes); weights, y, levels: rows x horizons
    (weights may differ by horizon, as censoring weights do; y and levels NaN where not
    observed). A cell is usable when its set has both a treated and a control row observed at
    the horizon; within it each side's weights are normalised to sum to 1. With `offered` (per
    set, the weight its controls had before any was censored) the whole cell is then weighed
    by the share of that weight still observed (safepool.study.censoring)."""
    n_horizons = y.shape[1]
    n_sets = int(sets.max()) + 1 if sets.size else 0
    column, row = np.nonzero(~np.isnan(y).T)
    cell = sets[row] * n_horizons + column
    side = cell * 2 + treated[row]
    w = weights[row, column]
    side_total = np.bincount(side, weights=w, minlength=2 * n_sets * n_horizons)
    side_rows = np.bincount(side, minlength=2 * n_sets * n_horizons)
    both = (side_rows[0::2] > 0) & (side_rows[1::2] > 0)
    with np.errstate(divide="ignore", invalid="ignore"):
        normalised = w / side_total[side]
        if offered is not None:
            kept = side_total[0::2]  # controls' weight observed, per cell
            share = np.divide(kept.reshape(n_sets, n_horizons), offered[:, None],
                              out=np.zeros((n_sets, n_horizons)), where=offered[:, None] > 0).ravel()
            normalised = normalised * share[cell]
    keep = both[cell] & (normalised > 0)
    row, column = row[keep], column[keep]
    cluster_of_set = np.zeros(n_sets, dtype=np.int64)
    cluster_of_set[sets] = merged_clusters(sets, units)
    return pd.DataFrame({"set": sets[row], "horizon": np.asarray(horizons)[column], "treated": treated[row],
                         "y": y[row, column], "level": levels[row, column], "w": normalised[keep],
                         "unit": units[row], "cluster": cluster_of_set[sets[row]], "row": row})


def effect_table(outcome: str, method: str, cells: pd.DataFrame, result: HorizonEstimates,
                 ci_method: str, binary: bool) -> pd.DataFrame:
    """Rows of EFFECT_COLUMNS from the estimates and the cells behind them (the frame made once,
    from whole columns: setting them one by one costs pandas more than the arithmetic here)."""
    per_horizon: dict[str, list[float]] = {name: [] for name in
                                           ("horizon", "n_treated", "n_control", "mean_treated", "mean_control",
                                            "sd_control")}
    horizon, unit = cells["horizon"].to_numpy(), cells["unit"].to_numpy()
    treated = cells["treated"].to_numpy(bool)
    levels, weights = cells["level"].to_numpy(float), cells["w"].to_numpy(float)
    for h in np.sort(pd.unique(horizon)):  # each horizon's cells in table order, without splitting the frame
        at = horizon == h
        is_t, level, w, units = treated[at], levels[at], weights[at], unit[at]
        mean_t, _ = weighted_mean_var(level[is_t], w[is_t])
        mean_c, var_c = weighted_mean_var(level[~is_t], w[~is_t])
        for name, value in (("horizon", int(h)), ("n_treated", int(pd.unique(units[is_t]).size)),
                            ("n_control", int(pd.unique(units[~is_t]).size)), ("mean_treated", mean_t),
                            ("mean_control", mean_c), ("sd_control", float(np.sqrt(var_c)))):
            per_horizon[name].append(value)
    return pd.DataFrame({
        "outcome": outcome, "horizon": per_horizon["horizon"], "method": method, "estimate": result.estimate,
        "std_error": result.std_error, "ci_low": result.ci_low, "ci_high": result.ci_high,
        "p_value": result.p_value(), "n_treated": per_horizon["n_treated"], "n_control": per_horizon["n_control"],
        "n_clusters": result.n_clusters, "mean_treated": per_horizon["mean_treated"],
        "mean_control": per_horizon["mean_control"], "sd_control": per_horizon["sd_control"],
        "outcome_type": "binary" if binary else "continuous", "ci_method": ci_method}, columns=EFFECT_COLUMNS)


def estimate_cells(cells: pd.DataFrame, ci: str, alpha: float, n_boot: int, random_state: int,
                   where: str) -> HorizonEstimates:
    if ci == "cluster_jackknife":
        return cluster_jackknife(cells, alpha, where)
    if ci == "cluster_robust":
        return cluster_robust(cells, alpha, where)
    if ci == "cluster_bootstrap":
        return cluster_bootstrap(cells, alpha, n_boot, random_state, where)
    raise StudyTableError(where, f"ci must be cluster_jackknife, cluster_robust or cluster_bootstrap, not {ci}")


class EffectEstimator:
    """ATT (or matched difference-in-differences) per outcome and horizon, with set-respecting CIs.

    After fit: effects_ (EFFECT_COLUMNS, one row per outcome and horizon with a usable cell)
    and estimates_ (outcome -> HorizonEstimates, with the joint covariance across horizons).
    """

    def __init__(self, outcomes: Sequence[str], horizons: Sequence[int], treatment: str = "treated",
                 set_col: str = "set_id", weight_col: str = "weight", method: Literal["att", "did"] = "att",
                 baseline: int = -1,
                 ci: Literal["cluster_jackknife", "cluster_robust", "cluster_bootstrap"] = "cluster_jackknife",
                 n_boot: int = 500, alpha: float = 0.05, random_state: int = 0,
                 unit_col: str | None = None) -> None:
        self.outcomes = outcomes
        self.horizons = horizons
        self.treatment = treatment
        self.set_col = set_col
        self.weight_col = weight_col
        self.method = method
        self.baseline = baseline
        self.ci = ci
        self.n_boot = n_boot
        self.alpha = alpha
        self.random_state = random_state
        self.unit_col = unit_col

    def fit(self, matched: pd.DataFrame) -> "EffectEstimator":
        if isinstance(self.outcomes, str) or not self.outcomes:
            raise StudyTableError("effect settings", "outcomes must be a non-empty list of outcome names")
        tables, self.estimates_ = [], {}
        for outcome in self.outcomes:
            where = f"effects of {outcome}"
            cells = matched_cells(matched, outcome, self.horizons, self.method, self.baseline, self.treatment,
                                  self.set_col, self.weight_col, self.unit_col)
            result = estimate_cells(cells, self.ci, self.alpha, self.n_boot, self.random_state, where)
            binary = is_binary(numeric_matrix(matched, outcome_columns(outcome, self.horizons), where,
                                              allow_missing=True).ravel())
            self.estimates_[outcome] = result
            tables.append(effect_table(outcome, self.method, cells, result, self.ci, binary))
        self.effects_ = pd.concat(tables, ignore_index=True)
        return self


def naive_difference(cohort_df: pd.DataFrame, outcome: str, horizons: Sequence[int], treatment: str = "treated",
                     unit_col: str | None = None, alpha: float = 0.05) -> pd.DataFrame:
    """All treated against all eligible controls, unmatched and unweighted, per horizon.

    The interval is cluster-robust with one cluster per unit (per person when unit_col is
    given, since the same person is a control in several entry quarters).
    """
    return naive_table(naive_cells(cohort_df, outcome, horizons, treatment, unit_col), outcome, alpha)


def naive_cells(cohort_df: pd.DataFrame, outcome: str, horizons: Sequence[int], treatment: str = "treated",
                unit_col: str | None = None) -> pd.DataFrame:
    """naive_difference's cells: every observed value at the horizons where both arms have one (`row`:
    the unit's row in `cohort_df`)."""
    where = f"naive difference of {outcome}"
    cohort_df = require_frame(cohort_df, where)
    horizons = list(horizons)
    treated = treatment_indicator(cohort_df, treatment, where)
    levels = numeric_matrix(cohort_df, outcome_columns(outcome, horizons), where, allow_missing=True)
    units = unit_keys(cohort_df, unit_col, where)
    row, column = np.nonzero(~np.isnan(levels))
    horizon_values, horizon = np.unique(np.asarray(horizons), return_inverse=True)
    arms = np.bincount(horizon[column] * 2 + treated[row], minlength=2 * horizon_values.size).reshape(-1, 2)
    both = (arms > 0).all(axis=1)[horizon[column]]  # the horizons at which both arms have a value
    row, column = row[both], column[both]
    return pd.DataFrame({"horizon": np.asarray(horizons)[column], "treated": treated[row],
                         "y": levels[row, column], "level": levels[row, column], "w": 1.0,
                         "unit": units[row], "cluster": units[row], "row": row})


def naive_table(cells: pd.DataFrame, outcome: str, alpha: float = 0.05) -> pd.DataFrame:
    """naive_difference's rows from its cells."""
    result = cluster_robust(cells, alpha, f"naive difference of {outcome}")
    return effect_table(outcome, "naive", cells, result, "cluster_robust", is_binary(cells["level"].to_numpy()))
