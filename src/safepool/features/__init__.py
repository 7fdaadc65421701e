"""The features layer: person-period variables defined once in configuration, computed in SQL.

    features = load_features()                      # the shipped features.yaml
    features.describe("unemployed_quarters_8")      # name, definition, sources, unit
    features.quarterly_sql("employment", ["employed"], "persons", t_from, t_to)

The configuration (features.yaml) is written against the register catalogue's pool names and
code lists; the SQL comes from an engine dialect (safepool.features.dialect); analyses name
features and never a table, variable or code (safepool.study.cohort does so).
"""

from safepool.features.compile import DECIMALS, PERSON, FeatureDoc, FeatureError, FeatureSet, load_features

__all__ = ["DECIMALS", "PERSON", "FeatureDoc", "FeatureError", "FeatureSet", "load_features"]
