"""Customer segments (the handbook's section 3.1.2), from features and a segments configuration.

- Life phase x vulnerability risk: the handbook's grid. The risk is a score of register facts
  (features compared with thresholds, each with its points) banded into low, intermediate and
  very high; rows are the life phases of the features layer.
- Behaviour: active, intermittent, becoming passive, passive, from the recency and frequency of
  service use (features), with limits from the configuration.
- Value: the cost of the services used, from the configuration's price list (EUR per unit of a
  feature).
- Clustering on mixed data: FAMD (numeric features standardised, categorical ones one-hot with
  each level scaled by 1 / sqrt(its share), then principal components) and k-means, seeded; the
  number of groups is the one with the best silhouette over the configured range.

Every person-level number stays here: what leaves is segment_outputs(), tables of persons per
segment and of means per segment that the disclosure checks pass or suppress.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Literal

import duckdb
import numpy as np
import pandas as pd
from pydantic import BaseModel, ConfigDict, Field, model_validator
from sklearn.cluster import KMeans
from sklearn.decomposition import PCA
from sklearn.metrics import silhouette_score
from sklearn.metrics.pairwise import euclidean_distances

from safepool.disclosure import FrequencyTable, MagnitudeTable, StatOutput
from safepool.disclosure.cells import shown_mask
from safepool.disclosure.kinds.base import Mitigated
from safepool.features import PERSON, FeatureSet, load_features
from safepool.insight.analysis import Analysis, Findings, InsightContext, Section, Settings, register_analysis
from safepool.insight.differencing import PersonsBehind
from safepool.governance.form import parse_quarter
from safepool.one_thread import one_thread
from safepool.yaml_files import load_model

CONTRIBUTORS = 10  # largest contributions handed to the dominance checks


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class RiskFactor(_Strict):
    feature: str
    at_least: float = Field(description="the factor holds when the feature is at least this")
    points: int = Field(ge=1, le=10)
    label: str = Field(min_length=1, max_length=80)


class Risk(_Strict):
    factors: list[RiskFactor] = Field(min_length=1)
    intermediate_from: int = Field(ge=1, description="points from which the risk is intermediate")
    very_high_from: int = Field(ge=2, description="points from which the risk is very high")

    @model_validator(mode="after")
    def _ordered(self) -> Risk:
        if self.very_high_from <= self.intermediate_from:
            raise ValueError("very_high_from must be above intermediate_from")
        return self


class Behaviour(_Strict):
    recency: str = Field(description="feature: quarters since the last use (empty = none in its window)")
    frequency: str = Field(description="feature: uses in a window")
    active: tuple[int, int] = Field(description="[at most this many quarters since, at least this many uses]")
    intermittent_within: int = Field(ge=1, description="quarters since the last use, at most")
    becoming_passive_within: int = Field(ge=1, description="quarters since the last use, at most")


class Clustering(_Strict):
    numeric: list[str] = Field(default_factory=list)
    categorical: list[str] = Field(default_factory=list)
    transform: Literal["none", "log1p"] = Field("log1p", description="numeric features: as they are, or ln(1 + x) "
                                                                   "(counts of use are skewed)")
    groups: tuple[int, int] = Field((2, 8), description="the range of group counts tried")
    components: float = Field(0.9, gt=0, le=1, description="share of the variance the FAMD components keep")
    random_state: int = 0
    sample: int = Field(2000, ge=100, description="persons the silhouette is computed on (seeded sample)")
    fit_sample: int = Field(30000, ge=1000, description="persons k-means is fitted on for each number of groups "
                                                        "(seeded sample); the chosen number is then fitted on "
                                                        "everyone, starting from the sample's centres")

    @model_validator(mode="after")
    def _some(self) -> Clustering:
        if not self.numeric and not self.categorical:
            raise ValueError("name at least one numeric or categorical feature")
        if not 2 <= self.groups[0] <= self.groups[1] <= 30:
            raise ValueError("groups: [fewest, most] with 2 <= fewest <= most <= 30")
        return self


class Card(_Strict):
    """What the analysis file says of a group: its name, priority and promise of value."""

    name: str = Field(min_length=1, max_length=80)
    priority: Literal["high", "medium", "low"]
    promise: str = Field(min_length=1, max_length=400, description="how the city can support the group")


class SegmentSettings(_Strict):
    """What the segments are made of (the analysis part of a segments or insight file)."""

    at: str = Field(description="the quarter the persons are described at, e.g. 2025Q1: living in the area on "
                                "the day before it, features of the quarters before it")
    ages: tuple[int, int] = Field((0, 120))
    life_phase: str = "life_phase"
    risk: Risk
    behaviour: Behaviour
    prices: dict[str, float] = Field(description="EUR per unit of each feature (the services' price list)")
    clustering: Clustering
    describe: list[str] = Field(default_factory=list, description="categorical features shown on each card")
    needs: list[str] = Field(default_factory=list, description="numeric features (services used) on each card")
    cards: dict[str, Card] = Field(default_factory=dict, description="by group (group 1, group 2, ...: numbered "
                                                                     "from the largest)")

    @property
    def quarter(self) -> int:
        year, quarter = parse_quarter(self.at)
        return year * 4 + quarter - 1

    def features(self) -> list[str]:
        names = [self.life_phase, "living_in_area", "age", self.behaviour.recency, self.behaviour.frequency]
        names += [f.feature for f in self.risk.factors] + list(self.prices)
        names += self.clustering.numeric + self.clustering.categorical + self.describe + self.needs
        return list(dict.fromkeys(names))


class SegmentsFile(SegmentSettings):
    """What the analyst writes (see examples/segments.yaml)."""

    permit: str = Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")
    title: str = Field(min_length=1, max_length=200)


def load_segments(path: Path) -> SegmentsFile:
    return load_model(path, SegmentsFile)


def person_table(con: duckdb.DuckDBPyConnection, spec: SegmentSettings, features: FeatureSet | None = None
                 ) -> pd.DataFrame:
    """One row per person living in the area on the day before `at` and within the ages, with every
    feature the segments need (windows over the quarters before `at`), in data order (persons
    equal in every feature, and so in everything computed from them, in no particular order)."""
    fs = features or load_features()
    names = spec.features()
    unknown = [n for n in names if n not in fs.sections]
    if unknown:
        raise ValueError(f"features {', '.join(unknown)} are not in the features configuration")
    t = spec.quarter
    day = fs.sql.first_day(str(t))
    quarterly = sorted({fs.window_of(n)[0] for n in fs.closure(names) if fs.kind(n) == "windows"})
    longest = max([fs.window_of(n)[1] for n in fs.closure(names) if fs.kind(n) == "windows"], default=1)
    con.execute(f"CREATE OR REPLACE TEMP TABLE segment_persons AS SELECT DISTINCT {PERSON} FROM "
                f"{fs.person_table} p WHERE {fs.attribute('living_in_area', 'p', f'{day} - 1')} "
                f"AND {fs.attribute('age', 'p', day)} >= {spec.ages[0]} "
                f"AND {fs.attribute('age', 'p', day)} < {spec.ages[1] + 1}")
    if quarterly:
        fs.build_panel(con, "segment_panel", "segment_persons", quarterly, t - longest, t - 1)
    con.execute(f"CREATE OR REPLACE TEMP TABLE segment_units AS SELECT {PERSON}, {t} AS t FROM segment_persons")
    sql = fs.at_day_sql("segment_units", names, day=day, panel="segment_panel" if quarterly else None,
                        days={"living_in_area": f"{day} - 1"})
    frame = con.sql(sql).df()
    for name in ("segment_units", "segment_persons", "segment_panel"):
        con.execute(f"DROP TABLE IF EXISTS {name}")
    order = [c for c in frame.columns if c != PERSON]
    return frame.sort_values(order, kind="stable").reset_index(drop=True)


RISK_LEVELS = ["low", "intermediate", "very high"]
BEHAVIOURS = ["active", "intermittent", "becoming passive", "passive"]


def risk_points(frame: pd.DataFrame, risk: Risk) -> pd.Series:
    points = pd.Series(0, index=frame.index)
    for factor in risk.factors:
        points += (frame[factor.feature].fillna(0) >= factor.at_least).astype(int) * factor.points
    return points


def risk_level(frame: pd.DataFrame, risk: Risk) -> pd.Series:
    points = risk_points(frame, risk)
    return pd.Series(np.select([points >= risk.very_high_from, points >= risk.intermediate_from],
                               RISK_LEVELS[:0:-1], RISK_LEVELS[0]), index=frame.index)


def behaviour(frame: pd.DataFrame, spec: Behaviour) -> pd.Series:
    recency = frame[spec.recency]
    frequency = frame[spec.frequency].fillna(0)
    within, at_least = spec.active
    known = recency.notna()
    return pd.Series(np.select(
        [known & (recency <= within) & (frequency >= at_least), known & (recency <= spec.intermittent_within),
         known & (recency <= spec.becoming_passive_within)], BEHAVIOURS[:3], BEHAVIOURS[3]), index=frame.index)


def value(frame: pd.DataFrame, prices: dict[str, float]) -> pd.Series:
    """EUR: each priced feature times its price, summed."""
    total = pd.Series(0.0, index=frame.index)
    for feature, price in prices.items():
        total += frame[feature].fillna(0).astype(float) * price
    return total.round(2)


def famd(frame: pd.DataFrame, numeric: list[str], categorical: list[str], keep: float, seed: int,
         log1p: bool = False) -> np.ndarray:
    """Factor analysis of mixed data: standardised numerics and share-weighted indicator columns,
    centred, then the principal components that keep `keep` of the variance."""
    parts = []
    for column in numeric:
        x = frame[column].fillna(0).astype(float).to_numpy()
        x = np.log1p(np.maximum(x, 0)) if log1p else x
        sd = x.std()
        parts.append(((x - x.mean()) / sd if sd > 0 else x * 0)[:, None])
    for column in categorical:
        dummies = pd.get_dummies(frame[column].fillna("(missing)").astype(str)).astype(float)
        share = dummies.mean(axis=0).to_numpy()
        parts.append((dummies.to_numpy() - share) / np.sqrt(share))
    matrix = np.hstack(parts)
    n_components = min(matrix.shape) if keep >= 1 else keep
    return PCA(n_components=n_components, svd_solver="full", random_state=seed).fit_transform(matrix)


def cluster(frame: pd.DataFrame, spec: Clustering) -> tuple[np.ndarray, pd.DataFrame]:
    """Group numbers 1..k (k with the best silhouette), and the silhouette of each k tried.

    Each k is fitted (10 seeded starts) on a seeded sample of `fit_sample` persons and scored on
    `sample` of them; the chosen k is fitted on everyone from the sample's centres, so the cost
    grows with the persons once, not once per k and start."""
    coordinates = famd(frame, spec.numeric, spec.categorical, spec.components, spec.random_state,
                       spec.transform == "log1p")
    rng = np.random.default_rng(spec.random_state)
    fitted = np.sort(rng.choice(len(frame), size=min(spec.fit_sample, len(frame)), replace=False))
    scored = rng.choice(len(fitted), size=min(spec.sample, len(fitted)), replace=False)
    tried, best = [], None
    with one_thread():  # also when run outside an insight file (safepool segments)
        distances = euclidean_distances(coordinates[fitted][scored])  # every k is scored on them: computed once
        for k in range(spec.groups[0], spec.groups[1] + 1):
            model = KMeans(n_clusters=k, n_init=10, random_state=spec.random_state).fit(coordinates[fitted])
            score = float(silhouette_score(distances, model.labels_[scored], metric="precomputed"))
            tried.append({"groups": k, "silhouette": round(score, 4)})
            if best is None or score > best[0] + 1e-9:
                best = (score, model)
        chosen = best[1]
        everyone = KMeans(n_clusters=chosen.n_clusters, init=chosen.cluster_centers_, n_init=1,
                          random_state=spec.random_state).fit(coordinates)
    labels = _numbered_by_size(everyone.labels_)
    return labels, pd.DataFrame(tried)


def _numbered_by_size(labels: np.ndarray) -> np.ndarray:
    """Groups numbered 1.. from the largest (ties by the first member in data order)."""
    groups, first, counts = np.unique(labels, return_index=True, return_counts=True)
    order = sorted(range(len(groups)), key=lambda i: (-counts[i], first[i]))
    renumber = {groups[i]: rank + 1 for rank, i in enumerate(order)}
    return np.array([renumber[g] for g in labels])


def segment(frame: pd.DataFrame, spec: SegmentSettings) -> pd.DataFrame:
    """The person table with its grid cell, behaviour, value and cluster (no person column)."""
    out = frame.drop(columns=[PERSON]).copy()
    out["risk"] = risk_level(frame, spec.risk)
    out["grid"] = out[spec.life_phase].astype(str) + " x " + out["risk"]
    out["behaviour"] = behaviour(frame, spec.behaviour)
    out["value_eur"] = value(frame, spec.prices)
    labels, _ = cluster(frame, spec.clustering)
    out["cluster"] = [f"group {g}" for g in labels]
    return out


def _means(frame: pd.DataFrame, by: str, columns: list[str], title: str) -> MagnitudeTable:
    rows = []
    for group, part in frame.groupby(by, sort=True):
        for column in columns:
            x = part[column].fillna(0).astype(float).to_numpy()
            rows.append({by: str(group), "feature": column, "value": float(x.mean()), "n": int(len(x)),
                         "top": sorted(np.abs(x).tolist(), reverse=True)[:CONTRIBUTORS],
                         "abs_total": float(np.abs(x).sum())})
    return MagnitudeTable(title, pd.DataFrame(rows), [by, "feature"], "mean")


def segment_outputs(segmented: pd.DataFrame, spec: SegmentSettings) -> dict[str, StatOutput]:
    """The profile cards' numbers as outputs for the disclosure checks: persons per grid cell, per
    behaviour and per cluster; each cluster's typical traits (persons per level of each described
    feature, one table per feature); its needs (mean use of each service) and value (mean EUR)."""
    def count(by: list[str]) -> pd.DataFrame:
        return segmented.groupby(by, sort=True).size().rename("count").reset_index()

    outputs: dict[str, StatOutput] = {
        "grid": FrequencyTable("Persons by life phase and vulnerability risk",
                               count([spec.life_phase, "risk"]), [spec.life_phase, "risk"]),
        "behaviour": FrequencyTable("Persons by service-use behaviour", count(["behaviour"]), ["behaviour"]),
        "cluster_sizes": FrequencyTable("Persons by customer group (clustering)", count(["cluster"]), ["cluster"]),
    }
    for feature in trait_features(spec):
        outputs[f"traits_{feature}"] = FrequencyTable(f"Customer groups by {feature.replace('_', ' ')}",
                                                      count(["cluster", feature]), ["cluster", feature])
    outputs["cluster_needs"] = _means(segmented, "cluster", spec.needs, "Services used by each customer group (mean)")
    outputs["cluster_value"] = _means(segmented, "cluster", ["value_eur"], "Cost of the services used (mean EUR)")
    return outputs


def persons_behind(person: pd.Series, segmented: pd.DataFrame, outputs: Mapping[str, StatOutput],
                   spec: SegmentSettings) -> dict[str, PersonsBehind]:
    """The persons behind every table of `segment_outputs` (`person`: each row's pseudonym, in the
    order of `segmented`), for the differencing ledger: who is in a cell is decided by the
    population (quarter and ages), the risk points, the behaviour's rules and the clustering; a
    cost by the price list."""
    frame = segmented.assign(**{PERSON: person.to_numpy()})
    population = json.dumps({"analysis": "segments", "at": spec.at, "ages": list(spec.ages)})
    decided_by = {"risk": spec.risk.model_dump_json(), "behaviour": spec.behaviour.model_dump_json(),
                  "cluster": spec.clustering.model_dump_json(), "value_eur": json.dumps(spec.prices, sort_keys=True)}
    return {name: PersonsBehind(frame, tuple(output.groups), population, decided_by,
                                "feature" if isinstance(output, MagnitudeTable) else None)
            for name, output in outputs.items()}


def trait_features(spec: SegmentSettings) -> list[str]:
    """What each card describes: the life phase, the described features, risk and behaviour."""
    return list(dict.fromkeys([spec.life_phase, *spec.describe, "risk", "behaviour"]))


TOO_SMALL = "too small to describe"


def _shown(output: StatOutput) -> pd.DataFrame:
    """The rows of a checked output that are published (suppressed rows left out)."""
    cells = output.cells
    return cells.loc[shown_mask(cells)]


def profile_cards(checked: dict[str, StatOutput], spec: SegmentSettings) -> list[dict[str, object]]:
    """One card per customer group, every number from the checked outputs (as mitigated), in the
    same layout for every group: name, description (size), typical traits, factors affecting
    behaviour, needs, value, priority and promise of value. A group whose size is not shown is
    only named, as too small to describe."""
    sizes = checked["cluster_sizes"].cells
    traits = {feature: _shown(checked[f"traits_{feature}"]) for feature in trait_features(spec)}
    needs = _shown(checked["cluster_needs"])
    worth = _shown(checked["cluster_value"])
    cards = []
    for _, row in sizes.iterrows():
        group = str(row["cluster"])
        if not re.fullmatch(r"group \d+", group):  # a total the mitigation added
            continue
        written = spec.cards.get(group)
        card: dict[str, object] = {"group": group, "name": written.name if written else group}
        if not shown_mask(sizes.loc[[_]])[0]:
            cards.append(card | {"description": TOO_SMALL})
            continue
        size = int(row["count"])
        typical = {}
        for feature, table in traits.items():
            mine = table.loc[table["cluster"] == group]
            if len(mine):  # the most common level shown (a suppressed level is never named)
                top = mine.sort_values(["count", feature], ascending=[False, True]).iloc[0]
                typical[feature] = f"{top[feature]} ({100 * int(top['count']) / size:.0f}%)"
        card |= {
            "description": f"{size:,} persons",
            "typical traits": {k: v for k, v in typical.items() if k not in ("risk", "behaviour")},
            "factors affecting behaviour": {k: v for k, v in typical.items() if k in ("risk", "behaviour")},
            "needs": {r["feature"]: round(float(r["value"]), 2) for _, r in needs.loc[needs["cluster"] == group].iterrows()},
            "value (mean EUR)": next((round(float(r["value"]), 2) for _, r in worth.loc[worth["cluster"] == group]
                                      .iterrows()), None),
            "priority": written.priority if written else "not written",
            "promise of value": written.promise if written else "not written",
        }
        cards.append(card)
    return cards


class SegmentsAnalysisSettings(Settings, SegmentSettings):
    """The segments as an insight file's analysis (`analysis: {kind: segments, ...}`)."""

    kind: Literal["segments"]


