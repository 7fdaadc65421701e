"""Predicted service needs (issue 13, point 5): who starts a service within the next quarters.

The analysis file names everything: the service (a quarterly feature of the features layer; a
person starts it in the first quarter it is above zero), the horizon, who is eligible, the
training and test index quarters, the predictors and the attributes audited. Nothing here names
a register's table, variable or code.

The units are persons at index quarters q: eligible on the first day of q (age within the range,
living in the area on the day before, the service not started before q), with each predictor
measured before q (window features count the quarters q-k..q-1) and the outcome "started in
q..q+horizon-1". The model is trained on the training index quarters and judged on the test
quarter only (one unit per person there), whose outcome window lies after every training one:
a split by time. Units are put in an order taken from their values, never from the pseudonym,
so the fit, the intervals and every number released are the same under another permit's key.

A model (logistic regression by default: open, its coefficients published; or gradient
boosting) gives each unit a predicted probability; the `selected_share` of the test persons
with the highest probability are selected (the capacity of the preventive service). Released:
the cohort, discrimination (AUC) and calibration (Brier score, a binned curve on fixed edges),
permutation importance, the coefficients, and the fairness audit of safepool.insight.fairness,
for the model with every predictor and, when the audit finds a proxy of an audited attribute,
for the model without it. Every table is a checked output kind; no prediction of a person
leaves, except as a list of pseudonyms handed to the steward where the permit allows
re-identification for preventive services (safepool.insight.handover).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Annotated, Any, Literal

import duckdb
import numpy as np
import pandas as pd
from pydantic import AfterValidator, Field, field_validator, model_validator

from safepool.disclosure.cells import shown_mask
from safepool.disclosure.kinds.base import Mitigated
from safepool.disclosure.kinds.frequency import FrequencyTable
from safepool.disclosure.kinds.model import ModelResult
from safepool.disclosure.kinds.rates import RateTable
from safepool.faults import Invalid
from safepool.features.compile import PERSON, FeatureSet
from safepool.governance.form import parse_quarter
from safepool.insight import fairness
from safepool.insight.analysis import Analysis, Findings, InsightContext, Settings, register_analysis

Progress = Callable[[str], None]
WITH, WITHOUT = "with every predictor", "without the proxies"
PANEL, UNITS, STARTS, CANDIDATES = "need_panel", "need_units", "need_starts", "need_candidates"


class NeedError(Invalid):
    """The pool or the settings cannot give the prediction asked for; names the setting."""


def quarter_index(label: str) -> int:
    year, quarter = parse_quarter(label)
    return year * 4 + quarter - 1


def quarter_label(t: int) -> str:
    return f"{t // 4}Q{t % 4 + 1}"


def _checked_quarter(value: str) -> str:
    parse_quarter(value)
    return value


Quarter = Annotated[str, AfterValidator(_checked_quarter)]  # a quarter label, e.g. 2012Q1


class TrainingWindow(Settings):
    first: Quarter = Field(description="the first training index quarter, e.g. 2012Q1")
    last: Quarter = Field(description="the last training index quarter")
    every: int = Field(default=4, ge=1, le=8, description="quarters between training index quarters")

    def quarters(self) -> list[int]:
        first, last = quarter_index(self.first), quarter_index(self.last)
        if last < first:
            raise ValueError("train.last is before train.first")
        return list(range(first, last + 1, self.every))


class HandoverSettings(Settings):
    """Who is handed to the steward for preventive services (safepool.insight.handover)."""

    quarter: Quarter = Field(description="the index quarter at which persons are scored (predictors measured before "
                                     "it); not before the test quarter")
    threshold: float = Field(gt=0, lt=1, description="persons whose predicted probability is at least this are "
                                                     "handed over")


class NeedSettings(Settings):
    """The `analysis:` part of a need-prediction insight file (kind: need)."""

    kind: Literal["need"] = "need"
    outcome: str = Field(default="child_protection_support",
                         description="a quarterly feature: the service whose start is predicted")
    horizon: int = Field(default=4, ge=1, le=12, description="quarters after the index quarter's start, q..q+h-1")
    age: tuple[int, int] = Field(default=(0, 17), description="eligible ages (whole years) on the index day")
    age_feature: str = "age"
    resident_feature: str | None = Field(default="living_in_area",
                                         description="an indicator feature the person must have on the day before")
    train: TrainingWindow = Field(default_factory=lambda: TrainingWindow(first="2012Q1", last="2020Q1"))
    test: Quarter = Field(default="2022Q1", description="the test index quarter (one unit per person)")
    predictors: list[str] = Field(default_factory=lambda: [
        "child_protection_notifications_8", "school_health_care_visits_4", "family_counselling_visits_4",
        "youth_services_visits_4", "city_service_contacts_8", "age", "female", "district"], min_length=1)
    audit: dict[str, str] = Field(default_factory=lambda: {
        "sex": "sex_group", "native language": "family_language_group", "age group": "child_age_group"},
        description="audited attribute (its name in the report) -> the feature giving its groups")
    proxies: list[str] = Field(default_factory=list, description="predictors always audited as proxies")
    model: Literal["logistic", "gradient_boosting"] = "logistic"
    selected_share: float = Field(default=0.05, gt=0, lt=1,
                                  description="the share of test persons with the highest predicted need selected")
    tolerance: float = Field(default=0.05, gt=0, lt=1,
                             description="largest difference of a rate between groups not flagged")
    ratio_tolerance: float = Field(default=0.8, gt=0, le=1,
                                   description="smallest ratio of a rate between groups (lowest over highest) not "
                                               "flagged")
    proxy_tolerance: float = Field(default=0.1, gt=0, lt=1,
                                   description="association with an audited attribute from which a predictor is "
                                               "flagged as its proxy (Cramer's V, or the correlation ratio)")
    bootstrap: int = Field(default=200, ge=20, le=2000, description="bootstrap replicates of the intervals")
    calibration_edges: list[float] = Field(
        default_factory=lambda: [0.0025, 0.005, 0.01, 0.02, 0.05, 0.1, 0.2],
        description="edges of the predicted-probability bins of the calibration curve")
    permutation_repeats: int = Field(default=5, ge=1, le=50)
    intended_use: str = ("to help the city's preventive family services see which children's families might be "
                         "offered support early, as one input to a professional's judgement; never to decide "
                         "on a child or a family by itself")
    limitations: list[str] = Field(default_factory=list, description="limitations the model card adds")
    handover: HandoverSettings | None = Field(default=None, description="the pseudonyms handed to the steward "
                                              "where the permit allows re-identification for preventive services")

    @field_validator("calibration_edges")
    @classmethod
    def _edges(cls, edges: list[float]) -> list[float]:
        if not edges or any(not 0 < e < 1 for e in edges) or sorted(set(edges)) != list(edges):
            raise ValueError("calibration_edges must be increasing probabilities between 0 and 1")
        return edges

    @model_validator(mode="after")
    def _windows(self) -> NeedSettings:
        train = self.train.quarters()
        if train[-1] + self.horizon > quarter_index(self.test):
            raise ValueError(f"the last training quarter's outcome window ({self.train.last} plus {self.horizon} "
                             f"quarters) must end before the test quarter {self.test}")
        if self.age[0] > self.age[1]:
            raise ValueError("age: the first age must not be above the second")
        unknown = [p for p in self.proxies if p not in self.predictors]
        if unknown:
            raise ValueError(f"proxies {unknown} are not predictors")
        if self.handover and quarter_index(self.handover.quarter) < quarter_index(self.test):
            raise ValueError(f"handover.quarter {self.handover.quarter} is before the test quarter {self.test}")
        return self


# -- the units ---------------------------------------------------------------------------------


@dataclass
class Units:
    """The units in data order: predictors, audited groups, the outcome, train, test or score."""

    frame: pd.DataFrame  # set, t, outcome, predictors..., audit features...
    pids: np.ndarray  # pseudonyms in the frame's order: for the handover list only, never an output
    numeric: list[str]
    categorical: list[str]


def feature_names(settings: NeedSettings) -> list[str]:
    names = [settings.age_feature, *settings.predictors, *settings.audit.values()]
    if settings.resident_feature:
        names.append(settings.resident_feature)
    return list(dict.fromkeys(names))


def needed_columns(settings: NeedSettings, features: FeatureSet) -> dict[str, list[str]]:
    """The pool tables and columns the analysis reads (through the features it names)."""
    sources = features.sources(features.closure([settings.outcome, *feature_names(settings)]))
    return {table: sorted(columns) for table, columns in sorted(sources.items())}


def _check_features(settings: NeedSettings, features: FeatureSet) -> None:
    if features.kind(settings.outcome) != "quarterly":
        raise NeedError(f"outcome: {settings.outcome} is not a quarterly feature")
    for name in feature_names(settings):
        if features.kind(name) == "quarterly":
            raise NeedError(f"{name} is a quarterly feature: name a window over it (measured before the index quarter)")


def build_units(con: duckdb.DuckDBPyConnection, features: FeatureSet, settings: NeedSettings,
                say: Progress = lambda _stage: None, score: int | None = None) -> Units:
    """The training and test units, computed in SQL by the features layer, in data order; with
    `score`, also the units of that index quarter (set "score" unless it is the test quarter)."""
    _check_features(settings, features)
    sql = features.sql
    train, test = settings.train.quarters(), quarter_index(settings.test)
    indexes = [*train, test] + ([score] if score is not None and score != test else [])
    last = max(indexes)
    low, high = settings.age
    person = features.person_table
    age = lambda day: features.attribute(settings.age_feature, "p", day)  # noqa: E731

    say("starts")
    table = features.spec.quarterly[settings.outcome].table
    every_quarter = features.quarterly_sql(table, [settings.outcome], person, 0, 10 ** 6)
    con.execute(f"CREATE OR REPLACE TEMP TABLE {STARTS} AS SELECT {PERSON}, min(t) AS start_t "
                f"FROM ({every_quarter}) s WHERE s.{settings.outcome} > 0 GROUP BY {PERSON}")
    con.execute(f"""CREATE OR REPLACE TEMP TABLE {CANDIDATES} AS SELECT DISTINCT p.{PERSON} FROM {person} p
                    WHERE {age(sql.first_day(str(last)))} >= {low}
                      AND {age(sql.first_day(str(indexes[0])))} < {high + 1}""")
    say("panel")
    windows = [n for n in features.closure(feature_names(settings)) if features.kind(n) == "windows"]
    lookback = max([features.window_of(n)[1] for n in windows], default=1)
    measures = sorted({features.window_of(n)[0] for n in windows})
    if measures:
        features.build_panel(con, PANEL, CANDIDATES, measures, indexes[0] - lookback, last - 1)
    say("units")
    resident = (f"AND {features.attribute(settings.resident_feature, 'p', 'i.qstart - 1')}"
                if settings.resident_feature else "")
    index_list = ", ".join(str(t) for t in indexes)
    con.execute(f"""
        CREATE OR REPLACE TEMP TABLE {UNITS} AS
        SELECT c.{PERSON}, i.t, i.qstart,
               CAST(s.start_t IS NOT NULL AND s.start_t < i.t + {settings.horizon} AS INTEGER) AS outcome
        FROM {CANDIDATES} c
        CROSS JOIN (SELECT t, {sql.first_day('t')} AS qstart FROM (SELECT unnest([{index_list}]) AS t)) i
        JOIN {person} p ON p.{PERSON} = c.{PERSON}
        LEFT JOIN {STARTS} s ON s.{PERSON} = c.{PERSON}
        WHERE (s.start_t IS NULL OR s.start_t >= i.t)
          AND {age('i.qstart')} >= {low} AND {age('i.qstart')} < {high + 1} {resident}""")
    wanted = list(dict.fromkeys([*settings.predictors, *settings.audit.values()]))
    columns = ", ".join(f'"{n}"' for n in wanted)
    days = {settings.resident_feature: "u.qstart - 1"} if settings.resident_feature else None

    def described(t: int) -> str:
        return features.at_day_sql(f"(SELECT * FROM {UNITS} WHERE t = {t})", wanted, day="u.qstart",
                                   panel=PANEL if measures else None, days=days)

    # one index quarter at a time: each query's joins and sums hold a tenth of the units (at 300,000
    # persons the peak is about 190 MB lower, for about 0.8 s more CPU); the units' order comes from
    # their values (units_in_data_order), never from the order the queries ran in
    frame = pd.concat([con.sql(f"SELECT {PERSON}, t, outcome, {columns} FROM ({described(t)}) d").df()
                       for t in indexes], ignore_index=True)
    for name in (UNITS, STARTS, CANDIDATES) + ((PANEL,) if measures else ()):
        con.execute(f"DROP TABLE IF EXISTS {name}")
    return units_in_data_order(frame, settings, test, score)


def units_in_data_order(frame: pd.DataFrame, settings: NeedSettings, test: int, score: int | None = None) -> Units:
    """Units sorted by their values (quarter, outcome, predictors, groups), never by pseudonym;
    units equal in every value are exchangeable for everything after this."""
    categorical = [n for n in settings.predictors if not pd.api.types.is_numeric_dtype(frame[n])
                   or pd.api.types.is_bool_dtype(frame[n])]
    for name in categorical:
        frame[name] = frame[name].astype("string").fillna("missing").astype(str)
    numeric = [n for n in settings.predictors if n not in categorical]
    for name in numeric:
        frame[name] = frame[name].astype("float64")
    for name in settings.audit.values():
        frame[name] = frame[name].astype("string").fillna("unknown").astype(str)
    t = frame["t"].to_numpy()
    frame["set"] = np.where(t == test, "test", np.where(t == score, "score", "train"))
    by = ["t", "outcome", *dict.fromkeys([*settings.predictors, *settings.audit.values()])]
    frame = frame.sort_values(by, kind="stable", na_position="last").reset_index(drop=True)
    pids = frame.pop(PERSON).to_numpy()
    return Units(frame=frame, pids=pids, numeric=numeric, categorical=categorical)


# -- the model ---------------------------------------------------------------------------------


def make_model(kind: str, numeric: list[str], categorical: list[str], seed: int) -> Any:
    """A scikit-learn pipeline: encoding, then logistic regression or gradient boosting."""
    from sklearn.compose import ColumnTransformer
    from sklearn.ensemble import HistGradientBoostingClassifier
    from sklearn.impute import SimpleImputer
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import Pipeline, make_pipeline
    from sklearn.preprocessing import OneHotEncoder, OrdinalEncoder, StandardScaler

    if kind == "logistic":
        encode = ColumnTransformer(
            [("numeric", make_pipeline(SimpleImputer(strategy="median", add_indicator=True), StandardScaler()),
              numeric),
             ("categorical", OneHotEncoder(handle_unknown="ignore", sparse_output=False, drop="first"), categorical)],
            verbose_feature_names_out=False)
        return Pipeline([("encode", encode), ("model", LogisticRegression(solver="newton-cholesky", max_iter=200))])
    encode = ColumnTransformer(
        [("numeric", "passthrough", numeric),
         ("categorical", OrdinalEncoder(handle_unknown="use_encoded_value", unknown_value=np.nan), categorical)],
        verbose_feature_names_out=False)
    booster = HistGradientBoostingClassifier(max_iter=200, learning_rate=0.05, max_leaf_nodes=15,
                                             min_samples_leaf=50, l2_regularization=1.0, early_stopping=False,
                                             categorical_features=list(range(len(numeric), len(numeric) + len(categorical))),
                                             random_state=seed)
    return Pipeline([("encode", encode), ("model", booster)])


@dataclass
class Fitted:
    """One model fitted on the training units and judged on the test units."""

    label: str
    predictors: list[str]
    pipeline: Any
    score: np.ndarray  # predicted probabilities of the test units (never an output)
    selected: np.ndarray  # bool, test units
    auc: float
    auc_se: float
    brier: float
    importance: pd.DataFrame  # feature, importance, importance_sd
    coefficients: pd.DataFrame | None  # term, estimate (logistic only)


def train_model(units: Units, predictors: list[str], settings: NeedSettings, seed: int) -> tuple[Any, list[str]]:
    """The model fitted on the training units, and its predictors in the order it takes them."""
    frame = units.frame
    train, test = frame[frame["set"] == "train"], frame[frame["set"] == "test"]
    numeric = [n for n in units.numeric if n in predictors]
    categorical = [n for n in units.categorical if n in predictors]
    pipeline = make_model(settings.model, numeric, categorical, seed)
    y_train, y_test = train["outcome"].to_numpy(), test["outcome"].to_numpy()
    if y_train.min() == y_train.max() or y_test.min() == y_test.max():
        raise NeedError("the training or the test units have no starts of the service (or only starts): "
                        "widen the training window or the eligible ages")
    pipeline.fit(train[numeric + categorical], y_train)
    return pipeline, numeric + categorical


def fit(units: Units, predictors: list[str], settings: NeedSettings, seed: int, label: str) -> Fitted:
    from sklearn.metrics import brier_score_loss

    pipeline, used = train_model(units, predictors, settings, seed)
    test = units.frame[units.frame["set"] == "test"]
    y_test = test["outcome"].to_numpy()
    numeric = [n for n in used if n in units.numeric]
    categorical = [n for n in used if n in units.categorical]
    score = pipeline.predict_proba(test[numeric + categorical])[:, 1]
    auc = fast_auc(y_test, score)
    importance = permutation_importance(pipeline, test[numeric + categorical], y_test, numeric + categorical,
                                        settings.permutation_repeats, seed)
    coefficients = None
    if settings.model == "logistic":
        model = pipeline.named_steps["model"]
        names = pipeline.named_steps["encode"].get_feature_names_out()
        coefficients = pd.DataFrame({"term": ["intercept", *names],
                                     "estimate": [float(model.intercept_[0]), *model.coef_[0].astype(float)]})
    return Fitted(label=label, predictors=numeric + categorical, pipeline=pipeline, score=score,
                  selected=select_top(score, settings.selected_share), auc=auc, auc_se=hanley_mcneil(auc, y_test),
                  brier=float(brier_score_loss(y_test, score)), importance=importance, coefficients=coefficients)


def fast_auc(y: np.ndarray, score: np.ndarray) -> float:
    """The area under the ROC curve from the ranks of the scores (ties share their mean rank).

    One sort, then each run of equal scores counted once: its mean rank times its positives. The
    permutation importance asks for it eighty times; every term is a multiple of 1/2, so the sum is
    exact and the same as summing each positive's rank."""
    y = np.asarray(y, dtype=bool)
    n1, n0 = int(y.sum()), int((~y).sum())
    order = np.argsort(score)
    ordered = np.asarray(score)[order]
    starts = np.flatnonzero(np.r_[True, ordered[1:] != ordered[:-1]])
    ends = np.r_[starts[1:], ordered.size]
    positives = np.add.reduceat(y[order].astype(np.int64), starts)
    rank_sum = float(((starts + ends + 1) / 2 * positives).sum())
    return float((rank_sum - n1 * (n1 + 1) / 2) / (n1 * n0))


