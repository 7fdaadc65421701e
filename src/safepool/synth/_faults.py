"""Identity faults planted in the registers, recorded code by code.

Kinds (each person has at most one code fault per register):

- wrong_check_character: the check character replaced by another one (invalid code)
- lowercase: the letters of an otherwise valid code written in lower case
- whitespace: leading or trailing spaces or tabs around an otherwise valid code
- temporary_code: rows from a recent immigrant's first year in Finland carry a temporary code
  (individual number 900-999, valid check character) instead of the permanent one
- missing_from_register: the person is missing from this register (rows = 1 for the missing
  population row) although present in others
- duplicate_row: an exact copy of a row directly after it (rows = extra copies per code)
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from safepool.synth import _hetu
from safepool.synth._catalogue import identity_column
from safepool.synth._people import People
from safepool.synth._registers import RawTable
from safepool.synth._time import DAYS_PER_YEAR, WINDOW_START

FAULT_KINDS = ["wrong_check_character", "lowercase", "whitespace", "temporary_code",
               "missing_from_register", "duplicate_row"]
FAULTS_SCHEMA = pa.schema([
    ("register", pa.string()), ("identity_code", pa.string()), ("kind", pa.string()),
    ("rows", pa.int64()), ("true_code", pa.string()),
])
_PREFIX = [" ", "", "\t", "", " ", "  "]
_SUFFIX = ["", " ", "", "\t", " ", ""]


@dataclass
class Identities:
    """Every person's permanent code, and a temporary code for recent immigrants."""

    codes: pa.Array  # (n,) canonical permanent codes
    temporary: pa.Array  # (n,) temporary codes (only meaningful where has_temporary)
    has_temporary: np.ndarray  # bool
    letters: np.ndarray  # bool: the permanent code holds a letter


def identities(people: People, rng: np.random.Generator) -> Identities:
    codes = _hetu.encode(people.birth, people.hetu_sign, people.hetu_number, people.hetu_check)
    has_temp = people.immigrant & (people.immigration >= WINDOW_START)
    temp_number = _hetu.unique_individual_numbers(rng, people.birth, people.female, temporary=True)
    temporary = _hetu.encode(people.birth, people.hetu_sign, temp_number)
    letters = (people.hetu_sign >= ord("A")) | (people.hetu_check >= 10)
    return Identities(codes, temporary, has_temp, letters)


def _count(rate: float, population: int) -> int:
    if rate <= 0 or population == 0:
        return 0
    return max(1, int(round(rate * population)))