@register_analysis
class SegmentsAnalysis(Analysis):
    """Customer segments in the insight framework: one runner publishes and reports them."""

    kind = "segments"
    settings_model = SegmentsAnalysisSettings
    settings: SegmentsAnalysisSettings

    def tables(self, features: FeatureSet) -> dict[str, list[str]]:
        return {table: sorted(columns) for table, columns in sorted(features.sources(self.features_used()).items())}

    def features_used(self) -> list[str]:
        return self.settings.features()

    def run(self, context: InsightContext) -> Findings:
        s = self.settings
        context.say("persons and their features")
        frame = person_table(context.con, s, context.features)
        context.done_reading()
        context.say("segments")
        segmented = segment(frame, s)
        outputs = segment_outputs(segmented, s)
        traits = [name for name in outputs if name.startswith("traits_")]
        factors = ", ".join(f.label for f in s.risk.factors)
        return Findings(outputs, persons=persons_behind(frame[PERSON], segmented, outputs, s), sections=[
            Section("Life phase and vulnerability risk",
                    f"Persons aged {s.ages[0]}-{s.ages[1]} living in the area before {s.at}, by life phase and risk: "
                    f"intermediate from {s.risk.intermediate_from} points, very high from {s.risk.very_high_from}, "
                    f"points for {factors}.", ["grid"]),
            Section("Behaviour", "Active, intermittent, becoming passive or passive, from the recency and frequency of "
                                 f"{s.behaviour.frequency.replace('_', ' ')}.", ["behaviour"]),
            Section("Customer groups", "Groups found by FAMD and k-means (seeded), the number of groups with the best "
                                       "silhouette; their traits, the services they use and the cost of those services "
                                       "from the price list.",
                    ["cluster_sizes", *traits, "cluster_needs", "cluster_value"]),
        ])

    def summary(self, checked: Mapping[str, Mitigated]) -> str:
        cards = profile_cards({name: m.output for name, m in checked.items()}, self.settings)
        described = sum(card["description"] != TOO_SMALL for card in cards)
        return f"customer segments: {len(cards)} groups by clustering, {described} described on profile cards"