def permutation_importance(pipeline: Any, x: pd.DataFrame, y: np.ndarray, predictors: list[str], repeats: int,
                           seed: int) -> pd.DataFrame:
    """The fall in AUC when one predictor's values are shuffled among the units (every encoded
    column of it together), `repeats` times with seeded shuffles: mean and standard deviation."""
    encoded = np.array(pipeline[:-1].transform(x), dtype=float)  # our own copy: columns are shuffled in place
    names = list(pipeline[:-1].get_feature_names_out())
    model = pipeline[-1]
    decide = model.decision_function if hasattr(model, "decision_function") else \
        (lambda m: model.predict_proba(m)[:, 1])
    base = fast_auc(y, decide(encoded))
    owner = [_owner(name, predictors) for name in names]
    rng = np.random.default_rng(seed)
    falls = np.zeros((len(predictors), repeats))
    for r in range(repeats):
        for i, predictor in enumerate(predictors):
            columns = [j for j, o in enumerate(owner) if o == predictor]
            kept = encoded[:, columns]
            encoded[:, columns] = kept[rng.permutation(len(encoded))]  # shuffled in place, then put back
            falls[i, r] = base - fast_auc(y, decide(encoded))
            encoded[:, columns] = kept
    return pd.DataFrame({"feature": predictors, "importance": falls.mean(axis=1), "importance_sd": falls.std(axis=1)})


