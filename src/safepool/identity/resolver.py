"""Per-build identity resolution: each distinct raw code is checked and pseudonymised once.

The resolver keeps two temporary tables in the steward's build connection: `id_status` (raw
code as written, normalised code, status) and `id_map` (normalised code, pseudonym). Both live
only in that connection's memory (spilling, if at all, under steward/tmp) and are never written
into the pool. At the end of a build `ledger_keys` gives each pseudonym its ledger key.
"""

from __future__ import annotations

import time

import duckdb
import numpy as np

from safepool.identity.hetu import CodeStatus, classify_array
from safepool.identity.pseudonym import Pseudonymiser

LINKING = tuple(status.value for status in CodeStatus if status.links)


class IdentityResolver:
    def __init__(self, con: duckdb.DuckDBPyConnection, pseudonymiser: Pseudonymiser) -> None:
        self.con = con
        self.pseudonymiser = pseudonymiser
        self.seconds = {"validate": 0.0, "hmac": 0.0}
        self.codes = {"validated": 0, "pseudonymised": 0}
        con.execute("CREATE TEMP TABLE id_status (raw VARCHAR, code VARCHAR, status VARCHAR)")
        con.execute("CREATE TEMP TABLE id_map (code VARCHAR, pid BIGINT)")

    def resolve(self, relation: str, column: str) -> None:
        """Classify and pseudonymise the codes in `relation.column` not seen earlier in this build."""
        unseen = self.con.sql(
            f"SELECT DISTINCT r.{column} AS raw FROM {relation} r "
            f"WHERE NOT EXISTS (SELECT 1 FROM id_status s WHERE s.raw IS NOT DISTINCT FROM r.{column})"
        ).to_arrow_table()
        if unseen.num_rows == 0:
            return
        started = time.perf_counter()
        classified = classify_array(unseen.column("raw").combine_chunks())
        self.con.register("id_classified", classified)
        try:
            self.con.execute("INSERT INTO id_status SELECT raw, code, status FROM id_classified")
            self.codes["validated"] += unseen.num_rows
            self.seconds["validate"] += time.perf_counter() - started
            started = time.perf_counter()
            # Only this batch can hold codes without a pseudonym yet; a new spelling may still
            # normalise to a code already mapped, hence the join, written so that DuckDB builds
            # its hash table on the small batch rather than on the whole map.
            new_codes = self.pseudonymiser.create_map(
                self.con,
                "id_map_new",
                "SELECT c.code FROM id_classified c LEFT JOIN id_map m ON m.code = c.code "
                "WHERE c.code IS NOT NULL AND m.code IS NULL",
            )
            self.seconds["hmac"] += time.perf_counter() - started
        finally:
            self.con.unregister("id_classified")
        self.codes["pseudonymised"] += new_codes
        if new_codes:
            self.con.execute("INSERT INTO id_map SELECT code, pid FROM id_map_new")
        self.con.execute("DROP TABLE id_map_new")

    def ledger_keys(self, ledger: Pseudonymiser) -> tuple[np.ndarray, np.ndarray]:
        """Each pseudonym of this build and its ledger key: the code's pseudonym under the
        workspace's ledger secret (`ledger`), the same in every permit (`safepool.pool.ledger_keys`)."""
        codes = self.con.sql("SELECT code FROM id_map").to_arrow_table()
        self.con.register("id_ledger", ledger.pseudonym_table(codes.column("code")))
        try:
            found = self.con.execute("SELECT m.pid, l.pid AS ledger_key FROM id_map m JOIN id_ledger l USING (code)"
                                     ).fetchnumpy()
        finally:
            self.con.unregister("id_ledger")
        return np.asarray(found["pid"]), np.asarray(found["ledger_key"])

    def linked_rows_sql(self, relation: str, column: str, select: str) -> str:
        """Rows of `relation` whose code links, with `pid` and the `select` expressions."""
        statuses = ", ".join(f"'{s}'" for s in LINKING)
        return (
            f"SELECT m.pid, {select} FROM {relation} r "
            f"JOIN id_status s ON s.raw = r.{column} AND s.status IN ({statuses}) "
            f"JOIN id_map m ON m.code = s.code"
        )

    def replace_with_pseudonyms(self, relation: str, columns: list[str]) -> None:
        """Replace each code in `relation`'s `columns` (another person's identity code, such as a
        parent's) with that person's pseudonym; a code that does not link becomes NULL."""
        if not columns:
            return
        statuses = ", ".join(f"'{s}'" for s in LINKING)
        joins, replaced = [], []
        for i, column in enumerate(columns):
            self.resolve(relation, column)
            joins.append(f"LEFT JOIN id_status s{i} ON s{i}.raw = r.{column} AND s{i}.status IN ({statuses}) "
                         f"LEFT JOIN id_map m{i} ON m{i}.code = s{i}.code")
            replaced.append(f"m{i}.pid AS {column}")
        self.con.execute(f"CREATE OR REPLACE TEMP TABLE {relation} AS "
                         f"SELECT r.* REPLACE ({', '.join(replaced)}) FROM {relation} r {' '.join(joins)}")

    def quarantined_rows_sql(self, relation: str, column: str) -> str:
        """Rows whose code does not link, with the reason; for the steward zone only."""
        statuses = ", ".join(f"'{s}'" for s in LINKING)
        return (
            f"SELECT r.*, s.status AS reason FROM {relation} r "
            f"JOIN id_status s ON s.raw IS NOT DISTINCT FROM r.{column} "
            f"WHERE s.status NOT IN ({statuses})"
        )
