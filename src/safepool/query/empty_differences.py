"""Whether shown entries, with the remembered ones, reveal an empty difference of questions.

The all-answers algebra (`safepool.query.audit_algebra`) finds a small group of persons that a
combination of shown cells gives away. It cannot see a combination that gives away no one
because it is empty: "born before May" and "born before April", each with "earnings of 50,000 or
more", holding the same persons tell that whoever was born in April earns less. A persons-level
audit sees two equal cells; the news is in the questions. Within one answer such a cell is
suppressed like any cell of fewer persons than the minimum frequency; across answers it is
found here.

Let M be the 0/1 matrix of which persons each entry holds (membership, whatever their values).
A combination of entries whose memberships cancel, M^T w = 0, says that a set of persons the
questions describe is empty. It is no news when the questions' definitions cancel as well: an
entry and the same question asked again (`safepool.query.definitions`: the same definition and
the same persons), and a total or line of an answer that adds up shown cells no person is in two
of. Every other dependency among the memberships is an empty difference. So a new answer is
safe here when the rank of M grows by as many new entries as are not already implied by those
relations: with N new rows, and R the new rows' part of every relation the new entries take part
in, rank(M with them) - rank(M before) must be N - rank(R). Less means an empty difference.

The ranks come from M M^T (entries x entries: how many persons two entries share), kept between
queries like A A^T; its rows scaled to length one, the eigenvalues below the algebra's floor are
zero.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
from scipy import sparse

from safepool.query.audit_algebra import nonzero_eigenvalues, products

Identity = tuple[str | None, int, int]  # an entry's definition, persons and membership signature


@dataclass(frozen=True)
class MembershipAudit:
    """M M^T over every entry (remembered first), its rank, and how many dependencies among the new
    entries their definitions do not imply."""

    gram: np.ndarray
    rank: int
    empty_differences: int


def rank(gram: np.ndarray) -> int:
    """The rank of a Gram matrix, its rows scaled to length one (rows of zeros left out)."""
    diagonal = np.diag(gram)
    rows = np.flatnonzero(diagonal > 0)
    if rows.size == 0:
        return 0
    scale = 1.0 / np.sqrt(diagonal[rows])
    values = np.linalg.eigvalsh(gram[np.ix_(rows, rows)] * np.outer(scale, scale))
    return int(nonzero_eigenvalues(values).sum())


def audit(remembered: sparse.csr_matrix, incoming: sparse.csr_matrix, relations: np.ndarray,
          known_gram: np.ndarray | None, known_rank: int | None) -> MembershipAudit:
    """Compare the growth of the memberships' rank with what the relations imply. `remembered` and
    `incoming` are the entries' memberships (entries x persons, ones), `relations` the new rows'
    part of each implied relation (relations x incoming rows)."""
    n_old, n_new = remembered.shape[0], incoming.shape[0]
    gram = np.empty((n_old + n_new, n_old + n_new))
    gram[:n_old, :n_old] = products(remembered, remembered) if known_gram is None else known_gram
    across = products(incoming, remembered)
    gram[n_old:, :n_old] = across
    gram[:n_old, n_old:] = across.T
    gram[n_old:, n_old:] = products(incoming, incoming)
    before = rank(gram[:n_old, :n_old]) if known_rank is None else known_rank
    after = rank(gram)
    new_rows = int((np.diag(gram)[n_old:] > 0).sum())
    implied = int(np.linalg.matrix_rank(relations)) if relations.size else 0
    return MembershipAudit(gram, after, max(0, new_rows - implied - (after - before)))


def implied_relations(entries: Sequence[int], rows: Mapping[int, int], splits: Mapping[int, Sequence[Sequence[int]]],
                      same: set[int], identity: Mapping[int, Identity], remembered: set[Identity],
                      width: int) -> np.ndarray:
    """The new rows' part of every relation the incoming `entries` take part in (relations x
    `width`): an entry with the definition and persons of a remembered entry, or of another
    incoming one, is that entry; an entry is the sum of the parts of each of its `splits` (given
    only where no person is in two parts). `rows` numbers the entries that are new rows; `same`
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
