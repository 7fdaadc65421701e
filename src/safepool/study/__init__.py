"""The impact study: risk-set matching, balance and effect estimates on plain pandas tables."""

from safepool.study.balance import Balance, balance_table
from safepool.study.matching import MatchingError, RiskSetMatcher
from safepool.study.table_checks import StudyTableError

__all__ = ["Balance", "MatchingError", "RiskSetMatcher", "StudyTableError", "balance_table"]
