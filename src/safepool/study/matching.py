"""Risk-set matching: each treated unit is compared only with controls from its own risk set.

A unit is one row: a person at an entry quarter (the stratum). A client entering in quarter q
may only be matched with units of stratum q (people still eligible and not yet clients at q,
covariates measured before q). The same person may be a different row in another stratum; a
row is never used in two strata because rows carry their stratum.

The result never depends on the order of the rows or on any identifier (a pseudonym is a
keyed hash: another permit's key permutes them):
- The rows are put in an order fixed by the data (risk set, exact cell, treatment, then the
  covariate values) before anything is computed, so the propensity fit, the distances and
  every tie-break are the same whatever order the rows came in.
- Rows that are identical on everything the matcher sees (cell, treatment, covariates) form
  one atom and are matched as one: identical controls share the match with equal weights,
  and identical clients get the same controls. Controls at the same distance from a client
  (within a relative tolerance of 1e-9) share it too, in proportion to what each can still
  give: Sekhon's Matching does the same with ties=TRUE.

Choices, so that results can be read correctly:
- Covariates must be numeric (booleans count as 0/1). Categories are one-hot encoded by the
  caller (pandas.get_dummies); exact-matching columns may be of any type.
- The propensity score is one logistic regression fitted once on all units, on the
  standardised covariates plus stratum dummies. One pooled fit is stable when a quarter has
  few clients (a per-quarter fit would separate perfectly), and the dummies absorb the
  changing share of clients per quarter; matching happens on the logit within each stratum,
  where the dummy cancels. The penalty is negligible (C=1000) and only there to keep the fit
  finite when a covariate separates the groups.
- The caliper is `caliper` times the pooled within-stratum standard deviation of the logit
  (deviations from each stratum's mean), so between-quarter differences do not widen it.
  With method="mahalanobis" the caliper still applies to the logit (Mahalanobis matching
  within propensity calipers); the distance uses the pooled within-group covariance of the
  covariates (treated and controls each centred on their own mean).
- matching="nearest" (the default): greedy nearest neighbour. order="best" takes the closest
  pairs first across the stratum (ties broken by the data order above), order="random" lets
  treated units choose in a random order (seeded by random_state, over the data order). Each
  treated unit takes up to `ratio` controls; one that finds fewer keeps those it found (its
  controls then weigh 1/m for m found). Without replacement a control serves one client;
  with replace=True a control may serve several, and its weight is the sum over them.
- matching="full": optimal full matching (Rosenbaum 1991, Hansen 2004, as optmatch's
  fullmatch without structural limits): every client and every control within the caliper
  of some client of its cell is placed in a subclass of one client with one or more controls,
  or of one control with several clients, so that the total client-control distance within
  subclasses is the smallest possible. That is a minimum-weight edge cover of the bipartite
  graph of acceptable pairs; it is solved as a maximum-weight matching (scipy's sparse
  minimum-cost assignment, LAPJVsp) on a candidate graph: each client's nearest controls and
  each control's nearest client. Every client with a control in its caliper is matched.
  `ratio` and `replace` do not apply; the refinement is not run (the match is already optimal
  on the distance).
- Candidates come from one KD-tree over all controls with each stratum (and exact-match cell)
  placed far apart on an extra axis, so a query never crosses a risk set. Each treated unit
  sees its nearest candidates; one whose candidates were all taken asks again for more, and
  then chooses after the others.

The matched table has one row per treated unit and set, and one per control and set: a set
is one treated unit with its controls, whose weights sum to 1. A control in several sets
(with replacement, in a full-matching subclass with several clients, or sharing a tie) appears
once per set; the estimators tie such sets together as one cluster.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal

import numpy as np
import pandas as pd
from scipy import sparse
from scipy.sparse.csgraph import min_weight_full_bipartite_matching
from sklearn.base import BaseEstimator
from sklearn.exceptions import NotFittedError
from sklearn.linear_model import LogisticRegression
from sklearn.neighbors import NearestNeighbors
from threadpoolctl import threadpool_limits

from safepool.study.balance_refinement import balance_features, refine_balance
from safepool.study.ordering import lexicographic_order
from safepool.study.table_checks import (
    StudyTableError,
    by_column_blocks,
    numeric_matrix,
    require_columns,
    require_frame,
    treatment_indicator,
)

NO_RISK_SET = "no control in risk set"
NO_EXACT = "no exact match"
NO_CALIPER = "no control within caliper"
ALL_TAKEN = "eligible controls already taken"
PROPENSITY_C = 1000.0
FIRST_QUERY_SIZE = 8
FULL_CANDIDATES = 16  # nearest controls of each client offered to full matching (plus each control's nearest client)
PAIR_PENALTY = 1.0
TIE_TOLERANCE = 1e-9  # distances closer than this share of the space's spread are ties
EPS = 1e-9


class MatchingError(StudyTableError):
    """The matcher cannot run on the table or settings given."""


def data_order(cells: np.ndarray, is_treated: np.ndarray, x: np.ndarray) -> np.ndarray:
    """Row order fixed by the data: cell, treatment, then each covariate's value (never the row's place)."""
    return lexicographic_order([cells, is_treated, *x.T])


def atoms_of(cells: np.ndarray, is_treated: np.ndarray, x: np.ndarray) -> np.ndarray:
    """Atom number per row of rows in data order: rows identical in cell, treatment and covariates share one."""
    if cells.size == 0:
        return np.zeros(0, dtype=np.int64)
    new = np.r_[True, (cells[1:] != cells[:-1]) | (is_treated[1:] != is_treated[:-1])
                | (x[1:] != x[:-1]).any(axis=1)]
    return np.cumsum(new) - 1


def pooled_whitening(x: np.ndarray, is_treated: np.ndarray) -> np.ndarray:
    """Matrix W such that Euclidean distance of x @ W is the Mahalanobis distance (pooled covariance)."""
    centred = x.copy()
    for group in (is_treated, ~is_treated):
        centred[group] -= centred[group].mean(axis=0)
    covariance = centred.T @ centred / max(x.shape[0] - 2, 1)
    values, vectors = np.linalg.eigh(covariance)
    keep = values > values.max() * 1e-10
    return vectors[:, keep] / np.sqrt(values[keep])


def design_in_data_order(df: pd.DataFrame, covariates: list[str], order: np.ndarray, strata: np.ndarray) -> np.ndarray:
    """The propensity model's design, its rows in data order, made in one array straight from the
    frame's columns (no matrix of the covariates beside it): the covariates as they are (for
    atoms_of, then standardise_covariates), then one dummy per stratum but the first."""
    p = len(covariates)
    design = np.zeros((order.size, p + int(strata.max(initial=0))))
    for j, column in enumerate(covariates):  # as numeric_matrix reads them (checked there)
        design[:, j] = df[column].to_numpy(dtype="float64", na_value=np.nan)[order]
    rows = np.flatnonzero(strata > 0)
    design[rows, p + strata[rows] - 1] = 1.0
    return design


def standardise_covariates(design: np.ndarray, p: int) -> None:
    """The design's first p columns (the covariates) standardised over all rows, in place."""
    covariates = design[:, :p]
    scale = by_column_blocks(covariates, lambda block: block.std(axis=0))
    covariates -= covariates.mean(axis=0)
    covariates /= np.where(scale > 0, scale, 1.0)


