"""Benchmark: the city's three analyses on a synthetic Espoo of 300,000 persons, against pandas.

    python bench/insight.py                                   # 300,000 persons, seed 1, all three
    python bench/insight.py --persons 50000 --save /tmp/pool  # keep the pool for another run
    python bench/insight.py --pool /tmp/pool --only need      # a saved pool (DuckDB EXPORT DATABASE folder)

In one run, on one pool, for each shipped insight file (src/safepool/examples/insight-*.yaml):

  safepool  the analysis as `safepool insight run` computes it under a permit (its `run`, without
            the publishing): the persons and their features in SQL by the features layer, then
            the analysis's own numpy and scikit-learn;
  pandas    the same analysis written the usual way: the tables read into frames, quarterly
            counts, windows and attributes by merges and group-bys, and (segments) k-means fitted
            on every person for each number of groups, (need) the same models and the audit's
            bootstrap as a loop of group-bys, (paths) the transitions alone.

Each pandas result is checked against the engine's (the same persons and features, the same
transition counts, the same units and AUC), so both compute the same thing. Printed: each time,
the ratio pandas / safepool, and the load average (timings taken on a busy machine are
inflated). Targets (issue 13, point 7): each analysis under 30 s, at least 5x faster than pandas.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

import duckdb
import numpy as np
import pandas as pd
from sklearn.cluster import KMeans
from sklearn.metrics import silhouette_score

sys.path.insert(0, str(Path(__file__).resolve().parent))
from study_validity import synthetic_pool  # noqa: E402

from safepool.disclosure import DisclosureRules  # noqa: E402
from safepool.features import load_features  # noqa: E402
from safepool.insight import fairness  # noqa: E402
from safepool.insight.analysis import InsightContext  # noqa: E402
from safepool.insight.need import (  # noqa: E402
    WITH,
    NeedSettings,
    analyse,
    fit,
    outputs,
    quarter_index,
    units_in_data_order,
)
from safepool.insight.paths import ARROW, OTHER_TRANSITIONS  # noqa: E402
from safepool.insight.segments import famd, person_table  # noqa: E402
from safepool.insight.spec import analysis_of, load_insight  # noqa: E402
from safepool.synth._catalogue import register_entries  # noqa: E402

EXAMPLES = Path(__file__).resolve().parents[1] / "src/safepool/examples"
KINDS = ("segments", "paths", "need")


class Clock:
    """Seconds per stage: called with a stage's name as it starts (an analysis's progress)."""

    def __init__(self) -> None:
        self.stages: dict[str, float] = {}
        self.last = time.perf_counter()
        self.current: str | None = None

    def __call__(self, stage: str | None) -> None:
        now = time.perf_counter()
        if self.current is not None:
            self.stages[self.current] = self.stages.get(self.current, 0.0) + now - self.last
        self.current, self.last = stage, now

    @property
    def total(self) -> float:
        return sum(self.stages.values())

    def line(self) -> str:
        return "  ".join(f"{k} {v:.1f}" for k, v in self.stages.items() if v >= 0.05)


def load() -> str:
    return "load average " + " ".join(f"{x:.1f}" for x in os.getloadavg())


# -- pandas: the shared pieces -------------------------------------------------------------------


def quarter(dates: pd.Series) -> pd.Series:
    return dates.dt.year * 4 + (dates.dt.month - 1) // 3


def first_day(t: int) -> pd.Timestamp:
    return pd.Timestamp(year=t // 4, month=(t % 4) * 3 + 1, day=1)


def years(start: pd.Series, day: pd.Series | pd.Timestamp) -> pd.Series:
    return (day - start).dt.days / 365.25


def read(con: duckdb.DuckDBPyConnection) -> dict[str, pd.DataFrame]:
    population = con.sql("SELECT * FROM population").df()
    protection = con.sql("SELECT pid, event_date, event_type FROM child_protection").df()
    services = con.sql("SELECT pid, service, start_date FROM city_services").df()
    for frame, column in ((population, "birth_date"), (population, "move_in_date"), (population, "move_out_date"),
                          (population, "death_date"), (protection, "event_date"), (services, "start_date")):
        frame[column] = pd.to_datetime(frame[column])
    protection["t"] = quarter(protection["event_date"])
    services["t"] = quarter(services["start_date"])
    return {"population": population, "protection": protection, "services": services}


def living(frame: pd.DataFrame, day: pd.Series | pd.Timestamp) -> pd.Series:
    return (frame["move_in_date"] <= day) & (frame["move_out_date"].isna() | (frame["move_out_date"] > day)) \
        & (frame["death_date"].isna() | (frame["death_date"] > day))


def panel(tables: dict[str, pd.DataFrame], counts: dict[str, tuple[str, str | None]], pids: pd.Series,
          t_from: int, t_to: int) -> pd.DataFrame:
    """Quarterly counts (pid, t, one column per measure) of `pids` in t_from..t_to."""
    sources = {"protection": ("event_type", tables["protection"]), "services": ("service", tables["services"])}
    measures = []
    for name, (source, code) in counts.items():
        column, frame = sources[source]
        rows = frame if code is None else frame[frame[column] == code]
        measures.append(rows.groupby(["pid", "t"]).size().rename(name))
    out = pd.concat(measures, axis=1).fillna(0).reset_index()
    return out[(out["t"] >= t_from) & (out["t"] <= t_to) & out["pid"].isin(pids)]


def window_sums(units: pd.DataFrame, quarters: pd.DataFrame, windows: dict[str, tuple[str, int]]) -> pd.DataFrame:
    """Sums of each measure over q-k..q-1 for each unit (pid, t), 0 when none."""
    longest = max(k for _, k in windows.values())
    joined = units[["pid", "t"]].merge(quarters.rename(columns={"t": "h"}), on="pid")
    joined = joined[(joined["h"] >= joined["t"] - longest) & (joined["h"] <= joined["t"] - 1)]
    sums = {name: joined[joined["h"] >= joined["t"] - k].groupby(["pid", "t"])[measure].sum()
            for name, (measure, k) in windows.items()}
    out = units[["pid", "t"]].merge(pd.DataFrame(sums).reset_index(), on=["pid", "t"], how="left")
    for name in windows:
        out[name] = out[name].fillna(0)
    return out


# -- segments ------------------------------------------------------------------------------------


SEGMENT_COUNTS = {"city_service_contacts": ("services", None), "library_and_culture_visits": ("services",
                  "library_and_culture"), "sports_memberships": ("services", "sports"),
                  "adult_social_work_visits": ("services", "adult_social_work"),
                  "child_protection_notifications": ("protection", "notification")}
SEGMENT_WINDOWS = {f"{m}_{k}": (m, k) for m in SEGMENT_COUNTS for k in (8, 16)}


def pandas_segments(tables: dict[str, pd.DataFrame], settings, clock: Clock) -> pd.DataFrame:
    """The segments' persons and features, then k-means on every person for each number of groups."""
    population = tables["population"]
    t = settings.quarter
    day = first_day(t)
    age = years(population["birth_date"], day)
    persons = population[living(population, day - pd.Timedelta(days=1)) & (age >= settings.ages[0])
                         & (age < settings.ages[1] + 1)].copy()
    persons["t"] = t
    persons["age"] = years(persons["birth_date"], day)
    persons["life_phase"] = pd.cut(persons["age"], [-np.inf, 13, 18, 30, 50, 65, np.inf], right=False,
                                   labels=["child", "youth", "young adult", "adult", "middle-aged", "pensioner"])
    persons["language_group"] = persons["native_language"].map({"fi": "finnish", "sv": "swedish"}).fillna("foreign")
    persons["sex_group"] = np.where(persons["sex"].astype("string") == "2", "female", "male")
    quarters = panel(tables, SEGMENT_COUNTS, persons["pid"], t - 16, t - 1)
    persons = persons.merge(window_sums(persons, quarters, SEGMENT_WINDOWS), on=["pid", "t"])
    used = quarters[quarters["city_service_contacts"] > 0].groupby("pid")["t"].max().rename("last")
    persons = persons.join(used, on="pid")
    persons["quarters_since_city_service"] = t - persons["last"]
    clock("pandas: clustering")
    spec = settings.clustering
    coordinates = famd(persons, spec.numeric, spec.categorical, spec.components, spec.random_state,
                       spec.transform == "log1p")
    sample = np.random.default_rng(spec.random_state).choice(len(persons), min(spec.sample, len(persons)), False)
    best = None
    for k in range(spec.groups[0], spec.groups[1] + 1):
        model = KMeans(n_clusters=k, n_init=10, random_state=spec.random_state).fit(coordinates)
        score = silhouette_score(coordinates[sample], model.labels_[sample])
        best = max(best or (score, k), (score, k))
    clock(None)
    return persons


