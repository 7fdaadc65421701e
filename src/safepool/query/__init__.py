"""Non-disclosive aggregate queries on a permit's pool (analyst zone).

An analyst asks for counts, sums, means or quantiles by groups, as a structured request or as
SQL restricted to aggregates; the answer holds only the cells that pass the disclosure checks.
"""

from safepool.query.request import AggregateRequest, Filter, parse_filter
from safepool.query.sql_guard import AggregateQuery, QueryRefused, check_sql

__all__ = ["AggregateQuery", "AggregateRequest", "Filter", "QueryRefused", "check_sql", "parse_filter"]