def spans(starts: np.ndarray, counts: np.ndarray) -> np.ndarray:
    """starts[i], starts[i] + 1, ..., starts[i] + counts[i] - 1 for each i, concatenated."""
    counts = np.asarray(counts, dtype=np.int64)
    if counts.size == 0:
        return np.zeros(0, dtype=np.int64)
    offsets = np.arange(counts.sum()) - np.repeat(np.cumsum(counts) - counts, counts)
    return np.repeat(np.asarray(starts, dtype=np.int64), counts) + offsets


class Links:
    """Treated atom, control atom and amount (in controls' worth) of each link of a match."""

    def __init__(self, t: np.ndarray, c: np.ndarray, amount: np.ndarray) -> None:
        order = np.lexsort((c, t))
        self.t, self.c, self.amount = t[order], c[order], amount[order]


def walk(t: list[int], c: list[int], key: list[int], need: np.ndarray, free: np.ndarray | None,
         size: np.ndarray) -> tuple[list[int], list[int], list[float]]:
    """Accept edges in priority order (already sorted; edges of one treated atom at one distance
    key are adjacent): a treated atom takes from a group of tied controls what it still needs,
    shared in proportion to what each control atom can give (all of its rows with replacement,
    `free` without). Updates need and free in place."""
    out_t: list[int] = []
    out_c: list[int] = []
    out_a: list[float] = []
    needs = need.tolist()
    frees = free.tolist() if free is not None else None
    sizes = size.tolist()
    i, n = 0, len(t)
    while i < n:
        ti, ki = t[i], key[i]
        j = i + 1
        while j < n and t[j] == ti and key[j] == ki:
            j += 1
        wanted = needs[ti]
        if wanted > EPS:
            group = c[i:j]
            offer = [frees[g] for g in group] if frees is not None else [sizes[g] for g in group]
            total = sum(offer)
            if total > EPS:
                take = min(wanted, total)
                for g, o in zip(group, offer):
                    if o > EPS:
                        amount = take * o / total
                        out_t.append(ti)
                        out_c.append(g)
                        out_a.append(amount)
                        if frees is not None:
                            frees[g] -= amount
                needs[ti] = wanted - take
        i = j
    need[:] = needs
    if free is not None:
        free[:] = frees
    return out_t, out_c, out_a


