"""Calendar helpers: days as int32 counts since 1970-01-01, the study's quarters and months."""

from __future__ import annotations

import numpy as np

START_YEAR = 2009
END_YEAR = 2024
YEARS = END_YEAR - START_YEAR + 1
QUARTERS = 4 * YEARS
MONTHS = 12 * YEARS
NODATE = np.int32(np.iinfo(np.int32).max)  # "no such date" (still alive, never moved, ...)
DAYS_PER_YEAR = 365.25


def day(year: int, month: int = 1, dom: int = 1) -> int:
    return int(np.datetime64(f"{year:04d}-{month:02d}-{dom:02d}", "D").astype(np.int64))


WINDOW_START = day(START_YEAR)
WINDOW_END = day(END_YEAR + 1)  # exclusive
PROGRAMME_START_QUARTER = 4 * (2019 - START_YEAR)

Q_START = np.array(
    [day(START_YEAR + q // 4, 3 * (q % 4) + 1) for q in range(QUARTERS + 1)], dtype=np.int32
)
Q_END = Q_START[1:] - 1  # last day of each quarter
Q_START = Q_START[:-1]
M_START = np.array(
    [day(START_YEAR + m // 12, m % 12 + 1) for m in range(MONTHS + 1)], dtype=np.int32
)
M_END = M_START[1:] - 1
M_START = M_START[:-1]
QUARTER_LABELS = [f"{START_YEAR + q // 4}Q{q % 4 + 1}" for q in range(QUARTERS)]
MONTH_YYYYMM = np.array(
    [(START_YEAR + m // 12) * 100 + m % 12 + 1 for m in range(MONTHS)], dtype=np.int32
)


def quarter_label(q: int) -> str:
    return QUARTER_LABELS[q]


def parts(days: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(year, month, day of month) of each day number."""
    d = np.asarray(days, dtype=np.int64).astype("datetime64[D]")
    y = d.astype("datetime64[Y]")
    m = d.astype("datetime64[M]")
    year = y.astype(np.int64) + 1970
    month = (m - y.astype("datetime64[M]")).astype(np.int64) + 1
    dom = (d - m.astype("datetime64[D]")).astype(np.int64) + 1
    return year.astype(np.int32), month.astype(np.int32), dom.astype(np.int32)


def year_of(days: np.ndarray) -> np.ndarray:
    d = np.asarray(days, dtype=np.int64).astype("datetime64[D]")
    return (d.astype("datetime64[Y]").astype(np.int64) + 1970).astype(np.int32)


def quarter_of(days: np.ndarray) -> np.ndarray:
    """Study quarter index (0 = 2009Q1) of each day; may fall outside 0..QUARTERS-1."""
    year, month, _ = parts(days)
    return ((year - START_YEAR) * 4 + (month - 1) // 3).astype(np.int32)


def month_of(days: np.ndarray) -> np.ndarray:
    """Study month index (0 = 2009-01) of each day."""
    year, month, _ = parts(days)
    return ((year - START_YEAR) * 12 + month - 1).astype(np.int32)


def random_day_between(rng: np.random.Generator, lo: np.ndarray, hi: np.ndarray) -> np.ndarray:
    """A uniformly random day in [lo, hi] (inclusive), elementwise; hi < lo gives lo."""
    lo = np.asarray(lo, dtype=np.int64)
    hi = np.maximum(np.asarray(hi, dtype=np.int64), lo)
    return (lo + np.floor(rng.random(lo.shape) * (hi - lo + 1))).astype(np.int32)


def cells_by_quarter(mask: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(quarter, person) of the true cells of a person-by-quarter matrix, quarter by quarter and
    persons in order within a quarter: np.nonzero(mask.T) as int32, found a quarter at a time so
    that no pair of int64 arrays over every cell is made (two thirds of the memory, same speed)."""
    persons = [np.flatnonzero(mask[:, q]).astype(np.int32) for q in range(mask.shape[1])]
    quarter = np.repeat(np.arange(mask.shape[1], dtype=np.int32), [p.size for p in persons])
    return quarter, np.concatenate(persons) if persons else np.empty(0, dtype=np.int32)


def cells(matrix: np.ndarray, person: np.ndarray, quarter: np.ndarray) -> np.ndarray:
    """matrix[person, quarter] for a person-by-quarter matrix, read through flat indices: cells
    listed quarter by quarter lie a row apart, where a 2-D fancy index costs twice as much."""
    flat = person.astype(np.int64)
    flat *= matrix.shape[1]
    flat += quarter
    return np.take(matrix, flat)


def any_per_year(quarterly: np.ndarray) -> np.ndarray:
    """Whether a person-by-quarter boolean matrix is true in any quarter of each year: a year's
    four flags read as one 32-bit word (any() over an axis of four is forty times slower)."""
    return np.ascontiguousarray(quarterly, dtype=np.bool_).view(np.uint32) != 0


def count_per_year(quarterly: np.ndarray) -> np.ndarray:
    """In how many quarters of each year a person-by-quarter boolean matrix is true: a year's four
    flags read as one 32-bit word, whose bytes (0 or 1) the product with 0x01010101 adds up in its
    top byte (a sum over an axis of four is eight times slower)."""
    words = np.ascontiguousarray(quarterly, dtype=np.bool_).view(np.uint32)
    return (words * np.uint32(0x01010101)) >> np.uint32(24)
