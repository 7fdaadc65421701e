"""Benchmark: the whole demo at growing sizes, timed stage by stage, so the growth is visible.

    python bench/study_scale.py [--persons 30000 100000 300000] [--seed 1] [--workspace DIR]

Each size runs `safepool demo` (safepool.demo.run_demo: the real path through the Session, in
a fresh workspace) in a fresh interpreter of its own, so that its peak memory is its own and the
time from the process's start counts what `safepool demo` pays before it starts (the
interpreter and the imports). The demo's progress messages mark the stages; per stage the
wall-clock time and the CPU time of the process are printed (on a shared machine the CPU time is
the steadier figure):
- synthesise: loading the analyses, the Session and the report while synthesis runs in a child
  process forked first (its CPU is not in this stage's figure but in the children's), and
  meanwhile: the demo users added, once synthesis has saved the catalogue the stewards assigned,
  both permits requested and approved, and each register checked by its holder's steward as
  soon as synthesis has written it; until synthesis ends,
- check: the registers not yet checked when synthesis ended, checked (two at a time), and the
  holders' releases,
- build: the pool build by the linkage authority (the registers released into the permit),
- cohort: opening the pool, the study's panel, risk sets and covariates (safepool.study.cohort),
- match: propensity score, matching and balance,
- effects: outcomes, censoring weights, effects, event study, placebo, subgroups, sensitivity
  and the naive comparison,
- report: the disclosure checks, the study report, its review and release,
- city: waiting, after the study's release, for the city's own use (its releases, pool and
  insight analyses), which the demo runs beside the study in a process of its own from the
  moment synthesis ends; the CPU time of the processes beside (synthesis and the city's) is
  printed apart, and their memory is in every stage's figure.
Memory is the proportional set size of the demo's process and all it started, summed: each page
counted once, which is the machine's memory the demo uses. The resident sizes summed are printed
beside it: they count twice the pages the demo's process shares with the city's, forked from it
(about 170 MB at 300,000 persons).
Also printed: clients, the 8-quarter employment effect with its interval, the largest memory in
each stage and the peak of the run, and the load average of the machine before and after (other
work on the machine inflates wall-clock times; the load says by how much to distrust them).
Targets: the 300,000-person demo in under 60 s with under 2 GB at peak, the default 30,000 in
under 30 s (end to end, the city's part included).
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import resource
import tempfile
import threading
import time
from pathlib import Path

from safepool.demo import CITY_WAITED

STAGES = ("synthesise", "check", "build", "cohort", "match", "effects", "report", "city")
COHORT = {"opening the pool", "entries", "panel", "risk sets", "covariates"}
MATCH = {"matching", "balance"}
EFFECTS = {"outcomes", "effects", "event study", "subgroups", "sensitivity", "naive comparison"}
REPORT = {"disclosure checks", "report"}


def descendants(pid: int) -> list[int]:
    """The process `pid` and every process below it (Linux /proc)."""
    found = [pid]
    for task in Path(f"/proc/{pid}/task").glob("*/children"):
        try:
            found += [grandchild for child in task.read_text().split() for grandchild in descendants(int(child))]
        except OSError:  # the task or the child ended meanwhile
            continue
    return found


def memory_mb() -> tuple[float, float]:
    """The memory of this process and of every process it started (the demo runs synthesis and the
    city's use in processes of their own), in MB (Linux /proc): the proportional set size summed
    (each page counted once, a page shared by n processes a 1/n share in each: the machine's memory
    the demo uses), and the resident sizes summed (a page shared with a forked child counted in
    both, so more than the demo uses)."""
    proportional = resident = 0
    for pid in descendants(os.getpid()):
        try:
            with open(f"/proc/{pid}/smaps_rollup", encoding="ascii") as rollup:
                for line in rollup:
                    if line.startswith("Rss:"):
                        resident += int(line.split()[1])
                    elif line.startswith("Pss:"):
                        proportional += int(line.split()[1])
        except OSError:
            continue
    return proportional / 1024, resident / 1024


class StageClock:
    """Wall and CPU seconds per stage, from the demo's progress messages (stage, register, rows), and
    the largest resident memory seen in each stage (sampled every 50 ms by a thread)."""

    def __init__(self) -> None:
        self.stage = "synthesise"
        self.wall = dict.fromkeys(STAGES, 0.0)
        self.cpu = dict.fromkeys(STAGES, 0.0)
        self.peak_mb = dict.fromkeys(STAGES, 0.0)
        self.resident_peak_mb = 0.0
        self._wall, self._cpu = time.perf_counter(), time.process_time()
        threading.Thread(target=self._sample, daemon=True).start()

    def _sample(self) -> None:
        while self.stage in self.peak_mb:
            stage = self.stage
            proportional, resident = memory_mb()
            self.peak_mb[stage] = max(self.peak_mb[stage], proportional)
            self.resident_peak_mb = max(self.resident_peak_mb, resident)
            time.sleep(0.05)

    def switch(self, stage: str) -> None:
        now_wall, now_cpu = time.perf_counter(), time.process_time()
        self.wall[self.stage] += now_wall - self._wall
        self.cpu[self.stage] += now_cpu - self._cpu
        self.stage, self._wall, self._cpu = stage, now_wall, now_cpu

    def __call__(self, stage: str, register: str, rows: int) -> None:
        if register == "synthetic Espoo":
            self.switch("check" if stage == "linked" else "synthesise")
        elif register == "impact study":
            if stage in COHORT:
                self.switch("cohort")
            elif stage in MATCH:
                self.switch("match")
            elif stage in EFFECTS:
                self.switch("effects")
            elif stage in REPORT:
                self.switch("report")
        elif register == "customer information":
            if stage == CITY_WAITED:
                self.switch("city")
        elif self.stage == "check":  # the pool build's first message (stage, register, rows)
            self.switch("build")


def one_size(persons: int, seed: int, folder: str, results: multiprocessing.Queue, launched: float) -> None:
    from safepool.demo import run_demo

    clock = StageClock()
    started = time.perf_counter()
    summary = run_demo(Path(folder) / f"demo-{persons}", persons=persons, seed=seed, progress=clock)
    clock.switch("done")
    total = time.perf_counter() - started
    end_to_end = time.time() - launched  # from the process's start, its interpreter and first imports included
    # the largest memory sampled (every 50 ms), never below this process's own largest resident size
    peak_mb = max(*clock.peak_mb.values(), resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)
    beside_cpu = resource.getrusage(resource.RUSAGE_CHILDREN)
    headline = next((s for s in summary if isinstance(s, str) and s.startswith("Headline")), "")
    study = next((s for s in summary if isinstance(s, str) and s.startswith("Impact study")), "")
    results.put({"persons": persons, "wall": clock.wall, "cpu": clock.cpu, "stage_mb": clock.peak_mb, "total": total,
                 "end_to_end": end_to_end, "peak_mb": peak_mb, "resident_peak_mb": clock.resident_peak_mb,
                 "beside_cpu": beside_cpu.ru_utime + beside_cpu.ru_stime,
                 "headline": headline, "study": study})


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--persons", type=int, nargs="+", default=[30_000, 100_000, 300_000])
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--workspace", type=Path, default=None, help="folder for the demo workspaces (default: temp)")
    args = parser.parse_args()
    context = multiprocessing.get_context("spawn")  # a fresh process per size: its own peak memory
    with tempfile.TemporaryDirectory(dir=args.workspace) as folder:
        rows = []
        for persons in args.persons:
            load_before = os.getloadavg()
            queue = context.Queue()
            process = context.Process(target=one_size, args=(persons, args.seed, folder, queue, time.time()))
            process.start()
            result = queue.get()
            process.join()
            result["load"] = (load_before[0], os.getloadavg()[0])
            rows.append(result)
            print(f"\n{persons:,} persons: {result['end_to_end']:.1f} s from the process's start ({result['total']:.1f} s "
                  f"in run_demo), peak {result['peak_mb']:,.0f} MB (resident sizes summed: "
                  f"{result['resident_peak_mb']:,.0f} MB), "
                  f"load average {result['load'][0]:.1f} before, {result['load'][1]:.1f} after")
            print(f"  {result['study']}")
            print(f"  {result['headline']}")
            for stage in STAGES:
                print(f"  {stage:12s} {result['wall'][stage]:7.1f} s wall  {result['cpu'][stage]:7.1f} s CPU  "
                      f"{result['stage_mb'][stage]:7,.0f} MB at most")
            print(f"  the processes beside (synthesis, the city's use): {result['beside_cpu']:.1f} s CPU")
    print("\nstage (wall s)  " + "  ".join(f"{r['persons']:>9,}" for r in rows))
    for stage in STAGES:
        print(f"{stage:15s} " + "  ".join(f"{r['wall'][stage]:9.1f}" for r in rows))
    print(f"{'run_demo':15s} " + "  ".join(f"{r['total']:9.1f}" for r in rows))
    print(f"{'from start':15s} " + "  ".join(f"{r['end_to_end']:9.1f}" for r in rows))
    print(f"{'peak MB':15s} " + "  ".join(f"{r['peak_mb']:9,.0f}" for r in rows))
    print(f"{'resident MB':15s} " + "  ".join(f"{r['resident_peak_mb']:9,.0f}" for r in rows))


if __name__ == "__main__":
    main()
