"""Every DuckDB connection safepool opens prints no progress bar of the engine's own."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import duckdb

from safepool.duckdb_connection import open_duckdb

SOURCE = Path(__file__).resolve().parents[1] / "src" / "safepool"


SETTING = "SELECT current_setting('enable_progress_bar')"
PROBE = f"""
import duckdb, sys
from safepool.duckdb_connection import open_duckdb
print(duckdb.connect().execute("{SETTING}").fetchone()[0])
for opening in (lambda: open_duckdb(), lambda: open_duckdb(sys.argv[1]),
                lambda: open_duckdb(sys.argv[1], read_only=True, config={{"threads": 1}})):
    con = opening()
    print(con.execute("{SETTING}").fetchone()[0], con.execute("SELECT current_setting('threads')").fetchone()[0])
    con.close()
"""


def test_duckdb_would_print_its_bar_and_our_connections_do_not(tmp_path):
    """In a plain process (not under pytest, which makes DuckDB leave its bar off) the engine's
    default is a bar for every query over two seconds; safepool's connections have none."""
    duckdb.connect(str(tmp_path / "file.duckdb")).close()
    lines = subprocess.run([sys.executable, "-c", PROBE, str(tmp_path / "file.duckdb")], capture_output=True,
                           text=True, check=True).stdout.split("\n")
    assert lines[0] == "True"
    assert [line.split()[0] for line in lines[1:4]] == ["False"] * 3
    assert lines[3].split()[1] == "1"  # the caller's config is kept


def test_no_module_opens_duckdb_another_way():
    found = []
    for path in SOURCE.rglob("*.py"):
        if path.name == "duckdb_connection.py":
            continue
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Attribute) and node.attr == "connect" and \
                    isinstance(node.value, ast.Name) and node.value.id == "duckdb":
                found.append(f"{path.relative_to(SOURCE)}:{node.lineno}")
    assert found == []
