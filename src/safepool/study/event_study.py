"""The event-study curve and the pre-trend placebo test, from matched sets.

Both are matched differences-in-differences against the baseline horizon (default -1, the
quarter before entry): the curve runs from 8 quarters before to 12 after entry, and the
placebo asks whether the pre-entry points (-8 to -2) are jointly zero. Matching balances the
covariates measured before entry, not the outcome paths, so a pre-entry gap is a warning
that the controls were on a different course.
"""

from __future__ import annotations

from collections.abc import Iterable

import pandas as pd

from safepool.study.effects import EffectEstimator


def event_study(matched: pd.DataFrame, outcome: str, horizons: Iterable[int] = range(-8, 13), baseline: int = -1,
                method: str = "did", **estimator_options: object) -> pd.DataFrame:
    """One effect row per horizon (the baseline is 0 by construction under method="did")."""
    estimator = EffectEstimator([outcome], list(horizons), method=method, baseline=baseline, **estimator_options)
    return estimator.fit(matched).effects_


def pretrend_placebo(matched: pd.DataFrame, outcome: str, pre_horizons: Iterable[int] = range(-8, -1),
                     baseline: int = -1, **estimator_options: object) -> pd.DataFrame:
    """Per-horizon placebo effects before entry, with the joint Wald test on every row.

    Columns: the effect columns (method "placebo") plus wald_chi2, wald_df, joint_p_value.
    """
    pre_horizons = [h for h in pre_horizons if h != baseline]
    estimator = EffectEstimator([outcome], pre_horizons, method="did", baseline=baseline, **estimator_options)
    estimator.fit(matched)
    chi2, df, p_value = estimator.estimates_[outcome].joint_wald()
    return estimator.effects_.assign(method="placebo", wald_chi2=chi2, wald_df=df, joint_p_value=p_value)
