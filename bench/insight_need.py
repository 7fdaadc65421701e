"""Benchmark: predicted service needs on a synthetic Espoo of 300,000 persons, against pandas.

    python bench/insight_need.py                       # 300,000 persons, seed 1
    python bench/insight_need.py --persons 50000 --save /tmp/pool50k   # keep the pool for another run
    python bench/insight_need.py --pool /tmp/pool50k   # a saved pool (DuckDB EXPORT DATABASE folder)

In one run, on the same pool and the example's settings (src/safepool/examples/insight-need.yaml):

  safepool   the need analysis as it runs under a permit (safepool.insight.need.analyse): the
             units computed in SQL by the features layer, the two models, the proxy screen and
             the fairness audit (vectorised bootstrap);
  pandas     the same analysis written the usual way in pandas: the tables read into frames,
             quarterly counts, windows and attributes by merges and group-bys, the same models
             (the same scikit-learn code), the audit's bootstrap as a loop of group-bys.

The pandas units are checked equal to the engine's, value for value, so both compute the same
thing. Printed: seconds per stage and in total, the speed-up, and the figures a reader checks
(test AUC of both models, the proxy found, the native-language flags with and without it).
Targets (issue 13, point 7): under 30 s, and at least 5x faster than pandas.
"""

from __future__ import annotations

import argparse
import sys
import time
from importlib.resources import files
from pathlib import Path

import duckdb
import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parent))
from study_validity import synthetic_pool  # noqa: E402

from safepool.features import load_features  # noqa: E402
from safepool.insight import fairness  # noqa: E402
from safepool.insight.need import (  # noqa: E402
    WITH,
    NeedResult,
    NeedSettings,
    analyse,
    fit,
    quarter_index,
    units_in_data_order,
)
from safepool.insight.spec import load_insight  # noqa: E402

EXAMPLE = Path(str(files("safepool.examples").joinpath("insight-need.yaml")))
SUPPORT = ["family_work", "support_person", "financial_support", "peer_group", "emergency_placement",
           "placement_outside_home"]
SERVICES = {"school_health_care_visits": "school_health_care", "family_counselling_visits": "family_counselling",
            "youth_services_visits": "youth_services"}
WINDOWS = {"child_protection_notifications_8": ("child_protection_notifications", 8),
           "school_health_care_visits_4": ("school_health_care_visits", 4),
           "family_counselling_visits_4": ("family_counselling_visits", 4),
           "youth_services_visits_4": ("youth_services_visits", 4),
           "city_service_contacts_8": ("city_service_contacts", 8)}


class Clock:
    """Seconds per stage: called with a stage's name as it starts (the analysis's progress), or
    `done(name)` when it ends."""

    def __init__(self) -> None:
        self.stages: dict[str, float] = {}
        self.last = time.perf_counter()
        self.current: str | None = None

    def __call__(self, stage: str | None) -> None:
        if self.current is not None:
            self.done(self.current)
        self.current, self.last = stage, time.perf_counter()

    def done(self, stage: str) -> None:
        now = time.perf_counter()
        self.stages[stage] = self.stages.get(stage, 0.0) + now - self.last
        self.last = now


# -- the pandas equivalent ---------------------------------------------------------------------


def quarter(dates: pd.Series) -> pd.Series:
    return dates.dt.year * 4 + (dates.dt.month - 1) // 3


