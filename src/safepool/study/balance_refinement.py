"""Balance refinement: swap matched controls for other acceptable candidates when that brings
the matched groups' covariate means closer.

Nearest-neighbour matching on a score makes each pair close on the score, but among the
controls that are almost equally close, which one is taken is arbitrary as far as the
covariates go; that arbitrariness is most of the imbalance left after matching. Here each
matched control may be exchanged for another candidate of the same treated unit (same risk
set and exact cell, within the caliper, found by the nearest-neighbour search) when the swap
lowers the objective: the sum of squared standardised mean differences, plus a penalty on the
pairs' own covariate distance. The penalty keeps pairs alike: without it the search would
fix a rare category by picking the same unusual controls again and again, which balances the
means but makes the estimate noisier (bench/study_validity.py --no-refine shows the
comparison). Only the design changes: outcomes are never looked at, as in fine-balance and
cardinality matching. Each swap strictly lowers the objective. The means are balanced within
two or three sweeps; after that the gains come from the penalty alone and shrink slowly, so
the search stops once a sweep gains less than a tenth of what the first one did.
"""

from __future__ import annotations

import numpy as np

from safepool.study.balance import pooled_sd_of

MAX_SWEEPS = 20
GATHER_ROWS = 65_536  # rows copied at once when the features of the matched atoms are taken out
STOP_GAIN = 0.1  # stop once a sweep gains less than this share of what the first sweep gained


def standardise_in_place(x: np.ndarray, is_treated: np.ndarray) -> np.ndarray:
    """x's columns centred and divided by the pooled SD of treated and controls (the denominator
    of the SMD), in x's own memory: one matrix of x's size, not two."""
    with np.errstate(invalid="ignore", divide="ignore"):  # a lone treated unit has no variance
        pooled = pooled_sd_of(x, is_treated)
    x -= x.mean(axis=0)
    x /= np.where(pooled > 0, pooled, 1.0)
    return x


def two_valued(x: np.ndarray) -> np.ndarray:
    """Per column, at most two distinct values (as np.unique counts them, without its sort):
    every value is the column's least or its greatest, compared a row at a time over all columns."""
    if x.shape[0] == 0:
        return np.ones(x.shape[1], dtype=bool)
    return ((x == x.min(axis=0)) | (x == x.max(axis=0))).all(axis=0)


def balance_features(x: np.ndarray, is_treated: np.ndarray, *rows: np.ndarray) -> tuple[np.ndarray, ...]:
    """The covariates and, for the non-binary ones, their squares (so variances are balanced too),
    standardised over all rows; one matrix per array of row numbers in `rows`. Pass x as a
    matrix of its own: it is standardised in place."""
    binary = two_valued(x)
    z = standardise_in_place(x, is_treated)
    squares = z[:, ~binary]
    squares **= 2
    standardise_in_place(squares, is_treated)
    return tuple(gathered(chosen, z, squares) for chosen in rows)


def gathered(rows: np.ndarray, *parts: np.ndarray) -> np.ndarray:
    """The rows of the parts side by side (as np.hstack of each part's rows), copied a block of
    rows at a time so that no part's rows are held twice."""
    out = np.empty((rows.size, sum(part.shape[1] for part in parts)))
    for start in range(0, rows.size, GATHER_ROWS):
        block = rows[start:start + GATHER_ROWS]
        column = 0
        for part in parts:
            out[start:start + block.size, column:column + part.shape[1]] = part[block]
            column += part.shape[1]
    return out


def refine_balance(z_treated: np.ndarray, z_control: np.ndarray, pair_t: np.ndarray, pair_c: np.ndarray,
                   amount: np.ndarray, t_size: np.ndarray, c_size: np.ndarray, candidates_t: np.ndarray,
                   candidates_c: np.ndarray, exclusive: bool, pair_penalty: float = 1.0) -> np.ndarray:
    """Controls of the links after refinement (pair_t and amount stay as they are).

    The units are atoms (safepool.study.matching: rows identical to the matcher, t_size and
    c_size rows each), so the search never depends on which of several identical rows comes
    first. z_*: standardised balance features of treated and control atoms; pair_t, pair_c,
    amount: the links of the match (sorted by treated atom), each worth `amount` controls;
    candidates_t, candidates_c: every acceptable pair of atoms; exclusive: a control row serves
    one set only (matching without replacement), so an atom can take links worth up to its
    size; pair_penalty: weight of the pairs' mean squared covariate distance divided by the
    number of sets (at 1 the two terms are of one size when controls are chosen at random).
    The links are visited in the order of their atoms, which is the data's order.
    """
    pair_c = pair_c.copy()
    if pair_t.size == 0:
        return pair_c
    total = np.bincount(pair_t, weights=amount, minlength=z_treated.shape[0])
    sets = np.flatnonzero(total > 0)
    n = float(t_size[sets].sum())
    weight = amount * t_size[pair_t] / (total[pair_t] * n)
    gap = (t_size[sets] @ z_treated[sets]) / n - weight @ z_control[pair_c]
    penalty = pair_penalty * weight / n
    order = np.lexsort((candidates_c, candidates_t))
    candidates_c = candidates_c[order]
    starts = np.searchsorted(candidates_t[order], np.arange(z_treated.shape[0] + 1))
    link_starts = np.searchsorted(pair_t, np.arange(z_treated.shape[0] + 1))
    in_use = np.zeros(z_control.shape[0])
    np.add.at(in_use, pair_c, amount)
    objective, first_gain = float(gap @ gap), None
    for _ in range(MAX_SWEEPS):
        before = objective
        for i in range(pair_t.size):
            t, old = pair_t[i], pair_c[i]
            options = candidates_c[starts[t]:starts[t + 1]]
            room = (c_size[options] - in_use[options]) if exclusive else c_size[options]
            free = room >= amount[i] - 1e-9
            lo, hi = link_starts[t], link_starts[t + 1]
            free &= ~np.isin(options, pair_c[lo:hi]) if hi - lo > 1 else options != old
            options = options[free]
            if options.size == 0:
                continue
            shift = weight[i] * (z_control[old] - z_control[options])  # change of the gap per option
            distance = ((z_control[options] - z_treated[t]) ** 2).sum(axis=1)
            change = (2.0 * shift @ gap + (shift * shift).sum(axis=1)
                      + penalty[i] * (distance - ((z_control[old] - z_treated[t]) ** 2).sum()))
            best = int(np.argmin(change))  # a tie goes to the first option in data order
            if change[best] < 0:
                gap += shift[best]
                objective += float(change[best])
                in_use[old] -= amount[i]
                in_use[options[best]] += amount[i]
                pair_c[i] = options[best]
        first_gain = before - objective if first_gain is None else first_gain
        if before - objective <= STOP_GAIN * first_gain:
            break
    return pair_c
