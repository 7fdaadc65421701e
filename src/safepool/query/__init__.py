"""Non-disclosive aggregate queries on a permit's pool (analyst zone).

An analyst asks for counts, sums, means or quantiles by groups, as a structured request or as
SQL restricted to aggregates; the answer holds only the cells that pass the disclosure checks.
"""

from safepool.query.request import AggregateRequest, Filter, parse_filter
from safepool.query.model import AggregateModel, QueryRefused
from safepool.query.sql_syntax import model_from_sql

__all__ = ["AggregateModel", "AggregateRequest", "Filter", "QueryRefused", "model_from_sql", "parse_filter"]
