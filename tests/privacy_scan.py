"""Scanning what lies outside the steward zone for anything identifying.

Byte search alone proves little for compressed formats, so DuckDB and Parquet files are also
opened and every text value and column name is searched, and the text of PDFs is extracted.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

import ahocorasick
import duckdb

PROTECTED = ("steward", "registers")


def files_outside_steward_zone(root: Path) -> list[Path]:
    return [
        path for path in root.rglob("*")
        if path.is_file() and not path.is_symlink()
        and path.relative_to(root).parts[0] not in PROTECTED
    ]


def decoded_text(path: Path) -> str:
    """Every text value and name inside a DuckDB or Parquet file, or the text of a PDF, as one string."""
    if path.suffix == ".pdf":
        return subprocess.run(["pdftotext", str(path), "-"], capture_output=True, text=True, check=True).stdout
    con = duckdb.connect()
    try:
        if path.suffix == ".duckdb":
            con.execute(f"ATTACH '{path}' AS scanned (READ_ONLY)")
            tables = [r[0] for r in con.execute(
                "SELECT table_name FROM duckdb_tables() WHERE database_name = 'scanned'").fetchall()]
            relations = [f'scanned."{t}"' for t in tables]
        elif path.suffix == ".parquet":
            relations = [f"read_parquet('{path}')"]
        else:
            return ""
        parts = []
        for relation in relations:
            columns = [r[0] for r in con.execute(f"DESCRIBE SELECT * FROM {relation}").fetchall()]
            parts.extend(columns)
            for column in columns:
                values = con.execute(f'SELECT DISTINCT CAST("{column}" AS VARCHAR) FROM {relation}').fetchall()
                parts.extend(str(v[0]) for v in values)
        return "\n".join(parts)
    finally:
        con.close()


def find_identifiers(root: Path, identifying: list[str]) -> list[tuple[Path, str]]:
    """Every (file, string) where an identifying string appears outside the steward zone: in its
    bytes (UTF-8) or in its decoded text. All strings are searched in one pass over each (an
    Aho-Corasick automaton): one search per string over a pool file took half a minute."""
    needles = {s for s in identifying if s}
    in_bytes = _automaton({needle.encode("utf-8").decode("latin-1"): needle for needle in needles})
    in_text = _automaton({needle: needle for needle in needles})
    found = []
    for path in files_outside_steward_zone(root):
        seen = {needle for _, needle in in_bytes.iter(path.read_bytes().decode("latin-1"))}  # a byte a character
        seen |= {needle for _, needle in in_text.iter(decoded_text(path))}
        found += [(path, needle) for needle in sorted(seen)]
    return found


def _automaton(words: dict[str, str]) -> ahocorasick.Automaton:
    """Finds every key in a text, each found as its value."""
    automaton = ahocorasick.Automaton()
    for key, value in words.items():
        automaton.add_word(key, value)
    automaton.make_automaton()
    return automaton
