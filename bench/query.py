"""Benchmark: checked aggregate queries through the gateway against the same aggregate in bare DuckDB.

    python bench/query.py [--persons 300000] [--seed 1] [--workspace DIR] [--repeat 3] [--rounds 3]
                          [--history 0]

Makes (or reuses, with --workspace) a synthetic Espoo of `--persons` persons with the demo's
users, permit and pool, then asks one-way and two-way questions as the analyst through the
Session (permit check, model check, budget, per-person contributions, disclosure checks,
suppression, differencing ledger, output record and audit), and the same aggregate as plain
SQL on the pool file in the same run. Prints each query's time when first asked and when asked
again (the ledger already holds its cells), bare DuckDB's median, and the p50 over the questions
of each against bare DuckDB's, with the gateway's CPU time (this process's, DuckDB's threads
included: less inflated by other work on the machine than wall time), and the load average
(figures taken under load are inflated). Target: p50 under 300 ms, within 10x of bare DuckDB.

A first ask is one only on a workspace whose permit has not been asked these questions yet. So
the questions are asked in a fresh copy of a workspace reused with --workspace, which stays as
it was prepared, and with `--rounds N` (N > 1) in N fresh copies of the workspace, one after the
other in this process; each question's times are then the medians over the rounds: a first
ask's time moves by a third from one run to the next on a small shared machine. What the first query of a process imports (the query engine,
sqlglot's DuckDB dialect: 0.1-0.2 s, once per process) is loaded and timed before the
questions, and printed apart; the first question of each round still opens its pool and creates
the permit's ledger. With `--history N` each round first asks N other questions (one quarter's
employed persons by sex or mean earnings by main activity, quarters from 2019 on): the ten are
then asked of a ledger that already holds N answers, as in a workspace in use, and the time of
the last five of those (their median) is printed.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import duckdb
import yaml

from safepool.demo import DEMO_PERMIT, LINKAGE_AUTHORITY
from safepool.demo_people import People, make_users, release_data, request_approved
from safepool.pool.access import POOL_FILE
from safepool.session import connect
from safepool.synth.load import synthesise
from safepool.workspace import Workspace

# (what, gateway SQL, the same aggregate in bare DuckDB)
QUERIES = [
    ("persons by sex",
     "SELECT sex, count(DISTINCT pid) AS n FROM population GROUP BY sex",
     "SELECT sex, count(DISTINCT pid) FROM population GROUP BY sex"),
    ("persons by native language",
     "SELECT native_language, count(DISTINCT pid) AS n FROM population GROUP BY native_language",
     "SELECT native_language, count(DISTINCT pid) FROM population GROUP BY native_language"),
    ("persons by sex x marital status",
     "SELECT sex, marital_status, count(DISTINCT pid) AS n FROM population GROUP BY 1, 2",
     "SELECT sex, marital_status, count(DISTINCT pid) FROM population GROUP BY 1, 2"),
    ("mean earnings by main activity, one quarter",
     "SELECT main_activity, avg(earnings) AS m FROM employment WHERE quarter = '2023Q4' GROUP BY 1",
     "SELECT main_activity, avg(earnings) FROM employment WHERE quarter = '2023Q4' GROUP BY 1"),
    ("sum of benefits by sex, one quarter",
     "SELECT sex, sum(amount) AS s FROM benefits JOIN population USING (pid) WHERE month = '2023Q4' GROUP BY 1",
     "SELECT sex, sum(amount) FROM benefits JOIN population USING (pid) WHERE month BETWEEN 202310 AND 202312 "
     "GROUP BY 1"),
    ("persons by earned income band",
     "SELECT bin(earned_income) AS b, count(DISTINCT pid) AS n FROM income_taxes WHERE tax_year = 2023 GROUP BY b",
     "SELECT floor(earned_income / 10000), count(DISTINCT pid) FROM income_taxes WHERE tax_year = 2023 GROUP BY 1"),
    ("mean earned income by sex x native language",
     "SELECT sex, native_language, avg(earned_income) AS m FROM income_taxes JOIN population USING (pid) "
     "WHERE tax_year = 2023 GROUP BY 1, 2",
     "SELECT sex, native_language, avg(earned_income) FROM income_taxes JOIN population USING (pid) "
     "WHERE tax_year = 2023 GROUP BY 1, 2"),
    ("median earned income by sex",
     "SELECT sex, median(earned_income) AS q FROM income_taxes JOIN population USING (pid) "
     "WHERE tax_year = 2023 GROUP BY sex",
     "SELECT sex, median(earned_income) FROM income_taxes JOIN population USING (pid) "
     "WHERE tax_year = 2023 GROUP BY sex"),
    ("visits by sex x native language, one quarter",
     "SELECT sex, native_language, count(*) AS n FROM social_health JOIN population USING (pid) "
     "WHERE visit_date >= DATE '2023-10-01' AND visit_date < DATE '2024-01-01' GROUP BY 1, 2",
     "SELECT sex, native_language, count(*) FROM social_health JOIN population USING (pid) "
     "WHERE visit_date >= DATE '2023-10-01' AND visit_date < DATE '2024-01-01' GROUP BY 1, 2"),
    ("persons by permit grounds",
     "SELECT grounds, count(DISTINCT pid) AS n FROM residence_permits GROUP BY grounds",
     "SELECT grounds, count(DISTINCT pid) FROM residence_permits GROUP BY grounds"),
]


def prepare(root: Path, persons: int, seed: int) -> dict[str, str]:
    """A workspace with synthetic Espoo, the demo's users and permit, and the permit's pool built
    (through the Session, as the demo does it)."""
    if (root / "steward" / "demo-users.yaml").exists():
        return yaml.safe_load((root / "steward" / "demo-users.yaml").read_text())
    Workspace.init(root)
    started = time.perf_counter()
    synthesise(root, persons=persons, seed=seed)
    passwords = make_users(Workspace.open(root))
    with People(root, passwords) as person:
        request_approved(person, "permit-request.yaml", DEMO_PERMIT)
        release_data(person)  # each holder releases its registers
        steward = person[LINKAGE_AUTHORITY].permit(DEMO_PERMIT)
        steward.build()
        steward.advance("analytic_review", "benchmark")
    print(f"prepared {persons:,} persons in {time.perf_counter() - started:.0f} s")
    return passwords


def warm_up() -> float:
    """Load what the gateway imports on the first query of a process (the query engine and
    sqlglot's DuckDB dialect, about 0.2 s): a process pays it once, so it is timed apart."""
    started = time.perf_counter()
    import sqlglot

    import safepool.query.engine  # noqa: F401
    from safepool.query.sql_syntax import DIALECT

    sqlglot.parse_one("SELECT 1", read=DIALECT)
    return time.perf_counter() - started


@dataclass
class Asked:
    """One question's times in one round: its first ask and the asks again (wall and CPU seconds),
    and bare DuckDB's."""

    first: float
    again: list[float]
    bare: list[float]
    cpu_first: float
    cpu_again: list[float]
    shown: str


def history(count: int) -> list[str]:
    """`count` questions the ten do not ask (persons employed by sex and mean earnings by main
    activity, one quarter each, from 2019Q1 on; 2023Q4 is the ten's), to fill a ledger first."""
    quarters = [f"{year}Q{quarter}" for year in range(2019, 2024) for quarter in range(1, 5)][:-1]
    asked = [sql for quarter in quarters for sql in (
        f"SELECT sex, count(DISTINCT pid) AS n FROM employment JOIN population USING (pid) "
        f"WHERE quarter = '{quarter}' GROUP BY 1",
        f"SELECT main_activity, avg(earnings) AS m FROM employment WHERE quarter = '{quarter}' GROUP BY 1")]
    if not 0 <= count <= len(asked):
        raise SystemExit(f"--history: 0 to {len(asked)} earlier questions, not {count}")
    return asked[:count]


def ask_round(root: Path, password: str, repeat: int, answers: list[dict[str, object]], round_number: int,
              earlier: list[str]) -> list[Asked]:
    """Every question asked `repeat` times in the workspace at `root` (the first ask is a first ask
    only when its permit has not been asked these questions), each followed by the same aggregate
    in bare DuckDB on a copy of the pool file; the `earlier` questions are asked before them, so
    that the ledger holds their answers."""
    analyst = connect(root, user="vtt.analyst1", password=password).permit(DEMO_PERMIT)
    if earlier:
        started = time.perf_counter()
        times = [_timed(analyst.query, sql) for sql in earlier]
        print(f"  {len(earlier)} earlier questions first: {time.perf_counter() - started:.1f} s, the last "
              f"{len(times[-5:])} {1000 * statistics.median(times[-5:]):.0f} ms each (median)")
    copy = root.parent / "bare-pool.duckdb"  # its own file: one process opens a database with one configuration
    shutil.copyfile(Workspace.open(root).pool_dir / DEMO_PERMIT / POOL_FILE, copy)
    asked = []
    with duckdb.connect(str(copy), read_only=True) as bare:
        for what, sql, plain in QUERIES:
            ours, cpu, theirs = [], [], []
            for ask in range(repeat):
                started, processed = time.perf_counter(), time.process_time()
                answer = analyst.query(sql)
                ours.append(time.perf_counter() - started)
                cpu.append(time.process_time() - processed)
                answers.append({"round": round_number, "query": what, "ask": ask, "note": answer.note,
                                "table": json.loads(answer.table.to_json(orient="split", double_precision=15))})
                started = time.perf_counter()
                bare.execute(plain).fetchall()
                theirs.append(time.perf_counter() - started)
            shown = f"{int((answer.table['status'] == 'shown').sum())}/{len(answer.table)}"
            asked.append(Asked(ours[0], ours[1:], theirs, cpu[0], cpu[1:], shown))
    return asked


def _timed(ask: Callable[[str], object], sql: str) -> float:
    """The seconds one question takes."""
    started = time.perf_counter()
    ask(sql)
    return time.perf_counter() - started


def positive(text: str) -> int:
    """A whole number of at least one, for the counts on the command line."""
    number = int(text)
    if number < 1:
        raise argparse.ArgumentTypeError(f"must be 1 or more, not {number}")
    return number


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--persons", type=int, default=300_000)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--workspace", type=Path, default=None, help="reuse (or make) this workspace")
    parser.add_argument("--repeat", type=positive, default=3, help="times each query is asked both ways")
    parser.add_argument("--rounds", type=positive, default=3,
                        help="ask every question in this many fresh copies of the workspace and take the median "
                             "of each question's times (the machine's speed changes from minute to minute: one "
                             "round's p50 moved by a fifth from run to run, 4 December)")
    parser.add_argument("--history", type=int, default=0,
                        help="ask this many other questions first (at most 38), so that the ten are asked of a "
                             "ledger that holds their answers (a first ask's time grows with what it holds)")
    parser.add_argument("--answers", type=Path, default=None,
                        help="write every answer (table, note) here as JSON, to compare two runs")
    args = parser.parse_args()
    root = args.workspace or Path(tempfile.mkdtemp(prefix="safepool-bench-query-")) / "ws"
    password = prepare(root, args.persons, args.seed)["vtt.analyst1"]
    print(f"imports of the first query of a process: {1000 * warm_up():.0f} ms\n"
          "  (once per process; not in the figures)")
    answers: list[dict[str, object]] = []
    earlier = history(args.history)
    rounds: list[list[Asked]] = []
    for number in range(args.rounds):
        if args.rounds == 1 and args.workspace is None:  # a workspace of its own, asked once
            rounds.append(ask_round(root, password, args.repeat, answers, number, earlier))
            continue
        with tempfile.TemporaryDirectory(prefix="round-", dir=root.parent) as folder:
            shutil.copytree(root, Path(folder) / "ws", symlinks=True)  # the workspace as prepared: every ask first
            os.sync()  # the copy written out first: its writing back would otherwise run beside the questions
            rounds.append(ask_round(Path(folder) / "ws", password, args.repeat, answers, number, earlier))
        print(f"round {number + 1}: p50 first asked {1000 * statistics.median(a.first for a in rounds[-1]):.0f} ms")
    report(rounds)
    if args.answers:
        args.answers.write_text(json.dumps(answers, indent=1))
    print("load average (1, 5, 15 min): " + ", ".join(f"{load:.1f}" for load in os.getloadavg()))