def _owner(encoded: str, predictors: list[str]) -> str | None:
    """The predictor an encoded column comes from (its name, a one-hot level of it, or its missing flag)."""
    name = encoded.removeprefix("missingindicator_")
    matches = [p for p in predictors if name == p or name.startswith(f"{p}_")]
    return max(matches, key=len) if matches else None


def select_top(score: np.ndarray, share: float) -> np.ndarray:
    """The `share` of units with the highest score (ties at the cut all in or all out, by value)."""
    k = int(np.floor(share * score.size))
    if k == 0:
        return np.zeros(score.size, dtype=bool)
    cut = np.sort(score)[::-1][k - 1]
    return score >= cut


def hanley_mcneil(auc: float, y: np.ndarray) -> float:
    """Standard error of an AUC (Hanley and McNeil 1982)."""
    n1, n0 = int(y.sum()), int((1 - y).sum())
    q1, q2 = auc / (2 - auc), 2 * auc ** 2 / (1 + auc)
    variance = (auc * (1 - auc) + (n1 - 1) * (q1 - auc ** 2) + (n0 - 1) * (q2 - auc ** 2)) / (n1 * n0)
    return float(np.sqrt(max(variance, 0.0)))


# -- the whole analysis --------------------------------------------------------------------------


@dataclass
class NeedResult:
    settings: NeedSettings
    units: Units
    models: list[Fitted]
    proxies: pd.DataFrame  # feature, attribute, association, n, role
    audits: dict[str, fairness.Audit] = field(default_factory=dict)  # model label -> audit
    min_group: int = fairness.MIN_GROUP  # fewest persons in a count for a group to be compared


