"""Benchmark: the disclosure check and suppression of large tables, against the bare rule in NumPy.

    python bench/disclosure.py [--rows 100] [--cols 50] [--repeat 5]

Times (best of --repeat) `check` of a frequency table of rows x cols cells and of a magnitude
table of as many cells (frequency, dominance and p% rules, every finding with its cells'
labels), and `suppress` of the frequency table with its totals (secondary suppression included),
each beside the minimum-frequency rule alone as a NumPy mask over the same counts, measured in
the same run. Targets: a check of 5,000 cells well under a second (0.5 s), their suppression in
seconds (10 s). These were timed tests until 4 December, when a test run on a loaded machine
stalled one check past its limit; timings belong here, and the tests keep what the checks find.
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable
from typing import Any

import numpy as np
import pandas as pd

from safepool.disclosure import DisclosureRules, FrequencyTable, MagnitudeTable, check, suppress

RULES = DisclosureRules()


def frequency_table(rows: int, cols: int, seed: int = 7) -> FrequencyTable:
    """Counts 0-59 of every area x age group (many below the minimum frequency)."""
    rng = np.random.default_rng(seed)
    cells = pd.DataFrame({"area": np.repeat([f"r{k}" for k in range(rows)], cols),
                          "age": np.tile([f"c{k}" for k in range(cols)], rows),
                          "count": rng.integers(0, 60, rows * cols)})
    return FrequencyTable("large", cells, ["area", "age"])


def magnitude_table(cells: int, seed: int = 3) -> MagnitudeTable:
    """Sums of 1-39 persons whose two largest contributions are a third of each sum."""
    rng = np.random.default_rng(seed)
    tops = [sorted(rng.uniform(0, 100, 2), reverse=True) for _ in range(cells)]
    frame = pd.DataFrame({"g": np.arange(cells), "value": [sum(t) * 3 for t in tops],
                          "n": rng.integers(1, 40, cells), "top": tops, "abs_total": [sum(t) * 3 for t in tops]})
    return MagnitudeTable("large sums", frame, ["g"], "sum")


def best(work: Callable[[], Any], repeat: int) -> float:
    """The shortest of `repeat` runs of `work`, in seconds."""
    times = []
    for _ in range(repeat):
        started = time.perf_counter()
        work()
        times.append(time.perf_counter() - started)
    return min(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=100)
    parser.add_argument("--cols", type=int, default=50)
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    counts = frequency_table(args.rows, args.cols)
    sums = magnitude_table(len(counts.cells))
    bare_counts = counts.cells["count"].to_numpy()
    bare_persons = sums.cells["n"].to_numpy()
    rows = [("check, frequency", lambda: check(counts, RULES), bare_counts, 0.5),
            ("check, magnitude", lambda: check(sums, RULES), bare_persons, 0.5),
            ("suppress, frequency + totals", lambda: suppress(counts, RULES), bare_counts, 10.0)]
    print(f"{len(counts.cells):,} cells; best of {args.repeat} runs")
    print(f"{'step':30s} {'safepool':>10s} {'bare':>9s} {'ratio':>7s} {'target':>7s}")
    for name, work, quantity, target in rows:
        took = best(work, args.repeat)
        bare = best(lambda q=quantity: (q > 0) & (q < RULES.min_frequency), args.repeat)
        verdict = "met" if took < target else "MISSED"
        print(f"{name:30s} {took * 1000:8.1f}ms {bare * 1e6:7.1f}us {took / bare:6.0f}x "
              f"{target:5.1f} s {verdict}")


if __name__ == "__main__":
    main()