def bench_segments(con, context: InsightContext) -> None:
    insight = load_insight(EXAMPLES / "insight-segments.yaml")
    analysis, ours = analysis_of(insight), Clock()
    analysis.run(InsightContext(**{**context.__dict__, "say": ours, "seed": insight.seed}))
    ours(None)
    theirs = Clock()
    theirs("pandas: read")
    tables = read(con)
    theirs("pandas: persons and features")
    persons = pandas_segments(tables, analysis.settings, theirs)
    engine = person_table(con, analysis.settings, context.features)
    columns = ["age", "quarters_since_city_service", *SEGMENT_WINDOWS.keys() & set(engine.columns)]
    mine = engine.set_index("pid").sort_index()[columns]
    other = persons.set_index("pid").sort_index()[columns]
    same = mine.index.equals(other.index) and np.allclose(mine.to_numpy(float), other.to_numpy(float),
                                                         equal_nan=True)
    say("segments", ours, theirs, f"same persons and features: {'yes' if same else 'NO'}")


# -- paths ---------------------------------------------------------------------------------------


def pandas_transitions(con: duckdb.DuckDBPyConnection, settings, labels: dict[str, str],
                       groups: pd.DataFrame, minimum: int) -> pd.DataFrame:
    """The same transitions with pandas: events, first anchors, window, collapse, pairs, counts."""
    grouped = {code: name for name, codes in settings.groups.items() for code in codes}
    frames = []
    for source, day in (("child_protection", "event_date"), ("city_services", "start_date")):
        column = {"child_protection": "event_type", "city_services": "service"}[source]
        frame = con.execute(f"SELECT pid, {column} AS step, {day} AS day FROM {source}").df()
        frames.append(frame.dropna(subset=["day"]))
    events = pd.concat(frames, ignore_index=True)
    events["step"] = events["step"].map(lambda code: grouped.get(code, code))
    events["day"] = pd.to_datetime(events["day"])
    start, end = (pd.Timestamp(day) for day in settings.period)
    anchors = events[(events["step"] == settings.anchor) & events["day"].between(start, end)]
    anchors = anchors.groupby("pid", as_index=False)["day"].min().rename(columns={"day": "day0"})
    around = events.merge(anchors, on="pid")
    around = around[(around["day"] >= around["day0"] - pd.Timedelta(days=settings.before_days))
                    & (around["day"] <= around["day0"] + pd.Timedelta(days=settings.after_days))].copy()
    around["is_anchor"] = (around["step"] == settings.anchor) & (around["day"] == around["day0"])
    around["not_anchor"] = ~around["is_anchor"]
    around = around.sort_values(["pid", "day", "not_anchor", "step"], kind="stable")
    previous = around.groupby("pid")["step"].shift()
    around = around[(previous != around["step"]) | around["is_anchor"]].copy()
    around["k"] = around.groupby("pid").cumcount() + 1
    position = around[around["is_anchor"]].groupby("pid")["k"].min().rename("a")
    around = around.join(position, on="pid")
    around["next"] = around.groupby("pid")["step"].shift(-1)
    around["next_k"] = around.groupby("pid")["k"].shift(-1)
    pairs = around[around["next"].notna() & (around["k"] >= around["a"] - settings.steps)
                   & (around["next_k"] <= around["a"] + settings.steps)]
    pairs = pairs[["pid", "step", "next"]].drop_duplicates()
    common = pairs.groupby(["step", "next"]).size()
    common = set(common[common >= minimum].index)
    pairs = pairs.assign(transition=[labels[a] + ARROW + labels[b] if (a, b) in common else OTHER_TRANSITIONS
                                     for a, b in zip(pairs["step"], pairs["next"])])
    pairs = pairs.merge(groups, on="pid")
    return pairs.groupby(["grp", "transition"])["pid"].nunique().rename("count").reset_index()