def report(rounds: list[list[Asked]]) -> None:
    """Per question the median over the rounds of its first ask, of its asks again and of bare
    DuckDB; then the p50 over the questions of each, and the ratios."""
    median = statistics.median
    first, again, bare, cpu_first, cpu_again = [], [], [], [], []
    print(f"{'query':44s} {'first':>6s} {'again':>6s} {'bare':>6s} {'ratio':>6s} shown")
    for (what, _, _), asked in zip(QUERIES, zip(*rounds)):
        first.append(median(a.first for a in asked))
        again.append(median([t for a in asked for t in a.again] or [a.first for a in asked]))
        bare.append(median(t for a in asked for t in a.bare))
        cpu_first.append(median(a.cpu_first for a in asked))
        cpu_again.append(median([t for a in asked for t in a.cpu_again] or [a.cpu_first for a in asked]))
        print(f"{what[:44]:44s} {1000 * first[-1]:4.0f}ms {1000 * again[-1]:4.0f}ms {1000 * bare[-1]:4.0f}ms "
              f"{first[-1] / bare[-1]:5.1f}x {asked[-1].shown}")
    bare_p50 = median(bare)
    rounds_note = f"; medians of {len(rounds)} rounds" if len(rounds) > 1 else ""
    for name, times, cpu in (("first asked", first, cpu_first), ("asked again", again, cpu_again)):
        p50 = median(times)
        print(f"p50 {name} ({len(times)} questions{rounds_note}): gateway {1000 * p50:.0f} ms\n"
              f"  (CPU {1000 * median(cpu):.0f} ms), bare DuckDB {1000 * bare_p50:.1f} ms, ratio {p50 / bare_p50:.1f}x")
    print("target: p50 under 300 ms and within 10x of bare DuckDB")


if __name__ == "__main__":
    main()
