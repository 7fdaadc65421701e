"""Benchmark: build the pool for synthetic Espoo, against the same work done the pandas way.

    python bench/pool_build.py [--persons 300000] [--seed 1]

Prints rows per second for each stage of the safepool build (read, validate, HMAC, write), the
rate of distinct codes pseudonymised per second (also on one million synthetic codes), and the
time of the way an analyst would write it in pandas (read every file, validate and hash row by
row, merge onto the population), with the ratio. Targets: whole build under 60 s on a 2-core
machine, at least 5x faster than pandas, at least 1 million distinct codes per second.
"""

from __future__ import annotations

import argparse
import hashlib
import hmac
import os
import sqlite3
import statistics
import tempfile
import time
from functools import partial
from pathlib import Path

import duckdb
import pandas as pd
from stdnum.fi import hetu

from safepool.identity.keystore import KeyStore
from safepool.identity.pseudonym import Pseudonymiser, rfc2104_pads
from safepool.pool.build import build_pool
from safepool.pool.scope import Scope, Window
from safepool.registers.catalogue import Register, SourceKind
from safepool.synth.load import synthesise
from safepool.workspace import Workspace


def rate(count: float, seconds: float) -> str:
    return f"{count / seconds:,.0f}/s" if seconds > 0 else "-"


def safepool_build(workspace: Workspace, registers: list[Register]) -> float:
    scope = Scope(permit="BENCH", window=Window(start="2009Q1", end="2024Q4"),
                  registers={r.name: "*" for r in registers})
    built = build_pool(workspace, scope)
    rows = built.stage_rows
    print(f"safepool build: {built.seconds:.1f} s for {rows['rows read']:,} rows from {len(registers)} registers")
    per_stage = [
        ("read (scoped; files in place)", built.stage_seconds["read"], rows["rows read"], "rows"),
        ("validate (stdnum, per distinct code)", built.stage_seconds["validate"], rows["codes validated"], "codes"),
        ("HMAC (DataFusion, per distinct code)", built.stage_seconds["hmac"], rows["codes pseudonymised"], "codes"),
        ("link and write (DuckDB)", built.stage_seconds["write"], rows["rows written"], "rows"),
    ]
    for name, seconds, count, unit in per_stage:
        print(f"  {name:40s} {seconds:6.2f} s  {count:>12,} {unit}  {rate(count, seconds)}")
    print(f"  distinct codes pseudonymised per second: {rate(rows['codes pseudonymised'], built.stage_seconds['hmac'])}")
    return built.seconds


def duckdb_sql_hmac(key: bytes, con: duckdb.DuckDBPyConnection, target: str, codes_sql: str) -> None:
    """The alternative: the same HMAC written in DuckDB SQL from its sha256 and the RFC 2104 pads."""
    ipad, opad = rfc2104_pads(key)
    mac = "sha256($opad || unhex(sha256($ipad || encode(code))))"
    con.execute(f"CREATE TABLE {target} AS SELECT code, CAST(CAST('0x' || substr({mac}, 1, 15) AS UBIGINT) "
                f"AS BIGINT) AS pid FROM (SELECT DISTINCT code FROM ({codes_sql}) WHERE code IS NOT NULL)",
                {"ipad": ipad, "opad": opad})


