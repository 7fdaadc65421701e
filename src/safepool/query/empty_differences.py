"""Whether shown entries, with the remembered ones, reveal an empty difference of questions.

The all-answers algebra (`safepool.query.audit_algebra`) finds a small group of persons that a
combination of shown cells gives away. It cannot see a combination that gives away no one
because it is empty: "born before May" and "born before April", each with "earnings of 50,000 or
more", holding the same persons tell that whoever was born in April earns less. A persons-level
audit sees two equal cells; the news is in the questions. Within one answer such a cell is
suppressed like any cell of fewer persons than the minimum frequency; across answers it is
found here.

The cells are the rows of the all-answers algebra's A (what each person contributes to each
cell: a count's ones, a sum's values). A combination of cells whose rows cancel, A^T w = 0, says
that the persons one set of questions takes in and another leaves out contribute nothing: for
counts, that a set of persons the questions describe is empty. It is no news when the cells'
definitions cancel as well: a cell and the same question asked again
(`safepool.query.definitions`: the same definition, persons and values), and an entry of an
answer that adds up others of it (a total its margins, a margin its cells: the reader adds them
up, and so does the ledger, person by person). Every other dependency is an empty difference. So
a new answer is safe here when the rank of A grows by as many new rows as are not already
implied by those relations: with N new rows, and R the new rows' part of every relation the new
cells take part in, rank(A with them) - rank(A before) must be N - rank(R). Less means an empty
difference. The same rows as the algebra's are used, so that a difference of no one and a
difference of one person are found in the same quantities (a count beside a sum over nearly the
same persons is neither), and neither tells the other apart by being hidden.

The ranks come from the algebra's A A^T (kept between queries), its rows scaled to length one;
the eigenvalues below the algebra's floor are zero.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np

from safepool.query.audit_algebra import nonzero_eigenvalues

Identity = tuple[str | None, int, int]  # a cell's definition, persons and signature (of persons and values)


def rank(gram: np.ndarray) -> int:
    """The rank of a Gram matrix, its rows scaled to length one (rows of zeros left out)."""
    diagonal = np.diag(gram)
    rows = np.flatnonzero(diagonal > 0)
    if rows.size == 0:
        return 0
    scale = 1.0 / np.sqrt(diagonal[rows])
    values = np.linalg.eigvalsh(gram[np.ix_(rows, rows)] * np.outer(scale, scale))
    return int(nonzero_eigenvalues(values).sum())


def shortfall(gram: np.ndarray, remembered: int, relations: np.ndarray, known_rank: int | None) -> tuple[int, int]:
    """The rank of A A^T over every cell (the first `remembered` remembered, the rest new), and how
    many dependencies among the new cells their definitions do not imply: the new rows (cells
    with a contribution) less the rank of `relations` (the new rows' part of each implied
    relation) less what the rank grew by."""
    before = rank(gram[:remembered, :remembered]) if known_rank is None else known_rank
    after = rank(gram)
    new_rows = int((np.diag(gram)[remembered:] > 0).sum())
    implied = int(np.linalg.matrix_rank(relations)) if relations.size else 0
    return after, max(0, new_rows - implied - (after - before))


def implied_relations(entries: Sequence[int], rows: Mapping[int, int], splits: Mapping[int, Sequence[Sequence[int]]],
                      same: set[int], identity: Mapping[int, Identity], remembered: set[Identity],
                      width: int) -> np.ndarray:
    """The new rows' part of every relation the incoming `entries` take part in (relations x
    `width`): an entry with the definition and persons of a remembered entry, or of another
    incoming one, is that entry; an entry is the sum of the parts of each of its `splits`. `rows`
    numbers the entries that are new rows; `same`
    are entries equal to a remembered one (no row of their own: their part is nothing)."""
    expansions: dict[int, np.ndarray | None] = {}

    def expanded(entry: int) -> np.ndarray | None:
        if entry not in expansions:
            expansions[entry] = None  # while it is worked out: a split never leads back to its entry
            if entry in rows:
                vector = np.zeros(width)
                vector[rows[entry]] = 1.0
                expansions[entry] = vector
            elif entry in same:
                expansions[entry] = np.zeros(width)
            else:
                for parts in splits.get(entry, ()):
                    found = [expanded(m) for m in parts]
                    if all(f is not None for f in found):
                        expansions[entry] = np.sum(found, axis=0)
                        break
        return expansions[entry]

    found: list[np.ndarray] = []
    groups: dict[Identity, list[np.ndarray]] = {}
    for entry in entries:
        vector = expanded(entry)
        if vector is None:
            continue
        for parts in splits.get(entry, ()):
            summed = [expanded(m) for m in parts]
            if all(s is not None for s in summed):
                found.append(vector - np.sum(summed, axis=0))
        key = identity[entry]
        if key in remembered:
            found.append(vector)
        group = groups.setdefault(key, [])
        if group:
            found.append(vector - group[0])
        group.append(vector)
    return np.array([v for v in found if np.any(v)]).reshape(-1, width)
