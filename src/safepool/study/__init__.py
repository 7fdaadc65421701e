"""The impact study: risk-set matching, balance and effect estimates on plain pandas tables."""

from safepool.study.balance import Balance, balance_table
from safepool.study.effects import EffectEstimator, naive_difference
from safepool.study.event_study import event_study, pretrend_placebo
from safepool.study.matching import MatchingError, RiskSetMatcher
from safepool.study.sensitivity import e_values, rosenbaum_bounds, sensitivity
from safepool.study.subgroups import subgroup_effects
from safepool.study.table_checks import StudyTableError

__all__ = ["Balance", "EffectEstimator", "MatchingError", "RiskSetMatcher", "StudyTableError", "balance_table",
           "e_values", "event_study", "naive_difference", "pretrend_placebo", "rosenbaum_bounds", "sensitivity",
           "subgroup_effects"]
