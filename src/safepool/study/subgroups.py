"""Effects within subgroups of the matched sets.

A set belongs to the subgroup of its treated unit (sex, permit grounds, language level...);
its controls stay with it whatever their own value, so each subgroup estimate is still a
comparison within matched sets. A missing value forms its own level, "(missing)".

Propensity matching balances `by` overall, not within a set: a treated woman may have a male
control. When `by` also affects the outcome that mixes the subgroups, so match exactly on
the subgroup variables (RiskSetMatcher(exact=[...])). The column controls_same_level (the
weighted share of a subgroup's controls with the treated unit's level) shows how far that
holds: 1.0 under exact matching.
"""

from __future__ import annotations

from collections.abc import Iterable

import pandas as pd

from safepool.study.effects import EffectEstimator
from safepool.study.table_checks import StudyTableError, require_columns, require_frame, treatment_indicator

MISSING_LEVEL = "(missing)"


def subgroup_effects(matched: pd.DataFrame, outcome: str, horizon: int | Iterable[int], by: str,
                     treatment: str = "treated", set_col: str = "set_id", **estimator_options: object) -> pd.DataFrame:
    """Effect rows per level of `by` (columns "subgroup" = by and "level" added in front)."""
    where = f"subgroups of {outcome} by {by}"
    matched = require_frame(matched, where)
    weight_col = str(estimator_options.get("weight_col", "weight"))
    require_columns(matched, [by, set_col, treatment, weight_col], where)
    horizons = [horizon] if isinstance(horizon, int) else list(horizon)
    is_treated = treatment_indicator(matched, treatment, where)
    level_of_set = (matched.loc[is_treated].groupby(set_col, sort=False)[by].first()
                    .astype(object).where(lambda v: v.notna(), MISSING_LEVEL).astype(str))
    levels = matched[set_col].map(level_of_set)
    if levels.isna().any():
        raise StudyTableError(where, f"some sets in {set_col} have no treated unit")
    own_level = matched[by].astype(object).where(matched[by].notna(), MISSING_LEVEL).astype(str)
    weight = matched[weight_col]
    tables = []
    for level in sorted(level_of_set.unique()):
        in_level = (levels == level).to_numpy()
        estimator = EffectEstimator([outcome], horizons, treatment=treatment, set_col=set_col, **estimator_options)
        effects = estimator.fit(matched.loc[in_level]).effects_
        controls = in_level & ~is_treated
        same = float(weight[controls & (own_level == level).to_numpy()].sum() / weight[controls].sum())
        tables.append(effects.assign(subgroup=by, level=level, controls_same_level=same))
    table = pd.concat(tables, ignore_index=True)
    return table[["subgroup", "level", *[c for c in table.columns if c not in ("subgroup", "level")]]]
