"""Risk-set matching: each treated unit is compared only with controls from its own risk set.

A unit is one row: a person at an entry quarter (the stratum). A client entering in quarter q
may only be matched with units of stratum q (people still eligible and not yet clients at q,
covariates measured before q). The same person may be a different row in another stratum; a
row is never used in two strata because rows carry their stratum.

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
- Without replacement, matching is greedy nearest neighbour: order="best" takes the closest
  pairs first across the stratum, order="random" lets treated units choose in a random order
  (seeded by random_state). Each treated unit takes up to `ratio` controls; one that finds
  fewer keeps those it found (its controls then weigh 1/m for m found).
- Candidates come from one KD-tree over all controls with each stratum (and exact-match cell)
  placed far apart on an extra axis, so a query never crosses a risk set. Each treated unit
  sees its nearest candidates; one whose candidates were all taken asks again for more, and
  then chooses after the others.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator
from sklearn.exceptions import NotFittedError
from sklearn.linear_model import LogisticRegression
from sklearn.neighbors import NearestNeighbors
from threadpoolctl import threadpool_limits

from safepool.study.balance_refinement import balance_features, refine_balance
from safepool.study.table_checks import (
    StudyTableError,
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
PAIR_PENALTY = 1.0
Pairs = tuple[np.ndarray, np.ndarray]


class MatchingError(StudyTableError):
    """The matcher cannot run on the table or settings given."""


def group_rank(groups: np.ndarray) -> np.ndarray:
    """Position of each element among the earlier elements with the same group value."""
    order = np.argsort(groups, kind="stable")
    sorted_groups = groups[order]
    starts = np.r_[0, np.flatnonzero(sorted_groups[1:] != sorted_groups[:-1]) + 1]
    run_lengths = np.diff(np.r_[starts, groups.size])
    rank_sorted = np.arange(groups.size) - np.repeat(starts, run_lengths)
    ranks = np.empty(groups.size, dtype=np.int64)
    ranks[order] = rank_sorted
    return ranks


def greedy_assign(treated: np.ndarray, control: np.ndarray, capacity: np.ndarray,
                  control_used: np.ndarray, exclusive: bool) -> np.ndarray:
    """Accept edges in priority order (the arrays are already sorted by priority).

    Equal to walking the sorted edges one by one and taking an edge when its treated unit
    still has capacity and (if exclusive) its control is free. Done in rounds: an edge that
    is the first live edge of its control and among the first `capacity` live edges of its
    treated unit would be taken by that walk, so all such edges are taken at once.
    Updates `capacity` and `control_used` in place.
    """
    accepted = np.zeros(treated.size, dtype=bool)
    alive = ~control_used[control] if exclusive else np.ones(treated.size, dtype=bool)
    while alive.any():
        live = np.flatnonzero(alive)
        ok = group_rank(treated[live]) < capacity[treated[live]]
        if exclusive:
            first_of_control = np.zeros(live.size, dtype=bool)
            first_of_control[np.unique(control[live], return_index=True)[1]] = True
            ok &= first_of_control
        taken = live[ok]
        accepted[taken] = True
        np.subtract.at(capacity, treated[taken], 1)
        if not exclusive:
            break
        control_used[control[taken]] = True
        alive &= ~accepted & ~control_used[control] & (capacity[treated] > 0)
    return accepted


def pooled_whitening(x: np.ndarray, is_treated: np.ndarray) -> np.ndarray:
    """Matrix W such that Euclidean distance of x @ W is the Mahalanobis distance (pooled covariance)."""
    centred = x.copy()
    for group in (is_treated, ~is_treated):
        centred[group] -= centred[group].mean(axis=0)
    covariance = centred.T @ centred / max(x.shape[0] - 2, 1)
    values, vectors = np.linalg.eigh(covariance)
    keep = values > values.max() * 1e-10
    return vectors[:, keep] / np.sqrt(values[keep])


class RiskSetMatcher(BaseEstimator):
    """Match treated units to controls of the same risk set (stratum), scikit-learn style.

    After fit: propensity_ and logit_ (Series on the table's index), caliper_width_ (on the
    logit scale), matched_ (matched rows with set_id and weight; one row per unit and set, so
    a control reused under replacement appears once per set, each with weight 1/m of its set,
    which sums to the usual ATT weight), unmatched_ (stratum, reason, n_treated),
    match_status_ ("matched" or the reason, per treated row), n_treated_, n_matched_.
    """

    def __init__(self, covariates: Sequence[str], treatment: str = "treated", stratum: str | None = "stratum",
                 method: Literal["propensity", "mahalanobis"] = "propensity", exact: Sequence[str] = (),
                 caliper: float | None = 0.2, ratio: int = 1, replace: bool = False,
                 order: Literal["best", "random"] = "best", refine: bool = True, random_state: int = 0) -> None:
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

    # --- checks -------------------------------------------------------------------------
    def _check_settings(self) -> None:
        where = "matcher settings"
        if self.method not in ("propensity", "mahalanobis"):
            raise MatchingError(where, f"method must be propensity or mahalanobis, not {self.method}")
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

        scale = x.std(axis=0)
        standardised = (x - x.mean(axis=0)) / np.where(scale > 0, scale, 1.0)
        logit = self._fit_logit(standardised, strata, is_treated)
        self.propensity_ = pd.Series(1.0 / (1.0 + np.exp(-logit)), index=df.index, name="propensity")
        self.logit_ = pd.Series(logit, index=df.index, name="logit")
        within = logit - pd.Series(logit).groupby(strata).transform("mean").to_numpy()
        self.caliper_width_ = None if self.caliper is None else float(self.caliper * within.std(ddof=1))

        space = logit[:, None] if self.method == "propensity" else standardised @ pooled_whitening(
            standardised, is_treated)
        treated_rows, control_rows = np.flatnonzero(is_treated), np.flatnonzero(~is_treated)
        pairs, candidates = self._match(space, logit, cells, treated_rows, control_rows)
        if self.refine:
            features = balance_features(x, is_treated)
            pairs = pairs[0], refine_balance(features[treated_rows], features[control_rows], *pairs, *candidates,
                                             exclusive=not self.replace, pair_penalty=PAIR_PENALTY)
        self._record(df, pairs, treated_rows, control_rows, strata, cells, logit)
        self.index_ = df.index
        return self

    def _fit_logit(self, standardised: np.ndarray, strata: np.ndarray, is_treated: np.ndarray) -> np.ndarray:
        dummies = np.eye(strata.max() + 1)[strata][:, 1:] if strata.max() > 0 else np.empty((len(strata), 0))
        design = np.hstack([standardised, dummies])
        model = LogisticRegression(C=PROPENSITY_C, max_iter=2000)
        with threadpool_limits(limits=1, user_api="blas"):  # BLAS threads only slow these thin matrices down
            model.fit(design, is_treated.astype(int))
        self.propensity_model_ = model
        return model.decision_function(design)

    def _match(self, space: np.ndarray, logit: np.ndarray, cells: np.ndarray,
               treated_rows: np.ndarray, control_rows: np.ndarray) -> tuple[Pairs, Pairs]:
        """(treated position, control position) pairs, in treated-row order, and every acceptable pair seen."""
        points = self._separated(space, cells)
        tree = NearestNeighbors(algorithm="kd_tree").fit(points[control_rows])
        n_treated, n_control = treated_rows.size, control_rows.size
        rank = np.random.default_rng(self.random_state).permutation(n_treated)
        capacity = np.full(n_treated, self.ratio, dtype=np.int64)
        control_used = np.zeros(n_control, dtype=bool)
        controls_in_cell = np.bincount(cells[control_rows], minlength=cells.max() + 1)
        largest_cell = int(controls_in_cell.max())
        found_t, found_c, candidate_t, candidate_c = [], [], [], []
        asking = np.arange(n_treated)
        seen, k = 0, min(largest_cell, max(FIRST_QUERY_SIZE, 4 * self.ratio))
        while asking.size:
            distance, neighbour = tree.kneighbors(points[treated_rows[asking]], n_neighbors=k)
            distance, neighbour = distance[:, seen:], neighbour[:, seen:]
            valid = cells[control_rows[neighbour]] == cells[treated_rows[asking]][:, None]
            if self.caliper_width_ is not None:
                gap = np.abs(logit[control_rows[neighbour]] - logit[treated_rows[asking]][:, None])
                valid &= gap <= self.caliper_width_
            t = np.repeat(asking, k - seen)[valid.ravel()]
            c, d = neighbour.ravel()[valid.ravel()], distance.ravel()[valid.ravel()]
            candidate_t.append(t)
            candidate_c.append(c)
            priority = np.lexsort((d, rank[t])) if self.order == "random" else np.lexsort((rank[t], d))
            accepted = greedy_assign(t[priority], c[priority], capacity, control_used, exclusive=not self.replace)
            found_t.append(t[priority][accepted])
            found_c.append(c[priority][accepted])
            # Sorted by distance: past the caliper on the logit itself, nothing nearer is left.
            more_exist = controls_in_cell[cells[treated_rows[asking]]] > k
            if self.method == "propensity" and self.caliper_width_ is not None:
                more_exist &= valid[:, -1]
            asking = asking[more_exist & (capacity[asking] > 0)]
            seen, k = k, min(largest_cell, 2 * k)
        pair_t, pair_c = np.concatenate(found_t), np.concatenate(found_c)
        order = np.lexsort((pair_c, pair_t))
        return (pair_t[order], pair_c[order]), (np.concatenate(candidate_t), np.concatenate(candidate_c))

    @staticmethod
    def _separated(space: np.ndarray, cells: np.ndarray) -> np.ndarray:
        """Matching space plus an axis on which different cells lie farther apart than any two points."""
        span = np.sqrt(((space.max(axis=0) - space.min(axis=0)) ** 2).sum())
        return np.hstack([space, (cells * (2.0 * span + 1.0))[:, None]])

    def _record(self, df: pd.DataFrame, pairs: tuple[np.ndarray, np.ndarray], treated_rows: np.ndarray,
                control_rows: np.ndarray, strata: np.ndarray, cells: np.ndarray, logit: np.ndarray) -> None:
        pair_t, pair_c = pairs
        matched_t = np.unique(pair_t)
        set_of_treated = np.full(treated_rows.size, -1, dtype=np.int64)
        set_of_treated[matched_t] = np.arange(matched_t.size)
        controls_in_set = np.bincount(set_of_treated[pair_t], minlength=matched_t.size)
        self._rows = np.concatenate([treated_rows[matched_t], control_rows[pair_c]])
        self._set_id = np.concatenate([np.arange(matched_t.size), set_of_treated[pair_t]])
        self._weight = np.concatenate([np.ones(matched_t.size), 1.0 / controls_in_set[set_of_treated[pair_t]]])
        self.n_treated_ = int(treated_rows.size)
        self.n_matched_ = int(matched_t.size)
        self.n_incomplete_sets_ = int((controls_in_set < self.ratio).sum())

        status = np.full(treated_rows.size, "matched", dtype=object)
        unmatched = np.flatnonzero(set_of_treated < 0)
        status[unmatched] = self._reasons(treated_rows[unmatched], control_rows, strata, cells, logit)
        self.match_status_ = pd.Series(status, index=df.index[treated_rows], name="match_status")
        stratum_labels = df[self.stratum].to_numpy() if self.stratum else np.full(len(df), "all")
        lost = pd.DataFrame({"stratum": stratum_labels[treated_rows[unmatched]], "reason": status[unmatched]})
        self.unmatched_ = (lost.groupby(["stratum", "reason"], sort=True).size().rename("n_treated").reset_index()
                           if len(lost) else pd.DataFrame({"stratum": [], "reason": [], "n_treated": []}))
        self.matched_ = self.transform(df, _fitting=True)

    def _reasons(self, rows: np.ndarray, control_rows: np.ndarray, strata: np.ndarray, cells: np.ndarray,
                 logit: np.ndarray) -> np.ndarray:
        """Why each unmatched treated row found no control, from the coarsest reason down."""
        reasons = np.full(rows.size, ALL_TAKEN if not self.replace else NO_CALIPER, dtype=object)
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
        used in several sets when matching with replacement).
        """
        if not hasattr(self, "_rows"):
            raise NotFittedError("RiskSetMatcher is not fitted; call fit(df) first")
        df = require_frame(df, "matcher transform")
        if not _fitting and not df.index.equals(self.index_):
            raise MatchingError("matcher transform", "the table's index differs from the fitted table's index")
        matched = df.iloc[self._rows].copy()
        matched["set_id"] = self._set_id
        matched["weight"] = self._weight
        return matched.iloc[np.lexsort((~treatment_indicator(matched, self.treatment, "matcher transform"),
                                        matched["set_id"].to_numpy()))]

    def fit_transform(self, df: pd.DataFrame, y: object = None) -> pd.DataFrame:
        return self.fit(df).matched_
