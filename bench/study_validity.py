"""Benchmark: does the study recover the planted effect? Coverage over many synthetic seeds.

    python bench/study_validity.py [--seeds 100] [--persons 15000] [--clients-per-year 40]
                                   [--workers 2] [--ratio K] [--no-refine] [--method nearest|full] [--replace]

For each seed the synthetic Espoo is generated in memory and loaded into an in-memory DuckDB
with the pool's table and column names (pid = the normalised identity code, duplicate rows
dropped as the pool build does; rows whose code cannot link, such as wrong check characters or
temporary codes, do not meet the population register, exactly as quarantined rows are missing
from a built pool). The shipped example study is then analysed by the same code as
`safepool study run` (safepool.study.run.analyse: the same cohort SQL, matching and
estimators), narrowed to employment (the outcome with a planted truth) without subgroups.
Printed: per horizon, the mean estimate and the planted ATT (truth.json), bias, the spread
of the estimates over seeds (sd) beside the mean standard error the intervals imply
(mean_se; honest intervals have mean_se close to sd), the coverage of the 95% intervals of
the matched ATT and of the naive comparison, and the share of seeds whose pre-trend placebo
test is not rejected at 5%.
"""

from __future__ import annotations

import argparse
import time
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from importlib.resources import files
from pathlib import Path

import duckdb
import pandas as pd

from safepool.pool.build import SQL_TYPES
from safepool.study.run import analyse
from safepool.study.studyfile import StudyFile, load_study
from safepool.synth import SyntheticEspoo, generate
from safepool.synth._catalogue import register_entries

OUTCOME = "employment"
Z_95 = 1.959964  # half-width of a 95% interval in standard errors


def validity_study(matching: dict[str, object] | None = None) -> StudyFile:
    """The shipped example study, narrowed to the outcome with a planted truth (employment) and
    without subgroups, so that many seeds run quickly; the cohort, matching and estimators are
    the example's own."""
    study = load_study(Path(str(files("safepool.examples").joinpath("study.yaml"))))
    return study.model_copy(update={"outcomes": [OUTCOME], "subgroups": [], "subgroup_horizon": None,
                                    "matching": study.matching.model_copy(update=matching or {})})


def synthetic_pool(seed: int, persons: int, clients_per_year: int) -> tuple[duckdb.DuckDBPyConnection, dict]:
    """An in-memory pool of one synthetic Espoo, and its planted truth."""
    synthetic = generate(persons=persons, seed=seed, clients_per_year=clients_per_year)
    return pool_of(synthetic), synthetic.truth


def pool_of(synthetic: SyntheticEspoo) -> duckdb.DuckDBPyConnection:
    """The synthetic registers in an in-memory DuckDB under their pool names (pid = the code)."""
    con = duckdb.connect()
    for register in register_entries():
        columns = ", ".join(f'CAST("{v.column}" AS {SQL_TYPES[v.type]}) AS "{v.name}"' for v in register.variables)
        con.register("source_rows", synthetic.tables[register.name])
        con.execute(f'CREATE TABLE "{register.name}" AS SELECT DISTINCT '
                    f'upper(trim("{register.identity_column}")) AS pid, {columns} FROM source_rows')
        con.unregister("source_rows")
    return con


@dataclass(frozen=True)
class SeedJob:
    seed: int
    persons: int
    clients_per_year: int
    matching: tuple[tuple[str, object], ...] = ()  # overrides of the example's matching settings


def seed_rows(job: SeedJob) -> list[dict]:
    """One row per horizon: matched ATT and naive intervals against the planted ATT, and the placebo."""
    study = validity_study(dict(job.matching))
    con, truth = synthetic_pool(job.seed, job.persons, job.clients_per_year)
    try:
        analysis = analyse(con, study)
    finally:
        con.close()
    horizons = truth["att"]["horizons"]
    att = analysis.effects.query("outcome == @OUTCOME and method == 'att'").set_index("horizon")
    naive = analysis.naive.query("outcome == @OUTCOME").set_index("horizon")
    placebo_p = float(analysis.placebo.query("outcome == @OUTCOME")["joint_p_value"].iloc[0])
    rows = []
    for h in study.horizons:
        planted = truth["att"][OUTCOME][horizons.index(h)]
        rows.append({"seed": job.seed, "horizon": h, "truth": planted, "clients": analysis.n_treated,
                     "matched": analysis.n_matched,
                     "share_matched": analysis.share_matched, "estimate": att.loc[h, "estimate"],
                     "covered": att.loc[h, "ci_low"] <= planted <= att.loc[h, "ci_high"],
                     "half_width": (att.loc[h, "ci_high"] - att.loc[h, "ci_low"]) / 2,
                     "naive": naive.loc[h, "estimate"],
                     "naive_covered": naive.loc[h, "ci_low"] <= planted <= naive.loc[h, "ci_high"],
                     "placebo_p": placebo_p, "balanced": analysis.balance_passed, "seconds": analysis.seconds})
    return rows


def run_seeds(seeds: list[int], persons: int, clients_per_year: int, workers: int,
              matching: dict[str, object] | None = None) -> pd.DataFrame:
    overrides = tuple(sorted((matching or {}).items()))
    jobs = [SeedJob(seed, persons, clients_per_year, overrides) for seed in seeds]
    if workers <= 1:
        results = map(seed_rows, jobs)
        return pd.DataFrame([row for rows in results for row in rows])
    with ProcessPoolExecutor(workers) as pool:
        return pd.DataFrame([row for rows in pool.map(seed_rows, jobs) for row in rows])


def summary(rows: pd.DataFrame) -> pd.DataFrame:
    """Per horizon: planted and estimated means, bias, interval coverage, placebo not rejected."""
    grouped = rows.groupby("horizon")
    return pd.DataFrame({
        "seeds": grouped["seed"].nunique(),
        "truth": grouped["truth"].mean(),
        "estimate": grouped["estimate"].mean(),
        "bias": grouped.apply(lambda g: (g["estimate"] - g["truth"]).mean(), include_groups=False),
        "sd": grouped["estimate"].std(),
        "mean_se": grouped["half_width"].mean() / Z_95,
        "coverage": grouped["covered"].mean(),
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
    parser.add_argument("--ratio", type=int, default=None, help="controls per client (default: the example's)")
    parser.add_argument("--no-refine", action="store_true", help="match without the balance refinement")
    parser.add_argument("--method", choices=["nearest", "full"], default=None,
                        help="matching method (default: the example's, nearest)")
    parser.add_argument("--replace", action="store_true", help="nearest-neighbour matching with replacement")
    args = parser.parse_args()
    started = time.perf_counter()
    rows = run_seeds(list(range(args.first_seed, args.first_seed + args.seeds)), args.persons,
                     args.clients_per_year, args.workers,
                     {**({"ratio": args.ratio} if args.ratio else {}), **({"refine": False} if args.no_refine else {}),
                      **({"method": args.method} if args.method else {}), **({"replace": True} if args.replace else {})})
    print(f"{args.seeds} seeds, {args.persons:,} persons, {args.clients_per_year} clients a year "
          f"(mean {rows.groupby('seed')['clients'].first().mean():.0f} clients, "
          f"{rows.groupby('seed')['matched'].first().mean():.0f} matched), outcome {OUTCOME}")
    print(summary(rows).round(4).to_string())
    print(f"balance passed in {rows.groupby('seed')['balanced'].first().mean():.0%} of seeds; "
          f"{rows.groupby('seed')['seconds'].first().mean():.1f} s per study; {time.perf_counter() - started:.0f} s in all")


if __name__ == "__main__":
    main()
