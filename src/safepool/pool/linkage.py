"""The linkage report: how many rows and persons each register gave, linked and quarantined.

Counts only, never a code or a pseudonym: the report is shown to stewards and analysts alike
and sits beside the pool. It is what tells a steward that nothing was silently dropped: for
each register, rows read = rows linked + rows quarantined, by reason.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

import duckdb

from safepool.identity.resolver import LINKING
from safepool.registers.sources import quote_identifier


@dataclass
class RegisterLinkage:
    rows_read: int
    rows_linked: int
    rows_quarantined: int
    duplicate_rows_removed: int
    rows_in_pool: int
    persons: int
    rows_by_status: dict[str, int] = field(default_factory=dict)
    codes_by_status: dict[str, int] = field(default_factory=dict)


@dataclass
class LinkageReport:
    registers: dict[str, RegisterLinkage]
    persons_total: int
    persons_by_register_count: dict[int, int]
    persons_linked_across_registers: int
    persons_missing_from_population: dict[str, int]
    quarantined_rows_by_reason: dict[str, int]

    def to_dict(self) -> dict[str, object]:
        return asdict(self)


class LinkageTracker:
    """Collects per-register counts in the build connection while registers are linked."""

    def __init__(self, con: duckdb.DuckDBPyConnection) -> None:
        self.con = con
        self.names: list[str] = []
        con.execute("CREATE TEMP TABLE linkage_status (register VARCHAR, status VARCHAR, n_rows BIGINT, n_codes BIGINT)")

    def record(self, register: str, staged: str, raw_column: str) -> None:
        """Count the staged rows of `register` by the status of their code."""
        self.names.append(register)
        self.con.execute(
            "INSERT INTO linkage_status SELECT ?, s.status, count(*), count(DISTINCT coalesce(s.raw, chr(0))) "
            f"FROM {staged} r JOIN id_status s ON s.raw IS NOT DISTINCT FROM r.{raw_column} GROUP BY s.status",
            [register],
        )

    def report(self, pool_schema: str = "pool") -> LinkageReport:
        registers: dict[str, RegisterLinkage] = {}
        person_sets = []
        for name in self.names:
            table = f"{pool_schema}.{quote_identifier(name)}"
            by_status = {
                status: (rows, codes)
                for status, rows, codes in self.con.execute(
                    "SELECT status, n_rows, n_codes FROM linkage_status WHERE register = ? ORDER BY status", [name]
                ).fetchall()
            }
            rows_in_pool, persons = self.con.execute(f"SELECT count(*), count(DISTINCT pid) FROM {table}").fetchall()[0]
            linked = sum(rows for status, (rows, _) in by_status.items() if status in LINKING)
            read = sum(rows for rows, _ in by_status.values())
            registers[name] = RegisterLinkage(
                rows_read=read,
                rows_linked=linked,
                rows_quarantined=read - linked,
                duplicate_rows_removed=linked - rows_in_pool,
                rows_in_pool=rows_in_pool,
                persons=persons,
                rows_by_status={s: rows for s, (rows, _) in by_status.items()},
                codes_by_status={s: codes for s, (_, codes) in by_status.items()},
            )
            person_sets.append(f"SELECT DISTINCT pid, '{name}' AS register FROM {table}")
        union = " UNION ALL ".join(person_sets) or "SELECT NULL::VARCHAR AS pid, NULL::VARCHAR AS register WHERE false"
        self.con.execute(f"CREATE OR REPLACE TEMP TABLE person_registers AS {union}")
        counts = dict(
            self.con.execute(
                "SELECT k, count(*) FROM (SELECT pid, count(*) AS k FROM person_registers GROUP BY pid) GROUP BY k ORDER BY k"
            ).fetchall()
        )
        missing: dict[str, int] = {}
        if "population" in self.names:
            missing = dict(
                self.con.execute(
                    "SELECT register, count(*) FROM person_registers p WHERE register <> 'population' AND NOT EXISTS "
                    "(SELECT 1 FROM person_registers q WHERE q.pid = p.pid AND q.register = 'population') "
                    "GROUP BY register ORDER BY register"
                ).fetchall()
            )
        reasons = dict(
            self.con.execute(
                "SELECT status, sum(n_rows)::BIGINT FROM linkage_status WHERE status NOT IN "
                f"({', '.join(repr(s) for s in LINKING)}) GROUP BY status ORDER BY status"
            ).fetchall()
        )
        return LinkageReport(
            registers=registers,
            persons_total=sum(counts.values()),
            persons_by_register_count={int(k): int(v) for k, v in counts.items()},
            persons_linked_across_registers=sum(v for k, v in counts.items() if k >= 2),
            persons_missing_from_population=missing,
            quarantined_rows_by_reason=reasons,
        )
