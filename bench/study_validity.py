"""Benchmark: does the study recover the planted effect? Coverage over many synthetic seeds.

    python bench/study_validity.py [--seeds 100] [--persons 15000] [--clients-per-year 40] [--workers 2]
                                   [--methods nearest replace full] [--ratio K] [--no-refine] [--save rows.csv]

For each seed the synthetic Espoo is generated in memory and loaded into an in-memory DuckDB
with the pool's table and column names (pid = the normalised identity code, duplicate rows
dropped as the pool build does; rows whose code cannot link, such as wrong check characters or
temporary codes, do not meet the population register, exactly as quarantined rows are missing
from a built pool). The shipped example study is then analysed by the same code as
`safepool study run` (safepool.study.run.analyse: the same cohort SQL, matching and
estimators), narrowed to employment (the outcome with a planted truth) without subgroups, once
per matching method on the same cohort: nearest (the example's 1:1 without replacement,
refined), replace (nearest neighbour with replacement) and full (optimal full matching).
Printed per method and horizon: the mean estimate and the planted ATT (truth.json, the exact
sample ATT of each seed), bias, the coverage of the 95% intervals of the matched ATT, the mean
standard error beside the spread over seeds of the estimates (sd_estimates) and of their errors
against each seed's truth (sd_errors; honest intervals have mean_se close to sd_errors), the
naive comparison and its coverage, and the share of seeds whose pre-trend placebo test is not
rejected at 5%; then the time per analysis and in all, with the load average. Target: coverage of at least 0.93 at every horizon
for every method over 100 seeds.
"""

from __future__ import annotations

import argparse
import functools
import os
import time
import warnings
from collections.abc import Collection
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from importlib.resources import files
from pathlib import Path

import duckdb
import numpy as np
import pandas as pd

from safepool.disclosure import DisclosureRules
from safepool.pool.build import SQL_TYPES
from safepool.study.cohort import build_cohort, needed_columns
from safepool.study.run import EstimandWarning, StudyAnalysis, analyse
from safepool.study.studyfile import StudyFile, load_study
from safepool.synth import SyntheticEspoo, generate
from safepool.synth._catalogue import register_entries

OUTCOME = "employment"


@functools.cache
def example_study() -> StudyFile:
    return load_study(Path(str(files("safepool.examples").joinpath("study.yaml"))))


def validity_study(matching: dict[str, object] | None = None) -> StudyFile:
    """The shipped example study, narrowed to the outcome with a planted truth (employment) and
    without subgroups, so that many seeds run quickly; the cohort, matching and estimators are
    the example's own."""
    study = example_study()
    return study.model_copy(update={"outcomes": [OUTCOME], "subgroups": [], "subgroup_horizon": None,
                                    "matching": study.matching.model_copy(update=matching or {})})


def synthetic_pool(seed: int, persons: int, clients_per_year: int, tables: Collection[str] | None = None
                   ) -> tuple[duckdb.DuckDBPyConnection, dict]:
    """An in-memory pool of one synthetic Espoo (its registers named in `tables`, else all), and its
    planted truth."""
    synthetic = generate(persons=persons, seed=seed, clients_per_year=clients_per_year)
    return pool_of(synthetic, tables), synthetic.truth


def pool_of(synthetic: SyntheticEspoo, tables: Collection[str] | None = None) -> duckdb.DuckDBPyConnection:
    """The synthetic registers (those named in `tables`, else all) in an in-memory DuckDB under their pool
    names (pid = the code)."""
    con = duckdb.connect()
    for register in register_entries():
        if tables is not None and register.name not in tables:
            continue
        columns = ", ".join(f'CAST("{v.column}" AS {SQL_TYPES[v.type]}) AS "{v.name}"' for v in register.variables)
        con.register("source_rows", synthetic.tables[register.name])
        con.execute(f'CREATE TABLE "{register.name}" AS SELECT DISTINCT '
                    f'upper(trim("{register.identity_column}")) AS pid, {columns} FROM source_rows')
        con.unregister("source_rows")
    return con


METHODS: dict[str, dict[str, object]] = {
    "nearest": {},  # the example's own: 1:1 nearest neighbour without replacement, refined
    "replace": {"replace": True},  # nearest neighbour with replacement
    "full": {"method": "full"},  # optimal full matching
}


@dataclass(frozen=True)
class SeedJob:
    seed: int
    persons: int
    clients_per_year: int
    methods: tuple[str, ...] = ("nearest",)  # names in METHODS
    matching: tuple[tuple[str, object], ...] = ()  # overrides of the example's matching settings, for every method


def seed_rows(job: SeedJob) -> list[dict]:
    """One row per matching method and horizon: matched ATT and naive intervals against the planted ATT,
    and the placebo. Every method matches the same cohort of the same synthetic pool."""
    con, truth = synthetic_pool(job.seed, job.persons, job.clients_per_year, needed_columns(validity_study()))
    rows = []
    try:
        cohort = build_cohort(con, validity_study())
        for method in job.methods:
            study = validity_study({**METHODS[method], **dict(job.matching)})
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", EstimandWarning)  # the share matched is in the rows
                analysis = analyse(con, study, DisclosureRules().min_frequency, cohort=cohort)
            rows += method_rows(job.seed, method, study, truth, analysis)
    finally:
        con.close()
    return rows