def proxy_features(proxies: pd.DataFrame, settings: NeedSettings) -> list[str]:
    """The predictors the screen found standing in for an audited attribute, and those the file names."""
    return sorted(set(proxies.loc[proxies["role"] == fairness.PROXY, "feature"]) | set(settings.proxies))


def without_proxies(proxies: pd.DataFrame, settings: NeedSettings) -> list[str] | None:
    """The predictors of the model without the proxies, or None when there is no such model
    (no proxy found, or every predictor is one)."""
    dropped = proxy_features(proxies, settings)
    if not dropped or len(dropped) >= len(settings.predictors):
        return None
    return [p for p in settings.predictors if p not in dropped]


def analyse(con: duckdb.DuckDBPyConnection, features: FeatureSet, settings: NeedSettings, seed: int,
            say: Progress = lambda _stage: None, min_group: int = fairness.MIN_GROUP) -> NeedResult:
    """Units, the model with every predictor, the proxy screen, and the model without the proxies.
    Groups are compared in the audit when every count behind a rate has `min_group` persons."""
    return analyse_units(build_units(con, features, settings, say), features, settings, seed, say, min_group)


def analyse_units(units: Units, features: FeatureSet, settings: NeedSettings, seed: int,
                  say: Progress = lambda _stage: None, min_group: int = fairness.MIN_GROUP) -> NeedResult:
    """`analyse` on units already read from the pool (see build_units)."""
    test = units.frame[units.frame["set"] == "test"]
    say("proxies")
    proxies = fairness.proxy_screen(test, settings.predictors, settings.audit, features, settings.proxy_tolerance)
    say("model")
    models = [fit(units, settings.predictors, settings, seed, WITH)]
    result = NeedResult(settings, units, models, proxies, min_group=min_group)
    fairer = without_proxies(proxies, settings)
    if fairer is not None:
        say("model without the proxies")
        models.append(fit(units, fairer, settings, seed, WITHOUT))
    say("fairness audit")
    groups = test[list(settings.audit.values())].rename(columns={v: k for k, v in settings.audit.items()})
    y = test["outcome"].to_numpy()
    for model in models:
        result.audits[model.label] = fairness.audit(y, model.selected, groups, settings.bootstrap, seed)
    return result


