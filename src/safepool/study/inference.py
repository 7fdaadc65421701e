"""Uncertainty for weighted treated-control differences that respects matched sets.

Both methods take a long table of cells: horizon, treated (bool), y, w (weight), cluster.
The estimate at each horizon is the weighted mean of y among treated minus that among
controls; with matching weights normalised within each set this is the mean over sets of
(treated value - weighted mean of its controls), the ATT.

A person may be in several matched sets: a control reused under replacement or in a
full-matching subclass with several clients, or the same person in several entry quarters.
cluster_robust clusters by set and by person at once (below); the bootstrap resamples merged
clusters: sets that share a person are one cluster (the "cluster" column of the cells), which
is safe but, when sets chain together through shared persons (full matching uses every
nearby control), leaves few clusters: use cluster_robust there.
- cluster_robust: the WLS of y on treated per horizon (the weighted difference of means) with
  a cluster-robust covariance from the per-cell scores, clustered two ways for matched cells,
  by matched set and by person (V_set + V_person - V_set&person, Cameron, Gelbach and Miller
  2011), with statsmodels' small-sample factors G/(G-1) (N-1)/(N-K); with every person in one
  set it is exactly statsmodels' WLS clustered by set. The covariance between horizons (for
  joint Wald tests) comes from the same scores. Intervals use t with (clusters - 1) degrees of
  freedom, clusters being the fewer of sets and persons.
- cluster_bootstrap: resamples clusters with replacement (multinomial counts, all draws at
  once with numpy), recomputes every horizon's estimate from per-cluster sums; percentile
  intervals, standard error and covariance from the draws.
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

    @property
    def std_error(self) -> np.ndarray:
        return np.sqrt(np.clip(np.diag(self.covariance), 0, None))

    def p_value(self) -> np.ndarray:
        """Two-sided p-value of each estimate against zero (t with clusters - 1 df)."""
        with np.errstate(divide="ignore", invalid="ignore"):
            t = np.where(self.std_error > 0, self.estimate / self.std_error, np.nan)
        return 2 * stats.t.sf(np.abs(t), df=np.maximum(self.n_clusters - 1, 1))

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


def require_cells(cells: pd.DataFrame, where: str) -> np.ndarray:
    horizons = np.unique(cells["horizon"].to_numpy())
    if horizons.size == 0:
        raise StudyTableError(where, "no cell has both a treated and a control value observed")
    if cells["cluster"].nunique() < 2:
        raise StudyTableError(where, "fewer than two independent clusters: no interval can be given")
    return horizons


def clusters_per_horizon(cells: pd.DataFrame, horizons: np.ndarray) -> np.ndarray:
    """Independent clusters per horizon: the fewer of matched sets and persons for matched cells
    (two-way clustering), else the cluster column's."""
    if {"set", "unit"} <= set(cells.columns):
        by = cells.groupby("horizon")
        return np.minimum(by["set"].nunique(), by["unit"].nunique()).reindex(horizons).to_numpy()
    return cells.groupby("horizon")["cluster"].nunique().reindex(horizons).to_numpy()


def cluster_robust(cells: pd.DataFrame, alpha: float, where: str) -> HorizonEstimates:
    """Weighted difference of means per horizon with a cluster-robust covariance.

    Cells from matched sets (columns "set" and "unit") are clustered two ways, by matched set
    and by person (Cameron, Gelbach and Miller 2011): V = V_set + V_person - V_set&person. The
    set captures the pairing; the person captures a control reused in several sets (with
    replacement, in a full-matching subclass, or in several quarters) and a person who is a
    control before becoming a client, without chaining every set that shares anyone into one
    cluster. Other cells (the naive comparison) are clustered on their "cluster" column alone.
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
    two_way = {"set", "unit"} <= set(cells.columns)
    ways = [(cells["set"].to_numpy(), 1.0), (cells["unit"].to_numpy(), 1.0)] if two_way else \
        [(cells["cluster"].to_numpy(), 1.0)]
    if two_way:
        both = pd.factorize(pd.MultiIndex.from_arrays([cells["set"].to_numpy(), cells["unit"].to_numpy()]))[0]
        ways.append((both, -1.0))
    covariance = np.zeros((n_h, n_h))
    for groups, sign in ways:
        codes, index = np.unique(groups, return_inverse=True)
        scores = np.zeros((codes.size, n_h))
        np.add.at(scores, (index, h), influence)
        g = codes.size
        covariance += sign * (g / max(g - 1, 1)) * (scores.T @ scores)
    cells_per_horizon = np.bincount(h, minlength=n_h).astype(float)
    scale = np.sqrt((cells_per_horizon - 1) / np.maximum(cells_per_horizon - 2, 1))  # statsmodels' (N-1)/(N-K)
    covariance *= np.outer(scale, scale)
    if two_way:  # the difference of sums can fall below zero in a small sample: clip (CGM 2011)
        values, vectors = np.linalg.eigh(covariance)
        covariance = (vectors * np.clip(values, 0, None)) @ vectors.T
    n_clusters = clusters_per_horizon(cells, horizons)
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
            table = np.zeros(shape)
            np.add.at(table, (cluster_index[mask], h[mask]), values[mask])
            sums[side, name] = table

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