def hmac_million(repeats: int = 3) -> None:
    """One million distinct codes, safepool's way and the DuckDB-SQL way, alternating, same key."""
    con = duckdb.connect()
    con.execute("CREATE TABLE codes AS SELECT lpad(CAST(i AS VARCHAR), 6, '0') || '-' || "
                "lpad(CAST(i % 898 + 2 AS VARCHAR), 3, '0') || 'X' AS code FROM range(1000000) t(i)")
    key = os.urandom(32)
    pseudonymiser = Pseudonymiser(key)
    times: dict[str, list[float]] = {"safepool (DataFusion sha256)": [], "DuckDB SQL sha256": []}
    for run in range(repeats):
        for name, create in zip(times, (pseudonymiser.create_map, partial(duckdb_sql_hmac, key))):
            started = time.perf_counter()
            create(con, "m", "SELECT code FROM codes")
            times[name].append(time.perf_counter() - started)
            if run == 0:
                sample = dict(con.execute("SELECT code, pid FROM m USING SAMPLE 5 ROWS").fetchall())
                assert all(pseudonymiser.pseudonym(code) == pid for code, pid in sample.items()), name
            con.execute("DROP TABLE m")
    print(f"HMAC of 1,000,000 distinct codes, {repeats} runs each (the first includes the engine's start-up):")
    for name, seconds in times.items():
        print(f"  {name:30s} " + "  ".join(f"{s:.2f} s" for s in seconds)
              + f"   median {statistics.median(seconds):.2f} s = {rate(1_000_000, statistics.median(seconds))}")
    ours, theirs = (statistics.median(seconds) for seconds in times.values())
    print(f"  safepool is {theirs / ours:.1f}x faster than DuckDB SQL; target 1,000,000 codes/s: "
          f"{'met' if ours <= 1.0 else 'MISSED'} (median), first run "
          f"{rate(1_000_000, times['safepool (DataFusion sha256)'][0])}")


def read_register(workspace: Workspace, register: Register) -> pd.DataFrame:
    source = register.source
    columns = [register.identity_column] + [v.column for v in register.variables]
    if source.kind == SourceKind.parquet:
        return pd.read_parquet(workspace.source_path(source), columns=columns)
    if source.kind == SourceKind.csv:
        return pd.read_csv(workspace.source_path(source), usecols=columns, dtype={register.identity_column: str})
    with sqlite3.connect(workspace.source_path(source)) as con:
        return pd.read_sql(f'SELECT {", ".join(columns)} FROM "{source.table}"', con)


def pandas_way(workspace: Workspace, registers: list[Register], key: bytes) -> float:
    """What an analyst would write: read each file whole, check and hash every row, merge."""
    started = time.perf_counter()

    def pseudonym(code: object) -> int | None:
        if not isinstance(code, str):
            return None
        compact = "".join(code.split()).upper()
        if not hetu.is_valid(compact):
            return None
        mac = hmac.new(key, compact.encode(), hashlib.sha256).hexdigest()
        return int(mac[:15], 16)

    frames = {}
    for register in registers:
        frame = read_register(workspace, register)
        frame["pid"] = frame[register.identity_column].apply(pseudonym)
        frame = frame.drop(columns=[register.identity_column]).dropna(subset=["pid"]).drop_duplicates()
        frames[register.name] = frame
        print(f"  pandas: {register.name:20s} {len(frame):>12,} rows  {time.perf_counter() - started:6.1f} s")
    population = frames.pop("population")[["pid"]]
    for name, frame in frames.items():
        frames[name] = frame.merge(population, on="pid", how="left", indicator=True)
    seconds = time.perf_counter() - started
    print(f"pandas way: {seconds:.1f} s")
    return seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--persons", type=int, default=300_000)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--skip-pandas", action="store_true")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="safepool-bench-") as folder:
        root = Path(folder) / "ws"
        started = time.perf_counter()
        registers = synthesise(root, persons=args.persons, seed=args.seed)
        workspace = Workspace.open(root)
        print(f"synthetic Espoo, {args.persons:,} persons: generated and written in {time.perf_counter() - started:.1f} s")
        hmac_million()
        ours = safepool_build(workspace, registers)
        if args.skip_pandas:
            return
        key = KeyStore(workspace.steward_dir / "keys").get("BENCH")
        theirs = pandas_way(workspace, [r for r in registers if r.source.kind != SourceKind.postgresql], key)
        print(f"ratio: safepool is {theirs / ours:.1f}x faster than the pandas way "
              f"(target: build under 60 s, at least 5x)")


if __name__ == "__main__":
    main()
