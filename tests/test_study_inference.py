"""The default intervals (cluster_jackknife): the paired t-test when every person is in one set, wider
than the plain cluster-robust ones when a few controls carry much of the weight, with fewer degrees
of freedom, and one joint covariance for the horizons."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from safepool.study.inference import cluster_jackknife, cluster_robust


def pair_cells(differences: np.ndarray, controls: np.ndarray, persons: np.ndarray | None = None,
               horizon: int = 4) -> pd.DataFrame:
    """1:1 sets: treated value = control value + difference; persons numbered apart unless given."""
    n = differences.size
    persons = np.arange(n, 2 * n) if persons is None else persons
    return pd.DataFrame({"set": np.r_[np.arange(n), np.arange(n)], "horizon": horizon,
                         "treated": np.r_[np.ones(n, bool), np.zeros(n, bool)],
                         "y": np.r_[controls + differences, controls], "w": 1.0,
                         "unit": np.r_[np.arange(n), persons], "cluster": np.r_[np.arange(n), np.arange(n)]})


def test_with_every_person_in_one_set_it_is_the_paired_t_test():
    rng = np.random.default_rng(3)
    differences, controls = rng.normal(0.3, 1.0, 40), rng.normal(0, 1, 40)
    result = cluster_jackknife(pair_cells(differences, controls), 0.05, "test")
    paired = stats.ttest_rel(controls + differences, controls)
    low, high = paired.confidence_interval()
    assert result.estimate[0] == pytest.approx(differences.mean())
    assert result.std_error[0] == pytest.approx(differences.std(ddof=1) / np.sqrt(40))
    assert result.degrees_of_freedom[0] == pytest.approx(39)
    assert (result.ci_low[0], result.ci_high[0]) == (pytest.approx(low), pytest.approx(high))
    assert result.p_value()[0] == pytest.approx(paired.pvalue)


def test_a_control_reused_in_many_sets_widens_the_interval_and_lowers_the_degrees_of_freedom():
    rng = np.random.default_rng(4)
    n = 60
    persons = np.arange(n, 2 * n)
    persons[:20] = n  # one person is the control of a third of the sets (as in many quarters)
    controls = rng.normal(0, 1, n)
    controls[:20] = controls[0] + rng.normal(0, 0.3, 20)  # its outcomes alike from quarter to quarter
    cells = pair_cells(rng.normal(0.2, 1.0, n), controls, persons)
    jackknife, plain = cluster_jackknife(cells, 0.05, "test"), cluster_robust(cells, 0.05, "test")
    assert jackknife.estimate[0] == pytest.approx(plain.estimate[0])
    assert jackknife.std_error[0] > plain.std_error[0]
    assert jackknife.degrees_of_freedom[0] < plain.n_clusters[0] - 1
    assert jackknife.ci_high[0] - jackknife.ci_low[0] > plain.ci_high[0] - plain.ci_low[0]


def test_horizons_share_one_covariance():
    rng = np.random.default_rng(5)
    controls = rng.normal(0, 1, 50)
    differences = rng.normal(0.3, 1.0, 50)
    cells = pd.concat([pair_cells(differences, controls, horizon=4),
                       pair_cells(differences + rng.normal(0, 0.1, 50), controls, horizon=8)], ignore_index=True)
    result = cluster_jackknife(cells, 0.05, "test")
    assert list(result.horizons) == [4, 8]
    correlation = result.covariance[0, 1] / np.sqrt(result.covariance[0, 0] * result.covariance[1, 1])
    assert correlation > 0.9  # the same sets, nearly the same differences
    assert np.all(np.linalg.eigvalsh(result.covariance) >= -1e-12)
