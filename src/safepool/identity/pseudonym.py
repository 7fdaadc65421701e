"""Keyed pseudonyms: HMAC-SHA256 of the normalised identity code under the permit's key.

The HMAC is written out from sha256 and the RFC 2104 pads, as a column expression over the
distinct codes, so that it is computed in bulk, once per distinct code. The expression runs in
Apache DataFusion rather than DuckDB: both take the same Arrow arrays without copying, but
DataFusion's sha256 uses the processor's SHA instructions where DuckDB's is portable C, which
makes the HMAC stage several times faster (bench/pool_build.py prints both). The pads enter
as binary literals of the expression API, never as SQL text, so no query text, plan or error
message can carry them; a failure is reported without the engine's message.

`pseudonym` is the same function in Python, used for single look-ups and to prove the two
agree. The pseudonym is the first 60 bits of the MAC as a number, stored as a BIGINT (people
see it as 19 digits: safepool.pool.pseudonyms): collisions are negligible at population scale
and the key, not the length, is what makes it one-way.
"""

from __future__ import annotations

import hashlib
import hmac

import duckdb
import numpy as np
import pyarrow as pa
from datafusion import SessionContext, col, lit
from datafusion import functions as fn

from safepool.pool.pseudonyms import BITS

BLOCK = 64
MAC_BYTES = 32
MAP_CODES = "pseudonym_map_codes"


class PseudonymisationError(RuntimeError):
    """The bulk HMAC failed; the engine's own message is withheld because it could show the pads."""


def rfc2104_pads(key: bytes) -> tuple[bytes, bytes]:
    """The inner and outer padded keys of HMAC-SHA256 (a key longer than a block is hashed first)."""
    block_key = (key if len(key) <= BLOCK else hashlib.sha256(key).digest()).ljust(BLOCK, b"\0")
    return bytes(b ^ 0x36 for b in block_key), bytes(b ^ 0x5C for b in block_key)


class Pseudonymiser:
    def __init__(self, key: bytes) -> None:
        if len(key) < 16:
            raise ValueError("a pseudonymisation key must be at least 16 bytes")
        self._key = key
        self._ipad, self._opad = rfc2104_pads(key)

    def __repr__(self) -> str:  # never show the key
        return "Pseudonymiser(<key hidden>)"

    def pseudonym(self, code: str) -> int:
        """The pseudonym of one code, as the pool stores it."""
        mac = hmac.new(self._key, code.encode("utf-8"), hashlib.sha256).digest()
        return int.from_bytes(mac[:8], "big") >> (64 - BITS)

    def create_map(self, con: duckdb.DuckDBPyConnection, target: str, codes_sql: str) -> int:
        """Create table `target(code, pid)` from the distinct codes that `codes_sql` selects; their number."""
        codes = con.sql(f"SELECT DISTINCT code FROM ({codes_sql}) WHERE code IS NOT NULL").to_arrow_table()
        con.register(MAP_CODES, self.pseudonym_table(codes.column("code")))
        try:
            con.execute(f"CREATE TABLE {target} AS SELECT code, pid FROM {MAP_CODES}")
        finally:
            con.unregister(MAP_CODES)
        return codes.num_rows

    def pseudonym_table(self, codes: pa.ChunkedArray | pa.Array) -> pa.Table:
        """(code, pid) for each code, in no particular order (the engine hashes in parallel)."""
        if len(codes) == 0:
            return pa.table({"code": pa.array([], pa.string()), "pid": pa.array([], pa.int64())})
        ipad, opad = (lit(pa.scalar(pad, pa.binary())) for pad in (self._ipad, self._opad))
        message = fn.arrow_cast(col("code"), pa.binary())
        mac = fn.sha256(fn.concat(opad, fn.sha256(fn.concat(ipad, message))))
        try:
            hashed = (SessionContext().from_arrow(pa.table({"code": codes.cast(pa.string())}))
                      .select(col("code"), mac.alias("mac")).to_arrow_table())
        except Exception:
            raise PseudonymisationError("computing the pseudonyms failed in the hashing engine") from None
        return pa.table({"code": hashed.column("code"), "pid": leading_bits(hashed.column("mac"))})


def leading_bits(macs: pa.ChunkedArray) -> pa.Array:
    """The first 60 bits of each MAC as a number (an int64 array, since 60 bits fit in a BIGINT).

    Vectorised: the leading 8 bytes of every MAC are read as one big-endian integer and shifted.
    """
    if macs.type != pa.binary():  # the engine may hand back large or view binary arrays
        macs = macs.cast(pa.binary())
    leading = np.concatenate([leading_bytes(chunk) for chunk in macs.chunks])
    numbers = leading.view(">u8").ravel() >> np.uint64(64 - BITS)
    return pa.array(numbers.astype(np.int64), pa.int64())


def leading_bytes(chunk: pa.BinaryArray) -> np.ndarray:
    """The first 8 bytes of each 32-byte value, read straight from the array's data buffer."""
    start = np.frombuffer(chunk.buffers()[1], dtype=np.int32)[chunk.offset]
    raw = np.frombuffer(chunk.buffers()[2], dtype=np.uint8)[start:start + MAC_BYTES * len(chunk)]
    return raw.reshape(-1, MAC_BYTES)[:, :8]
