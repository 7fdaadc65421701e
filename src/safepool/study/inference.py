"""Uncertainty for weighted treated-control differences that respects matched sets.

Every method takes a long table of cells: horizon, treated (bool), y, w (weight), cluster, and
for matched cells set and unit (person). The estimate at each horizon is the weighted mean of y
among treated minus that among controls; with matching weights normalised within each set this
is the mean over sets of (treated value - weighted mean of its controls), the ATT.

A person may be in several matched sets: a control reused under replacement or in a
full-matching subclass with several clients, or the same person in several entry quarters
(each person is a unit of every quarter in which it is eligible, and controls whose
background stays like the clients' are the nearest again and again: in the validity
benchmark most controls serve several sets, some ten or more). Matched cells are therefore
clustered two ways, by matched set and by person (V = V_set + V_person - V_set&person,
Cameron, Gelbach and Miller 2011), without chaining every set that shares anyone into one
cluster; the bootstrap resamples merged clusters instead (sets that share a person are one
cluster, the "cluster" column), which is safe but with full matching leaves few clusters.
- cluster_jackknife (the default): each way's covariance is the delete-one-cluster jackknife
  (CV3: (G-1)/G times the sum of squared deviations of the estimates left without one cluster;
  MacKinnon, Nielsen and Webb 2023), so a control that carries much of the weight (reused in
  many sets, or with a large censoring weight) counts with the change its removal makes, not
  with its residual, which the fit pulls towards it; intervals use t on the effective number
  of clusters (Carter, Schnepel and Steigerwald 2017): (sum of a)^2 / sum over pairs of cells
  sharing a set or a person of a a', with a = (cell weight / arm weight)^2 times the arm's
  variance, so that a few clusters carrying most of the variance give few degrees of freedom
  (never more than the fewer of sets and persons, less one). With the plain cluster-robust
  covariance below, the 95% intervals of the validity benchmark held the planted effect in
  92% of 100 seeds at 12 quarters (mean standard error 4% below the spread of the errors);
  with this, 94-97% at every horizon for every matching method (bench/study_validity.py).
- cluster_robust: the WLS of y on treated per horizon (the weighted difference of means) with
  a cluster-robust covariance from the per-cell scores (CV1), two-way for matched cells, with
  statsmodels' small-sample factors G/(G-1) (N-1)/(N-K); with every person in one set it is
  exactly statsmodels' WLS clustered by set. Intervals use t with (clusters - 1) degrees of
  freedom, clusters being the fewer of sets and persons.
- cluster_bootstrap: resamples clusters with replacement (multinomial counts, all draws at
  once with numpy), recomputes every horizon's estimate from per-cluster sums; percentile
  intervals, standard error and covariance from the draws.
The covariance between horizons (for joint Wald tests) comes from the same scores, jackknife
estimates or draws. Cells of the naive comparison (no sets) are clustered on their "cluster"
column alone.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy import sparse, stats
from scipy.sparse.csgraph import connected_components

from safepool.study.table_checks import StudyTableError


@dataclass(frozen=True)
class HorizonEstimates:
    """Per-horizon estimates with their joint covariance and interval bounds."""

    horizons: np.ndarray
    estimate: np.ndarray
    covariance: np.ndarray
    ci_low: np.ndarray
    ci_high: np.ndarray
    n_clusters: np.ndarray  # clusters with a usable cell, per horizon
    df: np.ndarray | None = None  # degrees of freedom of the t intervals (default: clusters - 1)

    @property
    def std_error(self) -> np.ndarray:
        return np.sqrt(np.clip(np.diag(self.covariance), 0, None))

    @property
    def degrees_of_freedom(self) -> np.ndarray:
        return np.maximum(self.n_clusters - 1, 1) if self.df is None else self.df

    def p_value(self) -> np.ndarray:
        """Two-sided p-value of each estimate against zero (t with the intervals' degrees of freedom)."""
        with np.errstate(divide="ignore", invalid="ignore"):
            t = np.where(self.std_error > 0, self.estimate / self.std_error, np.nan)
        return 2 * stats.t.sf(np.abs(t), df=self.degrees_of_freedom)

    def joint_wald(self) -> tuple[float, int, float]:
        """Wald statistic, degrees of freedom and p-value for all estimates being zero."""
        informative = np.diag(self.covariance) > 0
        theta = self.estimate[informative]
        covariance = self.covariance[np.ix_(informative, informative)]
        rank = int(np.linalg.matrix_rank(covariance)) if theta.size else 0
        if rank == 0:
            return float("nan"), 0, float("nan")
        statistic = float(theta @ np.linalg.pinv(covariance) @ theta)
        return statistic, rank, float(stats.chi2.sf(statistic, rank))


def merged_clusters(set_ids: np.ndarray, unit_keys: np.ndarray) -> np.ndarray:
    """Cluster number per row: sets that share a unit (a reused control, one person) are one cluster."""
    set_codes, set_index = np.unique(set_ids, return_inverse=True)
    unit_codes, unit_index = np.unique(unit_keys, return_inverse=True)
    n_sets = set_codes.size
    links = sparse.coo_matrix((np.ones(set_index.size), (set_index, n_sets + unit_index)),
                              shape=(n_sets + unit_codes.size,) * 2)
    _, component = connected_components(links, directed=False)
    # clusters numbered in the order of their first set (the data's order), never by a unit's key
    of_set = component[:n_sets]
    first_set = np.full(of_set.max() + 1, n_sets)
    np.minimum.at(first_set, of_set, np.arange(n_sets))
    return np.unique(first_set[of_set], return_inverse=True)[1][set_index]


def without_interval(cells: pd.DataFrame) -> HorizonEstimates:
    """Estimates not defined at each horizon of cells with fewer than two clusters, so that a table
    can still show (or suppress) their arms' counts and means."""
    horizons = np.sort(pd.unique(cells["horizon"].to_numpy()))
    undefined = np.full(horizons.size, np.nan)
    clusters = cells.groupby("horizon")["cluster"].nunique().reindex(horizons).to_numpy()
    return HorizonEstimates(horizons, undefined, np.full((horizons.size, horizons.size), np.nan), undefined,
                            undefined, clusters)


def require_cells(cells: pd.DataFrame, where: str) -> np.ndarray:
    horizons = np.sort(pd.unique(cells["horizon"].to_numpy()))  # np.unique's answer, hashed rather than sorted
    if horizons.size == 0:
        raise StudyTableError(where, "no cell has both a treated and a control value observed")
    if cells["cluster"].nunique() < 2:
        raise StudyTableError(where, "fewer than two independent clusters: no interval can be given")
    return horizons


@dataclass(frozen=True)
class Way:
    """One way of clustering the cells, as the (cluster, horizon) pairs that have cells."""

    sign: float  # +1, or -1 for the intersection of two-way clustering
    pair: np.ndarray  # per cell, its pair
    pair_cluster: np.ndarray  # per pair, its cluster (codes 0..)
    pair_h: np.ndarray  # per pair, its horizon (index into the horizons)

    @property
    def clusters(self) -> int:
        return int(self.pair_cluster.max()) + 1 if self.pair_cluster.size else 0

    def per_horizon(self, n_h: int) -> np.ndarray:
        """Clusters with a cell at each horizon."""
        return np.bincount(self.pair_h, minlength=n_h)

    def sums(self, values: np.ndarray, n_h: int) -> sparse.csr_matrix:
        """Per cluster (rows) and horizon (columns), the sum of the cells' values."""
        return sparse.csr_matrix((np.bincount(self.pair, weights=values, minlength=self.pair_h.size),
                                  (self.pair_cluster, self.pair_h)), shape=(self.clusters, n_h))


def cluster_ways(cells: pd.DataFrame, h: np.ndarray, n_h: int) -> list[Way]:
    """The clusterings of the cells: by set, by person and, subtracted, by set and person together
    (two-way, for matched cells); or the "cluster" column alone (no sets)."""
    if not {"set", "unit"} <= set(cells.columns):
        ways = [(pd.factorize(cells["cluster"].to_numpy())[0], 1.0)]
    else:
        sets = pd.factorize(cells["set"].to_numpy())[0].astype(np.int64)
        units = pd.factorize(cells["unit"].to_numpy())[0].astype(np.int64)
        ways = [(sets, 1.0), (units, 1.0), (pd.factorize(sets * (int(units.max()) + 1) + units)[0], -1.0)]
    out = []
    for groups, sign in ways:
        pair, first = pd.factorize(groups.astype(np.int64) * n_h + h)
        out.append(Way(sign, pair, first // n_h, first % n_h))
    return out


def counted_clusters(ways: list[Way], n_h: int) -> np.ndarray:
    """Independent clusters per horizon: the fewer of matched sets and persons for two-way clustering."""
    return np.min([way.per_horizon(n_h) for way in ways if way.sign > 0], axis=0)


def clusters_per_horizon(cells: pd.DataFrame, horizons: np.ndarray) -> np.ndarray:
    """Independent clusters per horizon: the fewer of matched sets and persons for matched cells
    (two-way clustering), else the cluster column's."""
    h = np.searchsorted(horizons, cells["horizon"].to_numpy())
    return counted_clusters(cluster_ways(cells, h, horizons.size), horizons.size)


def positive_part(covariance: np.ndarray) -> np.ndarray:
    """The covariance with negative eigenvalues set to 0: the two-way difference of sums can fall
    below zero in a small sample (Cameron, Gelbach and Miller 2011)."""
    values, vectors = np.linalg.eigh(covariance)
    return (vectors * np.clip(values, 0, None)) @ vectors.T


def effective_clusters(h: np.ndarray, treated: np.ndarray, w: np.ndarray, y: np.ndarray, ways: list[Way],
                       counted: np.ndarray) -> np.ndarray:
    """Per horizon, the effective number of clusters (Carter, Schnepel and Steigerwald 2017) of the
    cluster-robust variance under a working model of independent cells with one variance per arm:
    (sum a)^2 / (sum over pairs of cells in one cluster of a a', two-way as V is), a being each cell's
    (weight / arm weight)^2 times its arm's weighted variance. Never more than the clusters counted."""
    n_h = counted.size
    a = np.zeros(h.size)
    for mask in (treated, ~treated):
        total = np.bincount(h[mask], weights=w[mask], minlength=n_h)
        mean = np.bincount(h[mask], weights=w[mask] * y[mask], minlength=n_h) / np.where(total > 0, total, 1)
        spread = np.bincount(h[mask], weights=w[mask] * (y[mask] - mean[h[mask]]) ** 2, minlength=n_h)
        variance = spread / np.where(total > 0, total, 1)
        a[mask] = (w[mask] / total[h[mask]]) ** 2 * variance[h[mask]]
    pairs = np.zeros(n_h)
    for way in ways:
        per_pair = np.bincount(way.pair, weights=a, minlength=way.pair_h.size)
        pairs += way.sign * np.bincount(way.pair_h, weights=per_pair ** 2, minlength=n_h)
    with np.errstate(divide="ignore", invalid="ignore"):
        effective = np.bincount(h, weights=a, minlength=n_h) ** 2 / pairs
    return np.where(np.isfinite(effective) & (pairs > 0), np.minimum(effective, counted), counted).astype(float)


def cluster_jackknife(cells: pd.DataFrame, alpha: float, where: str) -> HorizonEstimates:
    """Weighted difference of means per horizon with the delete-one-cluster jackknife covariance (two-way
    for matched cells) and t intervals on the effective number of clusters (see the module's notes).

    Each cluster's estimate without it is computed from per-cluster sums, for every horizon at once;
    the deviations of a horizon are taken over the clusters with a cell there, scaled by (G_h - 1) / G_h.
    Where leaving a cluster out would empty an arm, its deviation is its cluster-robust score instead."""
    horizons = require_cells(cells, where)
    h = np.searchsorted(horizons, cells["horizon"].to_numpy())
    treated = cells["treated"].to_numpy(bool)
    w, y = cells["w"].to_numpy(float), cells["y"].to_numpy(float)
    n_h = horizons.size
    arms = [(treated, 1.0), (~treated, -1.0)]
    totals = [(np.bincount(h[m], weights=w[m], minlength=n_h), np.bincount(h[m], weights=w[m] * y[m], minlength=n_h))
              for m, _ in arms]
    estimate = totals[0][1] / totals[0][0] - totals[1][1] / totals[1][0]
    ways = cluster_ways(cells, h, n_h)
    covariance = np.zeros((n_h, n_h))
    for way in ways:
        n_pairs = way.pair_h.size
        without, score = np.zeros(n_pairs), np.zeros(n_pairs)
        for (mask, arm_sign), (total_w, total_wy) in zip(arms, totals):
            part_w = np.bincount(way.pair[mask], weights=w[mask], minlength=n_pairs)
            part_wy = np.bincount(way.pair[mask], weights=w[mask] * y[mask], minlength=n_pairs)
            all_w, all_wy = total_w[way.pair_h], total_wy[way.pair_h]
            with np.errstate(divide="ignore", invalid="ignore"):
                without += arm_sign * (all_wy - part_wy) / (all_w - part_w)
            score += arm_sign * (part_wy - part_w * (all_wy / all_w)) / all_w
        deviation = np.where(np.isfinite(without), without - estimate[way.pair_h], -score)
        count = way.per_horizon(n_h)
        centred = deviation - (np.bincount(way.pair_h, weights=deviation, minlength=n_h) / np.maximum(count, 1)
                               )[way.pair_h]
        centred *= np.sqrt(np.maximum(count - 1, 0) / np.maximum(count, 1))[way.pair_h]
        spread = sparse.csr_matrix((centred, (way.pair_cluster, way.pair_h)), shape=(way.clusters, n_h))
        covariance += way.sign * (spread.T @ spread).toarray()
    if len(ways) > 1:
        covariance = positive_part(covariance)
    n_clusters = counted_clusters(ways, n_h)
    df = np.maximum(effective_clusters(h, treated, w, y, ways, n_clusters) - 1, 1)
    half = stats.t.ppf(1 - alpha / 2, df=df) * np.sqrt(np.clip(np.diag(covariance), 0, None))
    return HorizonEstimates(horizons, estimate, covariance, estimate - half, estimate + half, n_clusters, df)


def cluster_robust(cells: pd.DataFrame, alpha: float, where: str) -> HorizonEstimates:
    """Weighted difference of means per horizon with a cluster-robust covariance (CV1).

    Cells from matched sets (columns "set" and "unit") are clustered two ways, by matched set
    and by person (Cameron, Gelbach and Miller 2011): V = V_set + V_person - V_set&person. Other
    cells (the naive comparison) are clustered on their "cluster" column alone.
    """
    horizons = require_cells(cells, where)
    h = np.searchsorted(horizons, cells["horizon"].to_numpy())
    treated = cells["treated"].to_numpy(bool)
    w = cells["w"].to_numpy(float)
    y = cells["y"].to_numpy(float)
    n_h = horizons.size
    sums = {}
    for side, mask in (("t", treated), ("c", ~treated)):
        sums[side, "w"] = np.bincount(h[mask], weights=w[mask], minlength=n_h)
        sums[side, "wy"] = np.bincount(h[mask], weights=w[mask] * y[mask], minlength=n_h)
    mean_t, mean_c = sums["t", "wy"] / sums["t", "w"], sums["c", "wy"] / sums["c", "w"]
    estimate = mean_t - mean_c
    # each cell's influence on its horizon's estimate (the WLS coefficient's score)
    influence = np.where(treated, w * (y - mean_t[h]) / sums["t", "w"][h], -w * (y - mean_c[h]) / sums["c", "w"][h])
    ways = cluster_ways(cells, h, n_h)
    covariance = np.zeros((n_h, n_h))
    for way in ways:
        scores = way.sums(influence, n_h)
        g = way.clusters
        covariance += way.sign * (g / max(g - 1, 1)) * (scores.T @ scores).toarray()
    cells_per_horizon = np.bincount(h, minlength=n_h).astype(float)
    scale = np.sqrt((cells_per_horizon - 1) / np.maximum(cells_per_horizon - 2, 1))  # statsmodels' (N-1)/(N-K)
    covariance *= np.outer(scale, scale)
    if len(ways) > 1:
        covariance = positive_part(covariance)
    n_clusters = counted_clusters(ways, n_h)
    variance = np.clip(np.diag(covariance), 0, None)
    half = stats.t.ppf(1 - alpha / 2, df=np.maximum(n_clusters - 1, 1)) * np.sqrt(variance)
    return HorizonEstimates(horizons, estimate, covariance, estimate - half, estimate + half, n_clusters)


def cluster_bootstrap(cells: pd.DataFrame, alpha: float, n_boot: int, random_state: int,
                      where: str) -> HorizonEstimates:
    horizons = require_cells(cells, where)
    clusters, cluster_index = np.unique(cells["cluster"].to_numpy(), return_inverse=True)
    h = np.searchsorted(horizons, cells["horizon"].to_numpy())
    treated = cells["treated"].to_numpy(bool)
    w = cells["w"].to_numpy(float)
    wy = w * cells["y"].to_numpy(float)
    shape = (clusters.size, horizons.size)
    sums = {}
    for side, mask in (("treated", treated), ("control", ~treated)):
        for name, values in (("wy", wy), ("w", w)):
            sums[side, name] = np.bincount(cluster_index[mask] * shape[1] + h[mask], weights=values[mask],
                                           minlength=shape[0] * shape[1]).reshape(shape)

    def estimate_from(counts: np.ndarray) -> np.ndarray:
        with np.errstate(divide="ignore", invalid="ignore"):
            return (counts @ sums["treated", "wy"]) / (counts @ sums["treated", "w"]) - \
                (counts @ sums["control", "wy"]) / (counts @ sums["control", "w"])

    rng = np.random.default_rng(random_state)
    counts = rng.multinomial(clusters.size, np.full(clusters.size, 1.0 / clusters.size), size=n_boot)
    draws = estimate_from(counts.astype(float))
    estimate = estimate_from(np.ones((1, clusters.size)))[0]
    kept = draws[np.isfinite(draws).all(axis=1)]
    covariance = np.cov(kept, rowvar=False, ddof=1).reshape(horizons.size, horizons.size)
    low, high = np.quantile(kept, [alpha / 2, 1 - alpha / 2], axis=0)
    return HorizonEstimates(horizons, estimate, covariance, low, high, clusters_per_horizon(cells, horizons))