# -- outputs -------------------------------------------------------------------------------------


def outputs(result: NeedResult) -> dict[str, Any]:
    """Every table the analysis releases (each checked by its kind when published)."""
    settings, frame = result.settings, result.units.frame
    test = frame[frame["set"] == "test"]
    y = test["outcome"].to_numpy()
    out: dict[str, Any] = {}
    cohort = frame.groupby(["set", "outcome"]).size().reset_index(name="count")
    cohort["outcome"] = outcome_labels(cohort["outcome"].to_numpy())
    out["cohort"] = FrequencyTable("Units by set and outcome (training: person-quarters; test: persons)",
                                   cohort, ["set", "outcome"])
    rows = []
    for model in result.models:
        rows.append({"model": model.label, "auc": model.auc, "auc_low": model.auc - 1.96 * model.auc_se,
                     "auc_high": model.auc + 1.96 * model.auc_se, "brier_score": model.brier,
                     "base_rate": float(y.mean()), "n": int(y.size), "n_positive": int(y.sum()),
                     "n_negative": int(y.size - y.sum())})
    out["performance"] = RateTable("Discrimination and calibration on the test quarter", pd.DataFrame(rows),
                                   ["model"])
    out["calibration"] = RateTable("Calibration: observed share starting by predicted probability",
                                   calibration_table(result), ["model", "predicted"], partition="model")
    importance = pd.concat([m.importance.assign(model=m.label) for m in result.models], ignore_index=True)
    importance["n"] = int(y.size)
    out["importance"] = RateTable("Permutation importance: fall in test AUC when a feature is shuffled",
                                  importance[["model", "feature", "importance", "importance_sd", "n"]],
                                  ["model", "feature"])
    for i, model in enumerate(result.models):
        if model.coefficients is not None:
            out[f"coefficients_{i + 1}"] = coefficient_model(result, model)
    for i, model in enumerate(result.models):
        out[f"fairness_{i + 1}"] = fairness.released_table(f"Fairness audit, model {model.label}: rates by group "
                                                           "(n persons, n_events of them counted)",
                                                           result.audits[model.label])
    out["proxies"] = RateTable("Association of each predictor with the audited attributes",
                               result.proxies, ["feature", "attribute"], remarks=["measure", "role"])
    return out


