"""Reading an output file (CSV or Parquet) as a table before it is checked.

An output that arrives as a file may be anything; this turns "not a table" into one clear
error that names the file, never a parser traceback and never a silent pass.
"""

from __future__ import annotations

import csv
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from safepool.disclosure.cells import DisclosureInputError

_SNIFF_BYTES = 64 * 1024


def load_table(path: Path) -> pd.DataFrame:
    """The table in a .csv or .parquet output file; DisclosureInputError if it is not one."""
    path = Path(path)
    if not path.is_file():
        raise DisclosureInputError(f"output file {path}: not found")
    suffix = path.suffix.lower()
    if suffix == ".parquet":
        table = _read_parquet(path)
    elif suffix == ".csv":
        table = _read_csv(path)
    else:
        raise DisclosureInputError(f"output file {path}: not a table (expected .csv or .parquet, got '{suffix}')")
    if table.columns.empty or len(table) == 0:
        raise DisclosureInputError(f"output file {path}: not a table (no columns or no rows)")
    return table


def _read_parquet(path: Path) -> pd.DataFrame:
    try:
        return pq.read_table(path).to_pandas()
    except (pa.ArrowException, OSError) as exc:
        raise DisclosureInputError(f"output file {path}: not a Parquet table ({type(exc).__name__})") from None


def _read_csv(path: Path) -> pd.DataFrame:
    try:
        head = path.read_bytes()[:_SNIFF_BYTES].decode("utf-8")
    except UnicodeDecodeError as exc:
        raise DisclosureInputError(f"output file {path}: not a table (not UTF-8 text at byte {exc.start})") from None
    lines = [line for line in head.splitlines() if line.strip()]
    if len(lines) < 2:
        raise DisclosureInputError(f"output file {path}: not a table (needs a header line and at least one row)")
    try:
        table = pd.read_csv(path)
    except (pd.errors.ParserError, pd.errors.EmptyDataError, csv.Error, ValueError) as exc:
        raise DisclosureInputError(f"output file {path}: not a CSV table ({type(exc).__name__})") from None
    if len(table.columns) < 2:
        raise DisclosureInputError(f"output file {path}: not a table (only one column; a table has labels and values)")
    return table