def bench_paths(con, context: InsightContext) -> None:
    insight = load_insight(EXAMPLES / "insight-paths.yaml")
    analysis, ours = analysis_of(insight), Clock()
    findings = analysis.run(InsightContext(**{**context.__dict__, "say": ours, "seed": insight.seed}))
    ours(None)
    labels = analysis._step_labels(context)
    groups = con.execute("SELECT pid, grp FROM path_persons").df()
    theirs = Clock()
    theirs("pandas: transitions")
    other = pandas_transitions(con, analysis.settings, labels, groups, context.policy.min_frequency)
    theirs(None)
    by = analysis.settings.compare_by
    cells = findings.outputs["paths_transitions"].cells
    mine = cells[cells["count"] > 0].rename(columns={by: "grp"}).sort_values(["grp", "transition"])
    other = other.sort_values(["grp", "transition"])
    same = mine[["grp", "transition", "count"]].reset_index(drop=True).equals(
        other[["grp", "transition", "count"]].reset_index(drop=True))
    say("paths", ours, theirs, f"same transition counts: {'yes' if same else 'NO'} (pandas: the transitions alone)")


# -- need ----------------------------------------------------------------------------------------


NEED_COUNTS = {"child_protection_notifications": ("protection", "notification"),
               "school_health_care_visits": ("services", "school_health_care"),
               "family_counselling_visits": ("services", "family_counselling"),
               "youth_services_visits": ("services", "youth_services"),
               "city_service_contacts": ("services", None)}