def method_rows(seed: int, method: str, study: StudyFile, truth: dict, analysis: StudyAnalysis) -> list[dict]:
    horizons = truth["att"]["horizons"]
    att = analysis.effects.query("outcome == @OUTCOME and method == 'att'").set_index("horizon")
    naive = analysis.naive.query("outcome == @OUTCOME").set_index("horizon")
    placebo_p = float(analysis.placebo.query("outcome == @OUTCOME")["joint_p_value"].iloc[0])
    rows = []
    for h in study.horizons:
        planted = truth["att"][OUTCOME][horizons.index(h)]
        row = att.loc[h]
        rows.append({"method": method, "seed": seed, "horizon": h, "truth": planted, "clients": analysis.n_treated,
                     "matched": analysis.n_matched, "share_matched": analysis.share_matched,
                     "estimate": row["estimate"], "std_error": row["std_error"], "n_clusters": row["n_clusters"],
                     "covered": row["ci_low"] <= planted <= row["ci_high"],
                     "naive": naive.loc[h, "estimate"],
                     "naive_covered": naive.loc[h, "ci_low"] <= planted <= naive.loc[h, "ci_high"],
                     "placebo_p": placebo_p, "balanced": analysis.balance_passed, "seconds": analysis.seconds})
    return rows


def run_seeds(seeds: list[int], persons: int, clients_per_year: int, workers: int,
              methods: tuple[str, ...] = ("nearest",), matching: dict[str, object] | None = None) -> pd.DataFrame:
    overrides = tuple(sorted((matching or {}).items()))
    jobs = [SeedJob(seed, persons, clients_per_year, tuple(methods), overrides) for seed in seeds]
    if workers <= 1:
        results = map(seed_rows, jobs)
        return pd.DataFrame([row for rows in results for row in rows])
    with ProcessPoolExecutor(workers) as pool:
        return pd.DataFrame([row for rows in pool.map(seed_rows, jobs) for row in rows])


def summary(rows: pd.DataFrame) -> pd.DataFrame:
    """Per matching method and horizon: planted and estimated means, bias, the mean standard error
    beside the spread of the estimates and of their errors, interval coverage, the naive comparison,
    placebo not rejected."""
    grouped = rows.assign(error=rows["estimate"] - rows["truth"]).groupby(["method", "horizon"], sort=False)
    return pd.DataFrame({
        "seeds": grouped["seed"].nunique(),
        "truth": grouped["truth"].mean(),
        "estimate": grouped["estimate"].mean(),
        "bias": grouped["error"].mean(),
        "coverage": grouped["covered"].mean(),
        "mean_se": grouped["std_error"].mean(),
        "sd_estimates": grouped["estimate"].std(),
        "sd_errors": grouped["error"].std(),
        "naive": grouped["naive"].mean(),
        "naive_coverage": grouped["naive_covered"].mean(),
        "placebo_not_rejected": grouped["placebo_p"].apply(lambda p: (p >= 0.05).mean()),
    })


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=100)
    parser.add_argument("--first-seed", type=int, default=1)
    parser.add_argument("--persons", type=int, default=15_000)
    parser.add_argument("--clients-per-year", type=int, default=40)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--methods", nargs="+", choices=list(METHODS), default=list(METHODS),
                        help="matching methods (default: all three, each on the same cohorts)")
    parser.add_argument("--ratio", type=int, default=None, help="controls per client (default: the example's)")
    parser.add_argument("--no-refine", action="store_true", help="match without the balance refinement")
    parser.add_argument("--save", type=Path, default=None, help="write the per-seed rows to this CSV file")
    args = parser.parse_args()
    started, load_at_start = time.perf_counter(), os.getloadavg()[0]
    overrides = {**({"ratio": args.ratio} if args.ratio else {}), **({"refine": False} if args.no_refine else {})}
    rows = run_seeds(list(range(args.first_seed, args.first_seed + args.seeds)), args.persons,
                     args.clients_per_year, args.workers, tuple(args.methods), overrides)
    if args.save:
        rows.to_csv(args.save, index=False)
    per_seed = rows.groupby(["method", "seed"]).first()
    print(f"{args.seeds} seeds, {args.persons:,} persons, {args.clients_per_year} clients a year "
          f"(mean {per_seed['clients'].mean():.0f} clients), outcome {OUTCOME}")
    print(summary(rows).round(4).to_string())
    for method in args.methods:
        group = per_seed.loc[method]
        print(f"{method}: {group['matched'].mean():.0f} clients matched on average, balance passed in "
              f"{group['balanced'].mean():.0%} of seeds, {group['seconds'].mean():.1f} s per analysis")
    print(f"{time.perf_counter() - started:.0f} s in all on {args.workers} workers; load average "
          f"{load_at_start:.1f} at the start, {os.getloadavg()[0]:.1f} at the end")


if __name__ == "__main__":
    main()
