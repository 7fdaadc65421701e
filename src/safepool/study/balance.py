"""Covariate balance between treated and controls, before and after matching.

Choices:
- The standardised mean difference divides by the pooled SD of the unmatched sample,
  sqrt((var_treated + var_control) / 2), for both stages (Balance passes it to both), so a
  change in the SMD is a change in the means and not in the yardstick. balance_table on its
  own uses the table's own pooled SD unless sd_reference is given.
- Weighted statistics use the matching weights (one row per unit and set; a reused control
  counts with the sum of its weights). Variances are weighted with the unbiased
  reliability-weight correction, so unit weights give the usual sample variance.
- The variance ratio (treated over control) is judged only for continuous covariates: for a
  0/1 covariate the variance is fixed by the mean, which the SMD already checks; vr_ok is
  then missing (not applicable), never a silent pass.
- eCDF mean and max are the mean and largest absolute difference between the weighted
  empirical distribution functions, over the distinct values of the covariate.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd

from safepool.study.table_checks import (
    StudyTableError,
    by_column_blocks,
    is_binary,
    numeric_matrix,
    require_columns,
    require_frame,
    treatment_indicator,
)

VEGA_LITE_SCHEMA = "https://vega.github.io/schema/vega-lite/v5.json"


def weighted_mean_var(x: np.ndarray, w: np.ndarray) -> tuple[float, float]:
    total = w.sum()
    mean = float(w @ x / total)
    effective = total - (w @ w) / total
    var = float(w @ (x - mean) ** 2 / effective) if effective > 0 else float("nan")
    return mean, var


def ecdf_differences(x: np.ndarray, treated: np.ndarray, w: np.ndarray) -> tuple[float, float]:
    """Mean and max absolute difference between the weighted eCDFs of treated and controls."""
    if (w == 1).all():  # unweighted (the cohort before matching): counts, from one sort of the column
        ordered = np.sort(x)
        values = ordered[np.r_[True, ordered[1:] != ordered[:-1]]]
        up_to = np.searchsorted(ordered, values, side="right")
        up_to_treated = np.searchsorted(np.sort(x[treated]), values, side="right")
        difference = np.abs(up_to_treated / w[treated].sum() - (up_to - up_to_treated) / w[~treated].sum())
        return float(difference.mean()), float(difference.max())
    values = np.unique(x)
    gaps = []
    for group in (treated, ~treated):
        order = np.argsort(x[group])
        cumulative = np.cumsum(w[group][order]) / w[group].sum()
        position = np.searchsorted(x[group][order], values, side="right")
        gaps.append(np.where(position > 0, cumulative[np.maximum(position - 1, 0)], 0.0))
    difference = np.abs(gaps[0] - gaps[1])
    return float(difference.mean()), float(difference.max())


def pooled_sd(df: pd.DataFrame, covariates: Sequence[str], treatment: str = "treated") -> pd.Series:
    """sqrt((var_treated + var_control) / 2) per covariate: the SMD's denominator."""
    where = "balance input"
    treated = treatment_indicator(df, treatment, where)
    x = numeric_matrix(df, list(covariates), where)
    return pd.Series(pooled_sd_of(x, treated), index=list(covariates))


def pooled_sd_of(x: np.ndarray, treated: np.ndarray) -> np.ndarray:
    """pooled_sd on a matrix: one value per column (in column blocks: each arm's rows are copied a
    block at a time, not the whole matrix at once)."""
    return by_column_blocks(x, lambda block: np.sqrt((block[treated].var(axis=0, ddof=1)
                                                      + block[~treated].var(axis=0, ddof=1)) / 2))


def balance_table(df: pd.DataFrame, covariates: Sequence[str], treatment: str = "treated",
                  weights: str | None = None, sd_reference: pd.Series | None = None,
                  smd_limit: float = 0.1, vr_range: tuple[float, float] = (0.5, 2.0)) -> pd.DataFrame:
    """One row per covariate: means, SMD, variance ratio, eCDF mean/max, and pass flags."""
    covariates = list(covariates)
    x, treated, w = balance_inputs(df, covariates, treatment, weights)
    denominators = sd_reference if sd_reference is not None else pd.Series(pooled_sd_of(x, treated),
                                                                           index=covariates)
    return _balance_rows(x, treated, w, covariates, denominators, smd_limit, vr_range)