NEED_WINDOWS = {"child_protection_notifications_8": ("child_protection_notifications", 8),
                "school_health_care_visits_4": ("school_health_care_visits", 4),
                "family_counselling_visits_4": ("family_counselling_visits", 4),
                "youth_services_visits_4": ("youth_services_visits", 4),
                "city_service_contacts_8": ("city_service_contacts", 8)}
SUPPORT = ["family_work", "support_person", "financial_support", "peer_group", "emergency_placement",
           "placement_outside_home"]


def pandas_units(tables: dict[str, pd.DataFrame], settings: NeedSettings, clock: Clock) -> pd.DataFrame:
    """The need units (pid, t, outcome, predictors, audited groups) with pandas, as SQL gives them."""
    population, protection = tables["population"], tables["protection"]
    train, test = settings.train.quarters(), quarter_index(settings.test)
    indexes = [*train, test]
    low, high = settings.age
    support = protection[protection["event_type"].isin(SUPPORT)]
    starts = support.groupby("pid", as_index=False)["t"].min().rename(columns={"t": "start_t"})
    age_test = years(population["birth_date"], first_day(test))
    age_first = years(population["birth_date"], first_day(indexes[0]))
    candidates = population.loc[(age_test >= low) & (age_first < high + 1), ["pid"]].drop_duplicates()
    quarters = panel(tables, NEED_COUNTS, candidates["pid"], indexes[0] - 8, test - 1)
    units = candidates.merge(pd.DataFrame({"t": indexes}), how="cross")
    units["qstart"] = pd.to_datetime(pd.DataFrame({"year": units["t"] // 4, "month": (units["t"] % 4) * 3 + 1,
                                                   "day": 1}))
    units = units.merge(population, on="pid").merge(starts, on="pid", how="left")
    age = years(units["birth_date"], units["qstart"])
    keep = (units["start_t"].isna() | (units["start_t"] >= units["t"])) & (age >= low) & (age < high + 1) \
        & living(units, units["qstart"] - pd.Timedelta(days=1))
    units = units[keep].copy()
    units["outcome"] = (units["start_t"].notna() & (units["start_t"] < units["t"] + settings.horizon)).astype(int)
    units["age"] = years(units["birth_date"], units["qstart"])
    units["female"] = (units["sex"] == 2).astype("Int64").where(units["sex"].notna())
    units["sex_group"] = np.where(units["sex"].astype("string") == "2", "female", "male")
    units["child_age_group"] = np.select([units["age"] >= 13, units["age"] >= 7], ["13-17", "7-12"], "0-6")
    clock("pandas: windows")
    units = units.merge(window_sums(units, quarters, NEED_WINDOWS), on=["pid", "t"])
    for name in NEED_WINDOWS:
        units[name] = units[name].round(6)
    clock("pandas: family")
    language = population.set_index("pid")["native_language"]
    own = units["native_language"].fillna("unknown")
    mother, father = units["mother_id"].map(language), units["father_id"].map(language)
    known = units["mother_id"].isin(language.index) | units["father_id"].isin(language.index)
    units["family_language_group"] = np.select(
        [(mother == "fi") | (father == "fi"), (mother == "sv") | (father == "sv"), known, own == "fi", own == "sv"],
        ["finnish", "swedish", "foreign", "finnish", "swedish"], "foreign")
    wanted = list(dict.fromkeys([*settings.predictors, *settings.audit.values()]))
    return units[["pid", "t", "outcome", *wanted]].reset_index(drop=True)