class RiskSetMatcher(BaseEstimator):
    """Match treated units to controls of the same risk set (stratum), scikit-learn style.

    After fit: propensity_ and logit_ (Series on the table's index), caliper_width_ (on the
    logit scale), matched_ (matched rows with set_id and weight; one row per unit and set, so
    a control in several sets appears once per set, each with its share of that set's weight,
    which sums to the usual ATT weight), unmatched_ (stratum, reason, n_treated),
    match_status_ ("matched" or the reason, per treated row), n_treated_, n_matched_,
    share_matched_ (n_matched_ / n_treated_).
    """

    def __init__(self, covariates: Sequence[str], treatment: str = "treated", stratum: str | None = "stratum",
                 method: Literal["propensity", "mahalanobis"] = "propensity", exact: Sequence[str] = (),
                 caliper: float | None = 0.2, ratio: int = 1, replace: bool = False,
                 order: Literal["best", "random"] = "best", refine: bool = True, random_state: int = 0,
                 matching: Literal["nearest", "full"] = "nearest") -> None:
        self.covariates = covariates
        self.treatment = treatment
        self.stratum = stratum
        self.method = method
        self.exact = exact
        self.caliper = caliper
        self.ratio = ratio
        self.replace = replace
        self.order = order
        self.refine = refine
        self.random_state = random_state
        self.matching = matching

    # --- checks -------------------------------------------------------------------------
    def _check_settings(self) -> None:
        where = "matcher settings"
        if self.method not in ("propensity", "mahalanobis"):
            raise MatchingError(where, f"method must be propensity or mahalanobis, not {self.method}")
        if self.matching not in ("nearest", "full"):
            raise MatchingError(where, f"matching must be nearest or full, not {self.matching}")
        if self.order not in ("best", "random"):
            raise MatchingError(where, f"order must be best or random, not {self.order}")
        if isinstance(self.ratio, bool) or not isinstance(self.ratio, (int, np.integer)) or self.ratio < 1:
            raise MatchingError(where, "ratio must be a whole number of controls per treated unit, at least 1")
        if self.caliper is not None and not self.caliper > 0:
            raise MatchingError(where, "caliper must be positive (or None for no caliper)")
        if isinstance(self.covariates, str) or len(self.covariates) == 0:
            raise MatchingError(where, "covariates must be a non-empty list of column names")

    def _strata(self, df: pd.DataFrame) -> np.ndarray:
        if self.stratum is None:
            return np.zeros(len(df), dtype=np.int64)
        if df[self.stratum].isna().any():
            raise MatchingError("matcher input", f"stratum column {self.stratum} has missing values")
        return pd.factorize(df[self.stratum], sort=True)[0]

    def _cells(self, df: pd.DataFrame, strata: np.ndarray) -> np.ndarray:
        """Risk set crossed with the exact-matching variables: the cell a unit may be matched in."""
        exact = list(self.exact)
        for column in exact:
            if df[column].isna().any():
                raise MatchingError("matcher input", f"exact-matching column {column} has missing values")
        if not exact:
            return strata
        keys = pd.DataFrame({"_stratum": strata, **{f"_{i}": df[c].to_numpy() for i, c in enumerate(exact)}})
        return keys.groupby(list(keys.columns), sort=True).ngroup().to_numpy()

    # --- fitting ------------------------------------------------------------------------
    def fit(self, df: pd.DataFrame, y: object = None) -> "RiskSetMatcher":
        """Estimate the propensity score and match; y is ignored (scikit-learn convention)."""
        self._check_settings()
        where = "matcher input"
        df = require_frame(df, where)
        columns = [self.treatment, *self.covariates, *self.exact] + ([self.stratum] if self.stratum else [])
        require_columns(df, columns, where)
        is_treated = treatment_indicator(df, self.treatment, where)
        x = numeric_matrix(df, list(self.covariates), where)
        if not is_treated.any():
            raise MatchingError(where, f"no treated units (treatment column {self.treatment} has no 1)")
        if is_treated.all():
            raise MatchingError(where, f"no control units (treatment column {self.treatment} has no 0)")
        strata = self._strata(df)
        cells = self._cells(df, strata)

        # Everything below works on the rows in data order: the input order cannot matter.
        order = data_order(cells, is_treated, x)
        del x  # the design holds the covariates in data order: one matrix of the table's size at a time
        is_treated, strata, cells = is_treated[order], strata[order], cells[order]
        design = design_in_data_order(df, list(self.covariates), order, strata)
        atom = atoms_of(cells, is_treated, design[:, :len(self.covariates)])
        first_row = np.r_[0, np.flatnonzero(np.diff(atom)) + 1]
        atom_size = np.bincount(atom).astype(float)
        standardise_covariates(design, len(self.covariates))
        logit = self._fit_logit(design, is_treated)
        logit = logit[first_row][atom]  # identical rows, identical scores (to the last bit)
        within = logit - pd.Series(logit).groupby(strata).transform("mean").to_numpy()
        self.caliper_width_ = None if self.caliper is None else float(self.caliper * within.std(ddof=1))
        if self.method == "propensity":
            space = logit[:, None]
        else:
            standardised = np.ascontiguousarray(design[:, :len(self.covariates)])
            space = standardised @ pooled_whitening(standardised, is_treated)
        del design  # the largest matrix of the fit: gone before the matching's own arrays are made

        atom_treated = is_treated[first_row]
        t_atoms, c_atoms = np.flatnonzero(atom_treated), np.flatnonzero(~atom_treated)
        t_rows, c_rows = first_row[t_atoms], first_row[c_atoms]  # one representative row per atom
        if self.matching == "full":
            links = self._match_full(space, logit, cells, t_rows, c_rows, atom_size[c_atoms])
        else:
            links, candidates = self._match_nearest(space, logit, cells, t_rows, c_rows, atom_size[t_atoms],
                                                    atom_size[c_atoms])
            if self.refine:
                # the features of the control atoms the refinement can look at (candidates and links
                # only), numbered in the same order: a few per treated atom instead of every control
                looked_at = np.unique(np.r_[candidates[1], links.c])
                features_t, features_c = balance_features(numeric_matrix(df, list(self.covariates), where)[order],
                                                          is_treated, t_rows, c_rows[looked_at])
                refined = refine_balance(
                    features_t, features_c, links.t, np.searchsorted(looked_at, links.c), links.amount,
                    atom_size[t_atoms], atom_size[c_atoms][looked_at], candidates[0],
                    np.searchsorted(looked_at, candidates[1]), exclusive=not self.replace,
                    pair_penalty=PAIR_PENALTY)
                links = Links(links.t, looked_at[refined], links.amount)
        inverse = np.empty_like(order)
        inverse[order] = np.arange(order.size)
        self._record(df, order, links, atom, t_atoms, c_atoms, is_treated, strata, cells, logit)
        self.propensity_ = pd.Series(1.0 / (1.0 + np.exp(-logit[inverse])), index=df.index, name="propensity")
        self.logit_ = pd.Series(logit[inverse], index=df.index, name="logit")
        self.index_ = df.index
        return self

    def _fit_logit(self, design: np.ndarray, is_treated: np.ndarray) -> np.ndarray:
        model = LogisticRegression(C=PROPENSITY_C, max_iter=2000)
        with threadpool_limits(limits=1, user_api="blas"):  # BLAS threads only slow these thin matrices down
            model.fit(design, is_treated.astype(int))
        self.propensity_model_ = model
        return model.decision_function(design)

    def _tie_key(self, space: np.ndarray, distance: np.ndarray) -> np.ndarray:
        spread = float(np.sqrt(((space.max(axis=0) - space.min(axis=0)) ** 2).sum())) or 1.0
        return np.rint(distance / (TIE_TOLERANCE * spread)).astype(np.int64)

    def _match_nearest(self, space: np.ndarray, logit: np.ndarray, cells: np.ndarray, t_rows: np.ndarray,
                       c_rows: np.ndarray, t_size: np.ndarray, c_size: np.ndarray
                       ) -> tuple[Links, tuple[np.ndarray, np.ndarray]]:
        """Greedy nearest-neighbour links between atoms, and every acceptable (treated, control) atom pair seen."""
        points = self._separated(space, cells)
        tree = NearestNeighbors(algorithm="kd_tree").fit(points[c_rows])
        n_treated = t_rows.size
        rank = np.random.default_rng(self.random_state).permutation(n_treated)
        need = t_size * self.ratio
        free = None if self.replace else c_size.copy()
        controls_in_cell = np.bincount(cells[c_rows], minlength=cells.max() + 1)
        largest_cell = int(controls_in_cell.max())
        found: list[tuple[list[int], list[int], list[float]]] = []
        candidate_t, candidate_c = [], []
        asking = np.arange(n_treated)
        done_below = np.full(n_treated, -1, dtype=np.int64)  # tie keys below this were fully offered
        k = min(largest_cell, max(FIRST_QUERY_SIZE, 4 * self.ratio))
        while asking.size:
            distance, neighbour = tree.kneighbors(points[t_rows[asking]], n_neighbors=k)
            key = self._tie_key(space, distance)
            more_exist = controls_in_cell[cells[t_rows[asking]]] > k
            valid = cells[c_rows[neighbour]] == cells[t_rows[asking]][:, None]
            if self.caliper_width_ is not None:
                gap = np.abs(logit[c_rows[neighbour]] - logit[t_rows[asking]][:, None])
                valid &= gap <= self.caliper_width_
                if self.method == "propensity":  # sorted by distance: past the caliper, nothing nearer is left
                    more_exist &= valid[:, -1]
            # the last distance of a row may continue past k: leave it for the next, larger query
            boundary = np.where(more_exist, key[:, -1], np.iinfo(np.int64).max)
            fresh = (key >= done_below[asking][:, None]) & (key < boundary[:, None])
            offered = valid & fresh
            t = np.repeat(asking, k)[offered.ravel()]
            c, d = neighbour.ravel()[offered.ravel()], key.ravel()[offered.ravel()]
            candidate_t.append(t)
            candidate_c.append(c)
            priority = np.lexsort((c, d, rank[t])) if self.order == "random" else np.lexsort((c, t, d))
            found.append(walk(t[priority].tolist(), c[priority].tolist(), d[priority].tolist(), need, free, c_size))
            done_below[asking] = boundary
            asking = asking[more_exist & (need[asking] > EPS)]
            k = min(largest_cell, 2 * k)
        links = Links(np.array([v for f in found for v in f[0]], dtype=np.int64),
                      np.array([v for f in found for v in f[1]], dtype=np.int64),
                      np.array([v for f in found for v in f[2]], dtype=float))
        return links, (np.concatenate(candidate_t), np.concatenate(candidate_c))

    def _match_full(self, space: np.ndarray, logit: np.ndarray, cells: np.ndarray, t_rows: np.ndarray,
                    c_rows: np.ndarray, c_size: np.ndarray) -> Links:
        """Optimal full matching: the minimum-weight edge cover of the acceptable pairs (atoms)."""
        points = self._separated(space, cells)
        edges_t, edges_c, edges_d = [], [], []
        for source, target, k, forward in ((t_rows, c_rows, FULL_CANDIDATES, True), (c_rows, t_rows, 1, False)):
            k = min(k, target.size)
            distance, neighbour = NearestNeighbors(algorithm="kd_tree").fit(points[target]).kneighbors(
                points[source], n_neighbors=k)
            own = np.repeat(np.arange(source.size), k)
            valid = (cells[target[neighbour]] == cells[source][:, None]).ravel()
            if self.caliper_width_ is not None:
                valid &= (np.abs(logit[target[neighbour]] - logit[source][:, None]) <= self.caliper_width_).ravel()
            pair = (own[valid], neighbour.ravel()[valid]) if forward else (neighbour.ravel()[valid], own[valid])
            edges_t.append(pair[0])
            edges_c.append(pair[1])
            edges_d.append(distance.ravel()[valid])
        t, c, d = np.concatenate(edges_t), np.concatenate(edges_c), np.concatenate(edges_d)
        pairs, first = np.unique(np.c_[t, c], axis=0, return_index=True)
        t, c, d = pairs[:, 0], pairs[:, 1], d[first]
        if t.size == 0:
            return Links(t, c, np.zeros(0))
        n_t, n_c = t_rows.size, c_rows.size
        # mu(v): each vertex's cheapest edge; the edge cover costs sum(mu) minus a maximum-weight
        # matching on the gains mu(t) + mu(c) - d (Gallai; Schrijver 2003, 19.1).
        mu_t = np.full(n_t, np.inf)
        mu_c = np.full(n_c, np.inf)
        np.minimum.at(mu_t, t, d)
        np.minimum.at(mu_c, c, d)
        gain = mu_t[t] + mu_c[c] - d
        positive = gain > EPS * (1.0 + np.abs(d))
        chosen_t, chosen_c = [], []
        if positive.any():
            rows, row_of = np.unique(t[positive], return_inverse=True)
            cols, col_of = np.unique(c[positive], return_inverse=True)
            top = float(gain[positive].max()) + 1.0
            # every row is assigned: to a control (cost top - gain) or to its own dummy column (cost top)
            cost = sparse.csr_matrix((np.r_[top - gain[positive], np.full(rows.size, top)],
                                      (np.r_[row_of, np.arange(rows.size)],
                                       np.r_[col_of, cols.size + np.arange(rows.size)])),
                                     shape=(rows.size, cols.size + rows.size))
            assigned = min_weight_full_bipartite_matching(cost)[1]
            real = assigned < cols.size
            chosen_t.append(rows[real])
            chosen_c.append(cols[assigned[real]])
        matched_t = np.concatenate(chosen_t) if chosen_t else np.zeros(0, dtype=np.int64)
        matched_c = np.concatenate(chosen_c) if chosen_c else np.zeros(0, dtype=np.int64)
        covered_t = np.zeros(n_t, dtype=bool)
        covered_c = np.zeros(n_c, dtype=bool)
        covered_t[matched_t], covered_c[matched_c] = True, True
        # vertices left uncovered take their cheapest edge (ties: the first in data order)
        by_cost = np.lexsort((c, t, d))
        cheapest_t = by_cost[np.unique(t[by_cost], return_index=True)[1]]
        cheapest_c = by_cost[np.unique(c[by_cost], return_index=True)[1]]
        extra = np.r_[cheapest_t[~covered_t[t[cheapest_t]]], cheapest_c[~covered_c[c[cheapest_c]]]]
        cover = np.unique(np.c_[np.r_[matched_t, t[extra]], np.r_[matched_c, c[extra]]], axis=0)
        return Links(cover[:, 0], cover[:, 1], c_size[cover[:, 1]])

    @staticmethod
    def _separated(space: np.ndarray, cells: np.ndarray) -> np.ndarray:
        """Matching space plus an axis on which different cells lie farther apart than any two points."""
        span = np.sqrt(((space.max(axis=0) - space.min(axis=0)) ** 2).sum())
        return np.hstack([space, (cells * (2.0 * span + 1.0))[:, None]])

    def _record(self, df: pd.DataFrame, order: np.ndarray, links: Links, atom: np.ndarray, t_atoms: np.ndarray,
                c_atoms: np.ndarray, is_treated: np.ndarray, strata: np.ndarray, cells: np.ndarray,
                logit: np.ndarray) -> None:
        """Sets from the links: one per treated row (rows in data order), its controls' weights summing to 1.

        Atoms are runs of rows in data order: atom a holds rows start[a] .. start[a] + size[a] - 1."""
        start = np.r_[0, np.flatnonzero(np.diff(atom)) + 1]
        size = np.diff(np.r_[start, atom.size])
        total = np.bincount(links.t, weights=links.amount, minlength=t_atoms.size)
        t_size = size[t_atoms]
        matched_atoms = np.flatnonzero(total > EPS)
        first_set = np.zeros(t_atoms.size, dtype=np.int64)
        first_set[matched_atoms] = np.cumsum(t_size[matched_atoms]) - t_size[matched_atoms]
        # treated rows: each its own set
        treated_rows = spans(start[t_atoms[matched_atoms]], t_size[matched_atoms])
        treated_sets = spans(first_set[matched_atoms], t_size[matched_atoms])
        # control rows of each link, once for every treated row of the link's atom
        c_size = size[c_atoms[links.c]]
        link_weight = links.amount / (total[links.t] * c_size)
        copies = t_size[links.t]
        link_of_copy = np.repeat(np.arange(links.t.size), copies)
        copy_set = spans(first_set[links.t], copies)
        control_rows = spans(start[c_atoms[links.c[link_of_copy]]], c_size[link_of_copy])
        control_sets = np.repeat(copy_set, c_size[link_of_copy])
        control_weights = np.repeat(link_weight[link_of_copy], c_size[link_of_copy])
        rows = np.r_[treated_rows, control_rows]
        sets = np.r_[treated_sets, control_sets]
        arranged = np.lexsort((rows, np.r_[np.zeros(treated_rows.size), np.ones(control_rows.size)], sets))
        self._rows = order[rows[arranged]]
        self._set_id = sets[arranged]
        self._weight = np.r_[np.ones(treated_rows.size), control_weights][arranged]
        self.n_treated_ = int(is_treated.sum())
        self.n_matched_ = int(treated_rows.size)
        self.share_matched_ = self.n_matched_ / self.n_treated_
        short = (total > EPS) & (total < t_size * self.ratio - EPS)
        self.n_incomplete_sets_ = int(t_size[short].sum()) if self.matching == "nearest" else 0

        all_treated = np.flatnonzero(is_treated)
        matched_row = np.zeros(atom.size, dtype=bool)
        matched_row[treated_rows] = True
        lost_rows = all_treated[~matched_row[all_treated]]
        status = np.full(all_treated.size, "matched", dtype=object)
        reasons = self._reasons(lost_rows, np.flatnonzero(~is_treated), strata, cells, logit)
        status[~matched_row[all_treated]] = reasons
        back = np.argsort(order[all_treated], kind="stable")  # the table's own order
        self.match_status_ = pd.Series(status[back], index=df.index[order[all_treated][back]], name="match_status")
        stratum_labels = df[self.stratum].to_numpy()[order] if self.stratum else np.full(len(df), "all")
        lost = pd.DataFrame({"stratum": stratum_labels[lost_rows], "reason": reasons})
        self.unmatched_ = (lost.groupby(["stratum", "reason"], sort=True).size().rename("n_treated").reset_index()
                           if len(lost) else pd.DataFrame({"stratum": [], "reason": [], "n_treated": []}))
        self.matched_ = self.transform(df, _fitting=True)

    def _reasons(self, rows: np.ndarray, control_rows: np.ndarray, strata: np.ndarray, cells: np.ndarray,
                 logit: np.ndarray) -> np.ndarray:
        """Why each unmatched treated row found no control, from the coarsest reason down."""
        reasons = np.full(rows.size, ALL_TAKEN if not self.replace and self.matching == "nearest" else NO_CALIPER,
                          dtype=object)
        if rows.size == 0:
            return reasons
        nearest = NearestNeighbors(n_neighbors=1, algorithm="kd_tree").fit(
            self._separated(logit[:, None], cells)[control_rows])
        gap, _ = nearest.kneighbors(self._separated(logit[:, None], cells)[rows])
        if self.caliper_width_ is not None:
            reasons[gap[:, 0] > self.caliper_width_] = NO_CALIPER
        reasons[~np.isin(cells[rows], cells[control_rows])] = NO_EXACT
        reasons[~np.isin(strata[rows], strata[control_rows])] = NO_RISK_SET
        return reasons

    def transform(self, df: pd.DataFrame, _fitting: bool = False) -> pd.DataFrame:
        """The matched rows of df (the fitted table, or one with the same index and more columns).

        Adds set_id and weight; the index keeps the table's labels (repeated for a control
        used in several sets). Rows come by set, the treated unit first, then its controls in
        data order.
        """
        if not hasattr(self, "_rows"):
            raise NotFittedError("RiskSetMatcher is not fitted; call fit(df) first")
        df = require_frame(df, "matcher transform")
        if not _fitting and not df.index.equals(self.index_):
            raise MatchingError("matcher transform", "the table's index differs from the fitted table's index")
        matched = df.iloc[self._rows].copy()
        matched["set_id"] = self._set_id
        matched["weight"] = self._weight
        return matched

    def fit_transform(self, df: pd.DataFrame, y: object = None) -> pd.DataFrame:
        return self.fit(df).matched_