def balance_inputs(df: pd.DataFrame, covariates: list[str], treatment: str, weights: str | None
                   ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The covariates as a matrix, the treatment as booleans and the weights (1 without a column),
    checked: both arms present, no weight negative."""
    where = "balance input"
    df = require_frame(df, where)
    require_columns(df, [treatment, *covariates] + ([weights] if weights else []), where)
    treated = treatment_indicator(df, treatment, where)
    if treated.all() or not treated.any():
        raise StudyTableError(where, f"treatment column {treatment} must have both treated and control rows")
    x = numeric_matrix(df, covariates, where)
    w = numeric_matrix(df, [weights], where)[:, 0] if weights else np.ones(len(df))
    if (w < 0).any():
        raise StudyTableError(where, f"weight column {weights} has negative weights")
    return x, treated, w


def _balance_rows(x: np.ndarray, treated: np.ndarray, w: np.ndarray, covariates: list[str],
                  denominators: pd.Series, smd_limit: float, vr_range: tuple[float, float]) -> pd.DataFrame:
    rows = []
    for j, name in enumerate(covariates):
        mean_t, var_t = weighted_mean_var(x[treated, j], w[treated])
        mean_c, var_c = weighted_mean_var(x[~treated, j], w[~treated])
        sd = float(denominators[name])
        binary = is_binary(x[:, j])
        ecdf_mean, ecdf_max = ecdf_differences(x[:, j], treated, w)
        rows.append({
            "covariate": name, "mean_treated": mean_t, "mean_control": mean_c,
            "smd": (mean_t - mean_c) / sd if sd > 0 else 0.0 if mean_t == mean_c else float("inf"),
            "variance_ratio": float("nan") if binary or var_c == 0 else var_t / var_c,
            "ecdf_mean": ecdf_mean, "ecdf_max": ecdf_max, "binary": binary,
        })
    table = pd.DataFrame(rows)
    table["smd_ok"] = table["smd"].abs() < smd_limit
    vr_ok = table["variance_ratio"].between(*vr_range)
    table["vr_ok"] = pd.array(np.where(table["binary"], None, vr_ok), dtype="boolean")
    return table


class Balance:
    """Balance before (unweighted cohort) and after matching (weighted matched rows).

    After fit: table_ (balance_table columns plus stage "before"/"after"), passed_ (every
    covariate passes after matching: |SMD| < smd_limit, and variance ratio within vr_range
    where it applies).
    """

    def __init__(self, covariates: Sequence[str], treatment: str = "treated", smd_limit: float = 0.1,
                 vr_range: tuple[float, float] = (0.5, 2.0), weight_col: str = "weight") -> None:
        self.covariates = covariates
        self.treatment = treatment
        self.smd_limit = smd_limit
        self.vr_range = vr_range
        self.weight_col = weight_col

    def fit(self, before_df: pd.DataFrame, matched_df: pd.DataFrame) -> "Balance":
        covariates = list(self.covariates)
        x, treated, w = balance_inputs(before_df, covariates, self.treatment, None)  # once, for the SDs and "before"
        reference = pd.Series(pooled_sd_of(x, treated), index=covariates)
        before = _balance_rows(x, treated, w, covariates, reference, self.smd_limit, self.vr_range)
        del x
        after = balance_table(matched_df, covariates, self.treatment, weights=self.weight_col, sd_reference=reference,
                              smd_limit=self.smd_limit, vr_range=self.vr_range)
        self.table_ = pd.concat([before.assign(stage="before"), after.assign(stage="after")], ignore_index=True)
        self.table_ = self.table_[["stage", *before.columns]]
        self.passed_ = bool(after["smd_ok"].all() and after["vr_ok"].fillna(True).all())
        return self

    def love_plot(self, title: str = "Covariate balance before and after matching") -> dict[str, Any]:
        """Dots for the SMD of each covariate before and after matching, with the limit lines: a
        Vega-Lite spec written as plain data (the lines are data-free, so they are still drawn when
        the released figure carries only the checked table)."""
        if not hasattr(self, "table_"):
            raise StudyTableError("love plot", "Balance is not fitted; call fit(before_df, matched_df) first")
        data = self.table_[["stage", "covariate", "smd"]]
        order = list(self.table_.loc[self.table_["stage"] == "before"].sort_values("smd", key=abs)["covariate"])
        rows = [{"stage": str(stage), "covariate": str(covariate), "smd": None if pd.isna(smd) else float(smd)}
                for stage, covariate, smd in data.itertuples(index=False)]
        lines = [{"mark": {"type": "rule", "color": "grey", "strokeDash": [1, 0] if at == 0 else [4, 4]},
                  "encoding": {"x": {"datum": at, "type": "quantitative"}}}
                 for at in (-self.smd_limit, 0.0, self.smd_limit)]
        dots = {"data": {"values": rows}, "mark": {"type": "point", "filled": True, "size": 70},
                "encoding": {"x": {"field": "smd", "type": "quantitative", "title": "Standardised mean difference"},
                             "y": {"field": "covariate", "type": "nominal", "sort": order[::-1], "title": None},
                             "color": {"field": "stage", "type": "nominal", "sort": ["before", "after"],
                                       "title": "Matching"}}}
        return {"$schema": VEGA_LITE_SCHEMA, "title": title, "width": 420, "layer": [*lines, dots]}
