"""Sensitivity to hidden bias: E-values and Rosenbaum bounds.

E-values (VanderWeele and Ding 2017): the minimum strength of association, on the risk-ratio
scale, that an unmeasured confounder would need with both treatment and outcome to explain
the effect away: E = RR + sqrt(RR (RR - 1)) for RR >= 1 (RR < 1 is inverted first). Effects
are converted to risk ratios:
- binary outcome (risk difference): RR = p / (p - effect), with p the treated units' risk
  and p - effect their counterfactual risk (for the ATT this is the matched controls' risk);
- continuous outcome: standardised by the matched controls' SD, d = effect / sd, and
  RR ~ exp(0.91 d), VanderWeele and Ding's approximation.
The E-value of the interval uses the limit closest to no effect, and is 1 when the interval
contains no effect.

Rosenbaum bounds: for matched sets, the Wilcoxon signed-rank test of the set differences
(treated minus the weighted mean of its controls), with the worst-case one-sided p-value
when hidden bias may change the odds of treatment within a set by up to a factor gamma
(normal approximation; ties share average ranks, zero differences are dropped). Exact for
1:1 pairs; with k controls per set the set difference is used as if it were a pair, and
under replacement sets that share a control are treated as independent: read the gamma as
approximate there.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd
from scipy import stats

from safepool.study.effects import matched_cells
from safepool.study.table_checks import StudyTableError

GAMMAS = (1.0, 1.25, 1.5, 1.75, 2.0, 2.5, 3.0)
STANDARDISED_TO_LOG_RR = 0.91


def e_value(risk_ratio: np.ndarray) -> np.ndarray:
    rr = np.asarray(risk_ratio, dtype=float)
    rr = np.where(rr < 1, 1 / rr, rr)
    return rr + np.sqrt(rr * (rr - 1))


def risk_ratios(effects: pd.DataFrame, values: pd.Series) -> np.ndarray:
    """Risk ratio of effect-scale `values` (estimate or a CI limit) for each effect row."""
    binary = (effects["outcome_type"] == "binary").to_numpy()
    treated_risk = effects["mean_treated"].to_numpy(float)
    with np.errstate(divide="ignore", invalid="ignore"):
        counterfactual = treated_risk - values.to_numpy(float)
        from_risks = np.where(counterfactual > 0, treated_risk / counterfactual, np.nan)
        standardised = values.to_numpy(float) / effects["sd_control"].to_numpy(float)
        ratios = np.where(binary, from_risks, np.exp(STANDARDISED_TO_LOG_RR * standardised))
    # No risk ratio exists when the implied risk without treatment is not positive, or the
    # controls' outcome does not vary: such cells are "not defined", never infinite.
    return np.where(np.isfinite(ratios), ratios, np.nan)


def e_values(effects: pd.DataFrame) -> pd.DataFrame:
    """E-values for the estimate and for the interval limit closest to no effect."""
    needed = ["outcome", "horizon", "method", "estimate", "ci_low", "ci_high", "mean_treated", "sd_control",
              "outcome_type"]
    missing = [column for column in needed if column not in effects.columns]
    if missing:
        raise StudyTableError("sensitivity", f"effects table lacks column(s) {', '.join(missing)}")
    closest = effects["ci_low"].where(effects["ci_low"] > 0, effects["ci_high"].where(effects["ci_high"] < 0))
    table = effects[["outcome", "horizon", "method", "estimate", "ci_low", "ci_high"]].copy()
    table["risk_ratio"] = risk_ratios(effects, effects["estimate"])
    table["e_value"] = e_value(table["risk_ratio"])
    table["e_value_ci"] = np.where(closest.isna(), 1.0, e_value(risk_ratios(effects, closest.fillna(0.0))))
    table["conversion"] = np.where(effects["outcome_type"] == "binary", "risk ratio from risk difference",
                                   "risk ratio ~ exp(0.91 x standardised difference)")
    return table


def set_differences(matched: pd.DataFrame, outcome: str, horizon: int, method: str = "att",
                    **cell_options: object) -> np.ndarray:
    """Per usable set: treated value minus the weighted mean of its observed controls."""
    cells = matched_cells(matched, outcome, [horizon], method, **cell_options)
    signed = cells["w"] * cells["y"] * np.where(cells["treated"], 1.0, -1.0)
    return signed.groupby(cells["set"]).sum().to_numpy()


def rosenbaum_bounds(matched: pd.DataFrame, outcome: str, horizon: int, gammas: Sequence[float] = GAMMAS,
                     method: str = "att", **cell_options: object) -> pd.DataFrame:
    """Worst-case one-sided p-value (in the direction of the observed effect) per gamma."""
    differences = set_differences(matched, outcome, horizon, method, **cell_options)
    differences = differences[differences != 0]
    if differences.size == 0:
        raise StudyTableError(f"Rosenbaum bounds of {outcome}", "no set has a nonzero difference")
    direction = 1.0 if np.median(differences) >= 0 else -1.0
    ranks = stats.rankdata(np.abs(differences))
    statistic = ranks[direction * differences > 0].sum()
    gamma = np.asarray(gammas, dtype=float)
    share = gamma / (1 + gamma)
    expected = share * ranks.sum()
    variance = share * (1 - share) * (ranks**2).sum()
    p_upper = stats.norm.sf((statistic - expected) / np.sqrt(variance))
    return pd.DataFrame({"outcome": outcome, "horizon": horizon, "method": method, "gamma": gamma,
                         "n_sets": differences.size, "p_upper": p_upper})


def sensitivity(effects: pd.DataFrame, matched: pd.DataFrame | None = None, gammas: Sequence[float] = GAMMAS,
                alpha: float = 0.05, **cell_options: object) -> pd.DataFrame:
    """E-values per effect row; with the matched table also rosenbaum_gamma, the largest gamma
    on the grid at which the effect stays significant at alpha (missing when it is not even
    at gamma 1, or for rows without matched sets such as the naive comparison)."""
    table = e_values(effects)
    if matched is None:
        return table
    critical = []
    for row in effects.itertuples(index=False):
        if row.method not in ("att", "did") or row.estimate == 0:
            critical.append(np.nan)
            continue
        bounds = rosenbaum_bounds(matched, row.outcome, int(row.horizon), gammas, row.method, **cell_options)
        significant = bounds.loc[bounds["p_upper"] < alpha, "gamma"]
        critical.append(significant.max() if len(significant) else np.nan)
    return table.assign(rosenbaum_gamma=critical)