def derived_outputs(result: NeedResult) -> dict[str, DisparitiesShown]:
    """The tables made from others as the checks leave them: each model's disparities, from the
    groups its fairness table shows (see `DisparitiesShown`)."""
    return {f"disparities_{i + 1}": DisparitiesShown(result, model.label, f"fairness_{i + 1}")
            for i, model in enumerate(result.models)}


@dataclass
class DisparitiesShown:
    """A model's largest differences between groups, made when the run publishes (the register's
    `derived` outputs) from the rates its fairness table shows once checked: a difference whose
    group's rate the checks hid (too few persons, or the differencing ledger) would give that rate
    away beside the other group's. What it compared is kept for the ledger (`fewest`)."""

    result: NeedResult
    model: str
    fairness_table: str
    shown: set[tuple[str, str, str]] = field(default_factory=set)

    def __call__(self, checked: Mapping[str, Mitigated]) -> RateTable | None:
        """The table, or None when no two shown groups can be compared."""
        cells = checked[self.fairness_table].output.cells
        kept = cells.loc[shown_mask(cells), ["attribute", "group", "metric"]].astype(str)
        self.shown = set(kept.itertuples(index=False, name=None))
        settings = self.result.settings
        table = fairness.disparities(self.result.audits[self.model], settings.tolerance, settings.ratio_tolerance,
                                     self.result.min_group, self.shown)
        if table.empty:
            return None
        return RateTable(f"Largest differences between groups, model {self.model} (n: the fewest persons behind "
                         "a compared rate)", table, ["attribute", "metric"], remarks=["highest / lowest", "flag"])

    def fewest(self) -> dict[tuple[str, str], tuple[str, str]]:
        """Per row of the table last made, the fairness count its n repeats (`fairness.fewest`)."""
        return fairness.fewest(self.result.audits[self.model], self.result.min_group, self.shown)


