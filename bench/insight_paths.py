"""Benchmark: service paths in the engine (SQL, safepool.insight.paths) against the same paths in pandas.

    python bench/insight_paths.py [--persons 300000] [--seed 1]

Makes a synthetic Espoo in memory, then computes the example insight file's paths
(src/safepool/examples/insight-paths.yaml: steps around the first child protection notification,
transitions by the family's language group) both ways in the same run, checks that the two
agree on every transition count, and prints each time and the ratio. Target: under 30 s at
300,000 persons and at least 5x faster than pandas.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import duckdb
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parent))
from study_validity import synthetic_pool  # noqa: E402

from safepool.disclosure import DisclosureRules  # noqa: E402
from safepool.features import load_features  # noqa: E402
from safepool.insight.analysis import InsightContext  # noqa: E402
from safepool.insight.paths import ARROW, OTHER_TRANSITIONS  # noqa: E402
from safepool.insight.spec import analysis_of, load_insight  # noqa: E402
from safepool.synth._catalogue import register_entries  # noqa: E402

EXAMPLE = Path(__file__).resolve().parents[1] / "src/safepool/examples/insight-paths.yaml"


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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--persons", type=int, default=300_000)
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()
    started = time.perf_counter()
    con, _ = synthetic_pool(args.seed, args.persons, clients_per_year=max(10, args.persons // 100))
    print(f"synthetic Espoo of {args.persons:,} persons in {time.perf_counter() - started:.0f} s")
    insight = load_insight(EXAMPLE)
    analysis = analysis_of(insight)
    dictionary = {r.name: {v.name: v for v in r.variables} for r in register_entries()}
    policy = DisclosureRules()
    context = InsightContext(con, load_features(), dictionary, policy, insight.seed)
    started = time.perf_counter()
    findings = analysis.run(context)
    engine = time.perf_counter() - started
    ours = findings.outputs["paths_transitions"].cells
    labels = analysis._step_labels(context)
    groups = con.execute("SELECT pid, grp FROM path_persons").df()
    started = time.perf_counter()
    theirs = pandas_transitions(con, analysis.settings, labels, groups, policy.min_frequency)
    plain = time.perf_counter() - started
    by = analysis.settings.compare_by
    mine = ours[ours["count"] > 0].rename(columns={by: "grp"}).sort_values(["grp", "transition"])
    theirs = theirs.sort_values(["grp", "transition"])
    same = mine.reset_index(drop=True).equals(theirs[["grp", "transition", "count"]].reset_index(drop=True))
    print(f"service paths (every table of the example): engine {engine:.1f} s")
    print(f"transitions alone in pandas: {plain:.1f} s; same counts: {'yes' if same else 'NO'}")
    print(f"ratio pandas / engine: {plain / engine:.1f}x (target: under 30 s and at least 5x)")


if __name__ == "__main__":
    main()
