"""Non-disclosive aggregate queries on a permit's pool (analyst zone).

An analyst asks a question of the query model (measures of declared variables, by groups of the
data dictionary, over filtered rows) as a structured request or as SQL; the answer holds only the
cells that pass the disclosure checks under the workspace's policy.
"""

from safepool.query.model import AggregateModel, QueryRefused
from safepool.query.request import AggregateRequest, Filter, parse_filter
from safepool.query.sql_syntax import model_from_sql

__all__ = ["AggregateModel", "AggregateRequest", "Filter", "QueryRefused", "model_from_sql", "parse_filter"]