def plant(raw: RawTable, people: People, ids: Identities, rates: dict[str, float],
          rng: np.random.Generator, missing_candidates: np.ndarray | None = None,
          ) -> tuple[pa.Table, pa.Table]:
    """The register's table with its identity column, and its fault records.

    `missing_candidates` are the persons that may be left out of the register (persons other
    registers know). The raw table's columns are consumed (each dropped once its planted copy
    is made: a large register is not held twice)."""
    n = people.n
    rows = raw.person
    columns = dict(raw.columns)
    raw.columns.clear()
    records: list[pa.Table] = []

    if "missing_from_register" in rates:
        # persons left out of this register (chosen among those the other registers know)
        pool = np.arange(n) if missing_candidates is None else missing_candidates
        k = min(_count(rates["missing_from_register"], n), pool.size)
        gone = np.sort(rng.choice(pool, size=k, replace=False))
        keep = ~np.isin(rows, gone)
        take = pa.array(np.flatnonzero(keep))
        columns = {name: col.take(take) for name, col in columns.items()}
        lost = np.bincount(rows[~keep], minlength=n)[gone]
        rows = rows[keep]
        raw = RawTable(raw.name, columns, rows, raw.day[keep])
        records.append(_records(raw.name, ids.codes.take(pa.array(gone)), "missing_from_register",
                                lost, ids.codes.take(pa.array(gone))))

    present = np.flatnonzero(np.bincount(rows, minlength=n))
    person_ix = np.arange(n, dtype=np.int64)
    variants: list[pa.Array] = [ids.codes]
    offset = n
    assigned = np.zeros(n, dtype=bool)
    kinds_at: list[tuple[str, int, np.ndarray]] = []  # kind, first variant index, persons
    for kind in ("wrong_check_character", "lowercase", "whitespace"):
        if kind not in rates:
            continue
        candidates = present[~assigned[present]]
        if kind == "lowercase":
            candidates = candidates[ids.letters[candidates]]
        k = min(_count(rates[kind], present.size), candidates.size)
        chosen = np.sort(rng.choice(candidates, size=k, replace=False))
        assigned[chosen] = True
        base = ids.codes.take(pa.array(chosen))
        if kind == "wrong_check_character":
            wrong = (people.hetu_check[chosen] + rng.integers(1, 31, k)) % 31
            variant = _hetu.encode(people.birth[chosen], people.hetu_sign[chosen],
                                   people.hetu_number[chosen], wrong)
        elif kind == "lowercase":
            variant = pc.utf8_lower(base)
        else:
            pattern = rng.integers(0, len(_PREFIX), k)
            variant = pc.binary_join_element_wise(
                pa.array(_PREFIX).take(pa.array(pattern)), base,
                pa.array(_SUFFIX).take(pa.array(pattern)), "")
        person_ix[chosen] = offset + np.arange(k)
        variants.append(variant)
        kinds_at.append((kind, offset, chosen))
        offset += k
    row_ix = person_ix[rows]

    if "temporary_code" in rates:
        first_year = (ids.has_temporary[rows] & (raw.day >= people.immigration[rows])
                      & (raw.day < people.immigration[rows] + DAYS_PER_YEAR))
        candidates = np.flatnonzero(np.bincount(rows[first_year], minlength=n))
        candidates = candidates[~assigned[candidates]]
        k = min(_count(rates["temporary_code"], candidates.size), candidates.size)
        chosen = np.sort(rng.choice(candidates, size=k, replace=False))
        assigned[chosen] = True
        slot = np.full(n, -1, dtype=np.int64)
        slot[chosen] = np.arange(k)
        hit = first_year & (slot[rows] >= 0)
        row_ix = np.where(hit, offset + slot[rows], row_ix)
        variants.append(ids.temporary.take(pa.array(chosen)))
        kinds_at.append(("temporary_code", offset, chosen))
        offset += k

    take = None
    dup_rows = np.empty(0, dtype=np.int64)
    if "duplicate_row" in rates and rows.size:
        k = _count(rates["duplicate_row"], rows.size)
        dup_rows = np.sort(rng.choice(rows.size, size=min(k, rows.size), replace=False))
        extra = np.zeros(rows.size, dtype=np.int64)
        extra[dup_rows] = 1
        take = np.repeat(np.arange(rows.size), 1 + extra)

    table_codes = pa.concat_arrays([v.cast(pa.string()) for v in variants])
    final_ix = row_ix if take is None else row_ix[take]
    identity = _hetu.take_strings(table_codes, final_ix)
    if take is not None:
        t = pa.array(take)
        for name in columns:
            columns[name] = columns[name].take(t)
    table = pa.table({identity_column(raw.name): identity, **columns})

    counts = np.bincount(final_ix, minlength=offset)
    for kind, first, chosen in kinds_at:
        idx = np.arange(first, first + chosen.size)
        records.append(_records(raw.name, table_codes.take(pa.array(idx)), kind, counts[idx],
                                ids.codes.take(pa.array(chosen))))
    if dup_rows.size:
        code_ix, dups = np.unique(row_ix[dup_rows], return_counts=True)
        true_person = _owner_of(code_ix, kinds_at)
        records.append(_records(raw.name, table_codes.take(pa.array(code_ix)), "duplicate_row", dups,
                                ids.codes.take(pa.array(true_person))))
    faults = pa.concat_tables(records) if records else FAULTS_SCHEMA.empty_table()
    return table, faults


def _owner_of(code_ix: np.ndarray, kinds_at: list[tuple[str, int, np.ndarray]]) -> np.ndarray:
    """The person behind each index of the code table (variants map back to their owner)."""
    owner = code_ix.copy()
    for _, first, chosen in kinds_at:
        inside = np.flatnonzero((code_ix >= first) & (code_ix < first + chosen.size))
        owner[inside] = chosen[code_ix[inside] - first]
    return owner


def _records(register: str, codes: pa.Array, kind: str, rows: np.ndarray, true_codes: pa.Array) -> pa.Table:
    k = len(codes)
    return pa.table({
        "register": pa.array([register] * k, pa.string()),
        "identity_code": codes.cast(pa.string()),
        "kind": pa.array([kind] * k, pa.string()),
        "rows": pa.array(np.asarray(rows, dtype=np.int64)),
        "true_code": true_codes.cast(pa.string()),
    }, schema=FAULTS_SCHEMA)
