"""Uncertainty for weighted treated-control differences that respects matched sets.

Both methods take a long table of cells: horizon, treated (bool), y, w (weight), cluster.
The estimate at each horizon is the weighted mean of y among treated minus that among
controls; with matching weights normalised within each set this is the mean over sets of
(treated value - weighted mean of its controls), the ATT.

Clusters are matched sets, merged when they share a unit: under replacement a control reused
in several sets (or, given a person id, the same person in several strata) ties those sets
together, so they are resampled and summed as one cluster instead of being counted as
independent.
- cluster_robust: a statsmodels WLS of y on treated per horizon, cluster-robust covariance by
  cluster; the covariance between horizons (for joint Wald tests) comes from the same fits'
  per-cluster scores, scaled by statsmodels' small-sample factor, so its diagonal is exactly
  statsmodels' variance. Intervals use t with (clusters - 1) degrees of freedom.
- cluster_bootstrap: resamples clusters with replacement (multinomial counts, all draws at
  once with numpy), recomputes every horizon's estimate from per-cluster sums; percentile
  intervals, standard error and covariance from the draws.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
import statsmodels.api as sm
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
    return cells.groupby("horizon")["cluster"].nunique().reindex(horizons).to_numpy()


def cluster_robust(cells: pd.DataFrame, alpha: float, where: str) -> HorizonEstimates:
    horizons = require_cells(cells, where)
    clusters, cluster_index = np.unique(cells["cluster"].to_numpy(), return_inverse=True)
    influence = np.zeros((clusters.size, horizons.size))
    estimate, variance = np.zeros(horizons.size), np.zeros(horizons.size)
    for j, (_, cell) in enumerate(cells.assign(cluster_code=cluster_index).groupby("horizon", sort=True)):
        groups = cell["cluster_code"].to_numpy()
        design = sm.add_constant(cell["treated"].to_numpy(float), has_constant="add")
        fit = sm.WLS(cell["y"].to_numpy(float), design, weights=cell["w"].to_numpy(float)).fit(
            cov_type="cluster", cov_kwds={"groups": groups})
        estimate[j], variance[j] = fit.params[1], fit.cov_params()[1, 1]
        scores = fit.model.wexog * fit.wresid[:, None]
        np.add.at(influence[:, j], groups, scores @ fit.normalized_cov_params[:, 1])
    # statsmodels' small-sample factor per horizon, read off its variance, carried to the covariances.
    raw = (influence**2).sum(axis=0)
    ratio = np.divide(variance, raw, out=np.ones_like(raw), where=raw > 0)
    factor = np.sqrt(np.clip(ratio, 0, None))  # a variance of rounding size can come out just below 0
    covariance = (influence * factor).T @ (influence * factor)
    n_clusters = clusters_per_horizon(cells, horizons)
    half = stats.t.ppf(1 - alpha / 2, df=np.maximum(n_clusters - 1, 1)) * np.sqrt(np.clip(variance, 0, None))
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