def pandas_audit(y: np.ndarray, selected: np.ndarray, groups: pd.DataFrame, reps: int, seed: int) -> pd.DataFrame:
    """The bootstrap of the group rates as a loop of pandas group-bys."""
    frame = groups.assign(tp=y & selected, fp=~y & selected, fn=y & ~selected, tn=~y & ~selected)
    rng = np.random.default_rng(seed)
    rows = []
    for rep in range(reps):
        sample = frame.iloc[rng.integers(0, len(frame), len(frame))]
        for attribute in groups.columns:
            c = sample.groupby(attribute)[["tp", "fp", "fn", "tn"]].sum()
            rates = pd.DataFrame({"selection_rate": (c.tp + c.fp) / c.sum(axis=1), "false_positive_rate":
                                  c.fp / (c.fp + c.tn), "false_negative_rate": c.fn / (c.fn + c.tp),
                                  "precision": c.tp / (c.tp + c.fp)})
            rows.append(rates.assign(attribute=attribute, rep=rep))
    draws = pd.concat(rows)
    return draws.groupby(["attribute", draws.index]).quantile([0.025, 0.975])


def bench_need(con, context: InsightContext) -> None:
    insight = load_insight(EXAMPLES / "insight-need.yaml")
    settings, ours = insight.analysis, Clock()
    result = analyse(con, context.features, settings, insight.seed, ours)  # what NeedAnalysis.run does, with
    ours("outputs")
    outputs(result)  # the tables it releases
    ours(None)
    theirs = Clock()
    theirs("pandas: read")
    tables = read(con)
    theirs("pandas: units")
    frame = pandas_units(tables, settings, theirs)
    units = units_in_data_order(frame.copy(), settings, quarter_index(settings.test))
    test = units.frame[units.frame["set"] == "test"]
    theirs("pandas: proxies")
    fairness.proxy_screen(test, settings.predictors, settings.audit, context.features, settings.proxy_tolerance)
    theirs("pandas: models")
    models = [fit(units, settings.predictors, settings, insight.seed, WITH),
              fit(units, [p for p in settings.predictors if p != "district"], settings, insight.seed, "without")]
    theirs("pandas: audit")
    groups = test[list(settings.audit.values())].rename(columns={v: k for k, v in settings.audit.items()})
    y = test["outcome"].to_numpy().astype(bool)
    for model in models:
        pandas_audit(y, model.selected, groups, settings.bootstrap, insight.seed)
    theirs(None)
    pd.testing.assert_frame_equal(units.frame, result.units.frame, check_dtype=False)
    same = abs(models[0].auc - result.models[0].auc) < 1e-12
    aucs = ", ".join(f"{m.label} {m.auc:.3f}" for m in result.models)
    say("need", ours, theirs, f"same units and AUC: {'yes' if same else 'NO'}; test AUC {aucs}")


# -- the run -------------------------------------------------------------------------------------


def open_pool(args: argparse.Namespace) -> duckdb.DuckDBPyConnection:
    if args.pool:
        con = duckdb.connect()
        con.execute(f"IMPORT DATABASE '{args.pool}'")
        return con
    con, _ = synthetic_pool(seed=args.seed, persons=args.persons, clients_per_year=max(20, args.persons // 500))
    if args.save:
        con.execute(f"EXPORT DATABASE '{args.save}' (FORMAT PARQUET)")
    return con


def say(kind: str, ours: Clock, theirs: Clock, check: str) -> None:
    ratio = theirs.total / ours.total
    print(f"{kind}: safepool {ours.total:.1f} s ({ours.line()})", flush=True)
    print(f"{kind}: pandas   {theirs.total:.1f} s ({theirs.line().replace('pandas: ', '')})")
    print(f"{kind}: ratio pandas / safepool {ratio:.1f}x; {check}; under 30 s "
          f"{'met' if ours.total < 30 else 'NOT met'}, 5x {'met' if ratio >= 5 else 'NOT met'}; {load()}", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--persons", type=int, default=300_000)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--pool", help="a saved pool (EXPORT DATABASE folder) instead of generating one")
    parser.add_argument("--save", help="save the generated pool to this folder")
    parser.add_argument("--only", choices=KINDS, action="append", help="run only this analysis (repeatable)")
    args = parser.parse_args()
    started = time.perf_counter()
    con = open_pool(args)
    persons = con.sql("SELECT count(*) FROM population").fetchall()[0][0]
    print(f"pool: {persons:,} persons ({time.perf_counter() - started:.0f} s to make); {load()}", flush=True)
    dictionary = {r.name: {v.name: v for v in r.variables} for r in register_entries()}
    context = InsightContext(con, load_features(), dictionary, DisclosureRules(), 1)
    wanted = args.only or list(KINDS)
    for kind, bench in (("segments", bench_segments), ("paths", bench_paths), ("need", bench_need)):
        if kind in wanted:
            bench(con, context)


if __name__ == "__main__":
    main()
