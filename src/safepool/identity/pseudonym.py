"""Keyed pseudonyms: HMAC-SHA256 of the normalised identity code under the permit's key.

The HMAC is written out in SQL from sha256 and the RFC 2104 pads so that DuckDB computes it in
bulk, once per distinct code, at over a million codes a second; `pseudonym` is the same function
in Python, used for single look-ups and to prove the two agree. The pseudonym is the first 60
bits of the MAC as a 19-digit number string: collisions are negligible at population scale and
the key, not the length, is what makes it one-way.
"""

from __future__ import annotations

import hashlib
import hmac

import duckdb

BLOCK = 64
DIGITS = 19
HEX_DIGITS = 15


class Pseudonymiser:
    def __init__(self, key: bytes) -> None:
        if len(key) < 16:
            raise ValueError("a pseudonymisation key must be at least 16 bytes")
        self._key = key
        block_key = key if len(key) <= BLOCK else hashlib.sha256(key).digest()
        block_key = block_key.ljust(BLOCK, b"\0")
        self._ipad = bytes(b ^ 0x36 for b in block_key)
        self._opad = bytes(b ^ 0x5C for b in block_key)

    def __repr__(self) -> str:  # never show the key
        return "Pseudonymiser(<key hidden>)"

    def pseudonym(self, code: str) -> str:
        mac = hmac.new(self._key, code.encode("utf-8"), hashlib.sha256).hexdigest()
        return str(int(mac[:HEX_DIGITS], 16)).zfill(DIGITS)

    def create_map(self, con: duckdb.DuckDBPyConnection, target: str, codes_sql: str) -> None:
        """Create table `target(code, pid)` from the distinct codes that `codes_sql` selects."""
        mac = "sha256($opad || unhex(sha256($ipad || encode(code))))"
        con.execute(
            f"CREATE TABLE {target} AS SELECT code, "
            f"lpad(CAST(CAST('0x' || substr({mac}, 1, {HEX_DIGITS}) AS UBIGINT) AS VARCHAR), {DIGITS}, '0') AS pid "
            f"FROM (SELECT DISTINCT code FROM ({codes_sql}) WHERE code IS NOT NULL)",
            {"ipad": self._ipad, "opad": self._opad},
        )