def outcome_labels(outcome: np.ndarray) -> np.ndarray:
    """The cohort's labels of the outcome (1: started)."""
    return np.where(outcome == 1, "started", "did not start")


def calibration_bins(settings: NeedSettings, score: np.ndarray) -> tuple[list[str], np.ndarray]:
    """The calibration curve's bins (fixed edges from the settings) and each unit's bin."""
    edges = [0.0, *settings.calibration_edges, 1.0]
    labels = [f"{100 * lo:g}-{100 * hi:g}%" for lo, hi in zip(edges[:-1], edges[1:])]
    return labels, np.clip(np.searchsorted(edges, score, side="right") - 1, 0, len(labels) - 1)


def calibration_table(result: NeedResult) -> pd.DataFrame:
    test = result.units.frame[result.units.frame["set"] == "test"]
    y = test["outcome"].to_numpy()
    rows = []
    for model in result.models:
        labels, which = calibration_bins(result.settings, model.score)
        for b, label in enumerate(labels):
            inside = which == b
            n = int(inside.sum())
            if n == 0:
                continue
            rows.append({"model": model.label, "predicted": label, "mean_predicted": float(model.score[inside].mean()),
                         "observed": float(y[inside].mean()), "n": n, "n_positive": int(y[inside].sum()),
                         "n_negative": int(n - y[inside].sum())})
    return pd.DataFrame(rows)