def first_day(t: pd.Series) -> pd.Series:
    return pd.to_datetime(pd.DataFrame({"year": t // 4, "month": (t % 4) * 3 + 1, "day": 1}))


def years(start: pd.Series, day: pd.Series) -> pd.Series:
    return (day - start).dt.days / 365.25


def pandas_units(con: duckdb.DuckDBPyConnection, settings: NeedSettings, clock: Clock) -> pd.DataFrame:
    """The need units (pid, t, outcome, predictors, audited groups) with pandas, as SQL gives them."""
    population = con.sql("SELECT * FROM population").df()
    protection = con.sql("SELECT pid, event_date, event_type FROM child_protection").df()
    services = con.sql("SELECT pid, service, start_date FROM city_services").df()
    for frame, column in ((population, "birth_date"), (population, "move_in_date"), (population, "move_out_date"),
                          (population, "death_date"), (protection, "event_date"), (services, "start_date")):
        frame[column] = pd.to_datetime(frame[column])
    clock.done("pandas: read")
    train, test = settings.train.quarters(), quarter_index(settings.test)
    indexes = [*train, test]
    low, high = settings.age
    protection["t"] = quarter(protection["event_date"])
    services["t"] = quarter(services["start_date"])
    support = protection[protection["event_type"].isin(SUPPORT)]
    starts = support.groupby("pid", as_index=False)["t"].min().rename(columns={"t": "start_t"})
    test_day = pd.Timestamp(year=test // 4, month=(test % 4) * 3 + 1, day=1)
    first = pd.Timestamp(year=indexes[0] // 4, month=(indexes[0] % 4) * 3 + 1, day=1)
    age_test = (test_day - population["birth_date"]).dt.days / 365.25
    age_first = (first - population["birth_date"]).dt.days / 365.25
    candidates = population.loc[(age_test >= low) & (age_first < high + 1), ["pid"]].drop_duplicates()
    # quarterly measures of the candidates, over the look-back
    t_from, t_to = indexes[0] - 8, test - 1
    measures = []
    notes = protection[protection["event_type"] == "notification"]
    measures.append(notes.groupby(["pid", "t"]).size().rename("child_protection_notifications"))
    for name, service in SERVICES.items():
        measures.append(services[services["service"] == service].groupby(["pid", "t"]).size().rename(name))
    measures.append(services.groupby(["pid", "t"]).size().rename("city_service_contacts"))
    panel = pd.concat(measures, axis=1).fillna(0).reset_index()
    panel = panel[(panel["t"] >= t_from) & (panel["t"] <= t_to) & panel["pid"].isin(candidates["pid"])]
    clock.done("pandas: measures")
    # the units: candidates at each index quarter, eligible on its first day
    units = candidates.merge(pd.DataFrame({"t": indexes}), how="cross")
    units["qstart"] = first_day(units["t"])
    units = units.merge(population, on="pid").merge(starts, on="pid", how="left")
    age = years(units["birth_date"], units["qstart"])
    day_before = units["qstart"] - pd.Timedelta(days=1)
    living = (units["move_in_date"] <= day_before) & (units["move_out_date"].isna()
                                                      | (units["move_out_date"] > day_before)) \
        & (units["death_date"].isna() | (units["death_date"] > day_before))
    keep = (units["start_t"].isna() | (units["start_t"] >= units["t"])) & (age >= low) & (age < high + 1) & living
    units = units[keep].copy()
    units["outcome"] = (units["start_t"].notna() & (units["start_t"] < units["t"] + settings.horizon)).astype(int)
    units["age"] = years(units["birth_date"], units["qstart"])
    units["female"] = (units["sex"] == 2).astype("Int64").where(units["sex"].notna())
    units["sex_group"] = np.where(units["sex"].astype("string") == "2", "female", "male")
    units["child_age_group"] = np.select([units["age"] >= 13, units["age"] >= 7], ["13-17", "7-12"], "0-6")
    clock.done("pandas: units")
    # windows: the measures of the quarters before each index quarter
    joined = units[["pid", "t"]].merge(panel.rename(columns={"t": "h"}), on="pid")
    joined = joined[(joined["h"] >= joined["t"] - 8) & (joined["h"] <= joined["t"] - 1)]
    sums = {}
    for name, (measure, quarters) in WINDOWS.items():
        inside = joined[joined["h"] >= joined["t"] - quarters]
        sums[name] = inside.groupby(["pid", "t"])[measure].sum()
    windows = pd.DataFrame(sums).reset_index()
    units = units.merge(windows, on=["pid", "t"], how="left")
    for name in WINDOWS:
        units[name] = units[name].fillna(0).round(6)
    clock.done("pandas: windows")
    # the family's native language: a parent's, else the person's own
    language = population.set_index("pid")["native_language"]
    own = units["native_language"].fillna("unknown")
    mother = units["mother_id"].map(language)
    father = units["father_id"].map(language)
    known = units["mother_id"].isin(language.index) | units["father_id"].isin(language.index)
    units["family_language_group"] = np.select(
        [(mother == "fi") | (father == "fi"), (mother == "sv") | (father == "sv"), known, own == "fi", own == "sv"],
        ["finnish", "swedish", "foreign", "finnish", "swedish"], "foreign")
    clock.done("pandas: family")
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


def pandas_need(con: duckdb.DuckDBPyConnection, settings: NeedSettings, clock: Clock) -> tuple[pd.DataFrame, float]:
    frame = pandas_units(con, settings, clock)
    units = units_in_data_order(frame.copy(), settings, quarter_index(settings.test))
    test = units.frame[units.frame["set"] == "test"]
    fairness.proxy_screen(test, settings.predictors, settings.audit, load_features(), settings.proxy_tolerance)
    clock.done("pandas: proxies")
    models = [fit(units, settings.predictors, settings, 1, WITH),
              fit(units, [p for p in settings.predictors if p != "district"], settings, 1, "without")]
    clock.done("pandas: models")
    groups = test[list(settings.audit.values())].rename(columns={v: k for k, v in settings.audit.items()})
    y = test["outcome"].to_numpy().astype(bool)
    for model in models:
        pandas_audit(y, model.selected, groups, settings.bootstrap, 1)
    clock.done("pandas: audit")
    return frame, models[0].auc


# -- the run -----------------------------------------------------------------------------------


def open_pool(args: argparse.Namespace) -> duckdb.DuckDBPyConnection:
    if args.pool:
        con = duckdb.connect()
        con.execute(f"IMPORT DATABASE '{args.pool}'")
        return con
    con, _ = synthetic_pool(seed=args.seed, persons=args.persons, clients_per_year=max(20, args.persons // 500))
    if args.save:
        con.execute(f"EXPORT DATABASE '{args.save}' (FORMAT PARQUET)")
    return con


def report(result: NeedResult) -> list[str]:
    lines = [f"  test AUC {m.label}: {m.auc:.3f} (Brier {m.brier:.4f})" for m in result.models]
    proxies = result.proxies[result.proxies["role"] == fairness.PROXY]
    lines.append("  proxies found: " + (", ".join(f"{r.feature} for {r.attribute} (association {r.association:.3f})"
                                                 for r in proxies.itertuples()) or "none"))
    for model in result.models:
        table = fairness.disparities(result.audits[model.label], result.settings.tolerance,
                                     result.settings.ratio_tolerance, result.min_group)
        language = table[(table["attribute"] == "native language")
                         & table["metric"].isin(["selection_rate", "false_positive_rate"])]
        for row in language.to_dict("records"):
            lines.append(f"  {model.label}: {row['metric']} {row['highest / lowest']} ratio {row['ratio']:.2f} "
                         f"[{row['ratio_low']:.2f}, {row['ratio_high']:.2f}] -> {row['flag']}")
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--persons", type=int, default=300_000)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--pool", help="a saved pool (EXPORT DATABASE folder) instead of generating one")
    parser.add_argument("--save", help="save the generated pool to this folder")
    parser.add_argument("--skip-pandas", action="store_true")
    args = parser.parse_args()
    settings = load_insight(EXAMPLE).analysis
    started = time.perf_counter()
    con = open_pool(args)
    persons = con.sql("SELECT count(*) FROM population").fetchall()[0][0]
    print(f"pool: {persons:,} persons ({time.perf_counter() - started:.0f} s to make)", flush=True)

    clock = Clock()
    result = analyse(con, load_features(), settings, seed=1, say=clock)
    clock(None)
    ours = sum(clock.stages.values())
    print(f"safepool: {ours:.1f} s   " + "  ".join(f"{k} {v:.1f}" for k, v in clock.stages.items() if v >= 0.05))
    print("\n".join(report(result)), flush=True)
    if args.skip_pandas:
        return
    other = Clock()
    frame, auc = pandas_need(con, settings, other)
    theirs = sum(other.stages.values())
    print(f"pandas:   {theirs:.1f} s   " + "  ".join(f"{k.removeprefix('pandas: ')} {v:.1f}"
                                                    for k, v in other.stages.items()))
    same = units_in_data_order(frame, settings, quarter_index(settings.test)).frame
    pd.testing.assert_frame_equal(same, result.units.frame, check_dtype=False)
    assert abs(auc - result.models[0].auc) < 1e-12
    print(f"the same units and AUC; speed-up {theirs / ours:.1f}x "
          f"(targets: under 30 s {'met' if ours < 30 else 'NOT met'}, 5x {'met' if theirs / ours >= 5 else 'NOT met'})")


if __name__ == "__main__":
    main()
