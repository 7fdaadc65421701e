"""The linkage report: how many rows and persons each register gave, linked and quarantined.

Counts only, never a code or a pseudonym: the report sits beside the pool, and the whole of it is
the linkage authority's (and the permit's analysts'). It is what tells a steward that nothing was
silently dropped: for each register, rows read = rows linked + rows quarantined, by reason.

A register holder's steward sees only its own registers' part (`holder_view`): their counts and
their quarantine by reason. How many of its persons appear in another holder's registers is shown
to it only as a count that passes the workspace's disclosure checks (`checked_count`).
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
    # register -> its persons who are also in a register of another holder (the linkage authority's)
    persons_with_other_holders: dict[str, int] = field(default_factory=dict)

    def to_dict(self) -> dict[str, object]:
        return asdict(self)


class LinkageTracker:
    """Collects per-register counts in the build connection while registers are linked."""

    def __init__(self, con: duckdb.DuckDBPyConnection) -> None:
        self.con = con
        self.names: list[str] = []
        con.execute("CREATE TEMP TABLE linkage_status (register VARCHAR, status VARCHAR, n_rows BIGINT, n_codes BIGINT)")
        con.execute("CREATE TEMP TABLE person_registers (pid BIGINT, register VARCHAR)")

    def record(self, register: str, codes: str, linked: str) -> None:
        """Count the rows of `register` by the status of their code, and keep the persons it links.

        `codes` holds each distinct raw code of the register's rows (raw, a missing code too) and
        its number of rows (n); `linked` is SQL of those that link, with their pseudonym (pid).
        Counting from the codes spares a pass over every row of the register, and over the pool."""
        self.names.append(register)
        self.con.execute(
            "INSERT INTO linkage_status SELECT ?, s.status, sum(c.n)::BIGINT, count(*) "
            f"FROM {codes} c JOIN id_status s ON s.raw IS NOT DISTINCT FROM c.raw GROUP BY s.status",
            [register],
        )
        self.con.execute(f"INSERT INTO person_registers SELECT DISTINCT pid, ? FROM ({linked})", [register])

    def report(self, pool_schema: str = "pool", holders: dict[str, str] | None = None) -> LinkageReport:
        """The counts of every register linked so far; `holders` (register -> its holder) adds, for each
        register, its persons who are also in a register of another holder."""
        registers: dict[str, RegisterLinkage] = {}
        self.con.execute("CREATE OR REPLACE TEMP TABLE register_holders (register VARCHAR, holder VARCHAR)")
        self.con.executemany("INSERT INTO register_holders VALUES (?, ?)",
                             [[name, (holders or {}).get(name, name)] for name in self.names])
        # one pass over the persons: in how many registers each is, whether the population register
        # is one of them, and whether their registers have two holders or more; (pid, register) is
        # unique in person_registers, so rows count persons
        self.con.execute(
            "CREATE OR REPLACE TEMP TABLE person_summary AS SELECT p.pid, count(*) AS k, "
            "bool_or(p.register = 'population') AS in_population, min(h.holder) <> max(h.holder) AS shared "
            "FROM person_registers p JOIN register_holders h ON h.register = p.register GROUP BY p.pid")
        by_register = {register: (persons, missing, shared) for register, persons, missing, shared in self.con.execute(
            "SELECT p.register, count(*), count(*) FILTER (WHERE NOT s.in_population), "
            "count(*) FILTER (WHERE s.shared) FROM person_registers p JOIN person_summary s ON s.pid = p.pid "
            "GROUP BY p.register ORDER BY p.register").fetchall()}
        for name in self.names:
            table = f"{pool_schema}.{quote_identifier(name)}"
            by_status = {
                status: (rows, codes)
                for status, rows, codes in self.con.execute(
                    "SELECT status, n_rows, n_codes FROM linkage_status WHERE register = ? ORDER BY status", [name]
                ).fetchall()
            }
            rows_in_pool = self.con.execute(f"SELECT count(*) FROM {table}").fetchall()[0][0]
            linked = sum(rows for status, (rows, _) in by_status.items() if status in LINKING)
            read = sum(rows for rows, _ in by_status.values())
            registers[name] = RegisterLinkage(
                rows_read=read,
                rows_linked=linked,
                rows_quarantined=read - linked,
                duplicate_rows_removed=linked - rows_in_pool,
                rows_in_pool=rows_in_pool,
                persons=by_register.get(name, (0, 0, 0))[0],
                rows_by_status={s: rows for s, (rows, _) in by_status.items()},
                codes_by_status={s: codes for s, (_, codes) in by_status.items()},
            )
        counts = dict(self.con.execute("SELECT k, count(*) FROM person_summary GROUP BY k ORDER BY k").fetchall())
        missing = ({register: n for register, (_, n, _) in by_register.items() if register != "population" and n}
                   if "population" in self.names else {})
        reasons = dict(
            self.con.execute(
                "SELECT status, sum(n_rows)::BIGINT FROM linkage_status WHERE status NOT IN "
                f"({', '.join(repr(s) for s in LINKING)}) GROUP BY status ORDER BY status"
            ).fetchall()
        )
        elsewhere = ({name: 0 for name in self.names} | {register: n for register, (_, _, n) in by_register.items()}
                     if holders else {})
        return LinkageReport(
            registers=registers,
            persons_total=sum(counts.values()),
            persons_by_register_count={int(k): int(v) for k, v in counts.items()},
            persons_linked_across_registers=sum(v for k, v in counts.items() if k >= 2),
            persons_missing_from_population=missing,
            quarantined_rows_by_reason=reasons,
            persons_with_other_holders={name: int(n) for name, n in elsewhere.items()},
        )


def checked_count(count: int | None, of: int, min_frequency: int, zeros: str = "allow",
                  rounding_base: int | None = None) -> int | None:
    """A count of persons out of `of` (a total its reader knows), as it may be shown: None (suppressed)
    when it, or what it leaves of the total, is below the minimum frequency (a zero too when the
    policy suppresses zeros), else itself, rounded to `rounding_base` when one is given."""
    if count is None:
        return None
    rest = of - count
    if 0 < count < min_frequency or 0 < rest < min_frequency or (count == 0 and zeros == "suppress"):
        return None
    return count if not rounding_base or rounding_base <= 1 else int(rounding_base * round(count / rounding_base))


def holder_view(report: dict[str, object], holder: str, registers: list[str], *, min_frequency: int,
                zeros: str = "allow", rounding_base: int | None = None) -> dict[str, object]:
    """What a register holder's steward sees of a linkage report: its own registers' counts and
    quarantine by reason, and how many of each register's persons are also in another holder's
    registers (or missing from the population register of another holder) only as checked counts."""
    counts = report.get("registers", {})
    assert isinstance(counts, dict)
    own = {name: counts[name] for name in registers if name in counts}
    reasons: dict[str, int] = {}
    for entry in own.values():
        for status, rows in entry.get("rows_by_status", {}).items():
            if status not in LINKING and rows:
                reasons[status] = reasons.get(status, 0) + rows
    elsewhere = report.get("persons_with_other_holders") or {}
    missing = report.get("persons_missing_from_population") or {}
    assert isinstance(elsewhere, dict) and isinstance(missing, dict)
    population_elsewhere = "population" in counts and "population" not in registers

    def checked(value: object, of: int) -> int | None:
        return checked_count(value if isinstance(value, int) else None, of, min_frequency, zeros, rounding_base)

    return {
        "holder": holder,
        "registers": own,
        "quarantined_rows_by_reason": dict(sorted(reasons.items())),
        "persons_with_other_holders": {name: checked(elsewhere.get(name), entry["persons"])
                                       for name, entry in own.items()},
        "persons_missing_from_population": ({name: checked(missing.get(name, 0), entry["persons"])
                                             for name, entry in own.items()} if population_elsewhere else {}),
        "min_frequency": min_frequency,
    }