def coefficient_model(result: NeedResult, model: Fitted) -> ModelResult:
    """The open model: its coefficients (standardised numeric predictors, one-hot levels against the
    first), with the training persons per level of each categorical predictor and per outcome."""
    train = result.units.frame[result.units.frame["set"] == "train"]
    counts = [pd.DataFrame({"term": "outcome", "level": ["started", "did not start"],
                            "count": [int(train["outcome"].sum()), int((1 - train["outcome"]).sum())]})]
    for name in (n for n in model.predictors if n in result.units.categorical):
        levels = train[name].value_counts().sort_index()
        counts.append(pd.DataFrame({"term": name, "level": levels.index.astype(str), "count": levels.to_numpy()}))
    coefficients = model.coefficients
    return ModelResult(f"Logistic regression, model {model.label}: coefficients", coefficients,
                       n_obs=int(len(train)), df_resid=float(len(train) - len(coefficients)),
                       cell_counts=pd.concat(counts, ignore_index=True))


# -- the analysis kind -------------------------------------------------------------------------


@register_analysis
class NeedAnalysis(Analysis):
    kind = "need"
    settings_model = NeedSettings

    settings: NeedSettings

    def tables(self, features: FeatureSet) -> dict[str, list[str]]:
        return needed_columns(self.settings, features)

    def features_used(self) -> list[str]:
        return [self.settings.outcome, *feature_names(self.settings)]

    def run(self, context: InsightContext) -> Findings:
        # groups below the workspace's minimum frequency are never compared (nor shown)
        min_group = max(fairness.MIN_GROUP, context.policy.min_frequency)
        units = build_units(context.con, context.features, self.settings, context.say)
        context.done_reading()
        result = analyse_units(units, context.features, self.settings, context.seed, context.say, min_group)
        from safepool.insight.model_card import sections
        from safepool.insight.need_persons import persons_behind

        found, derived = outputs(result), derived_outputs(result)
        return Findings(outputs=found, sections=sections(result, context.features, {*found, *derived}),
                        persons=persons_behind(result, found, derived, context.seed), derived=derived)

    def summary(self, checked: Mapping[str, Mitigated]) -> str:
        from safepool.insight.model_card import summary_line

        return summary_line(checked)
