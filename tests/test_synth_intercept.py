"""The selection intercept's bisection stops early and gives the number all 80 steps give."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

try:
    import safepool  # noqa: F401
except ImportError:  # running from a checkout without an installed package
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

from safepool.synth._panel import _sigmoid, _solve_intercept


def _all_steps(score: np.ndarray, target: float) -> float:
    lo, hi = -60.0, 30.0
    for _ in range(80):
        mid = 0.5 * (lo + hi)
        if _sigmoid(mid + score).sum() < target:
            lo = mid
        else:
            hi = mid
    return 0.5 * (lo + hi)


def test_early_stop_gives_the_same_intercept():
    rng = np.random.default_rng(11)
    for _ in range(60):
        m = int(rng.integers(1, 3_000))
        score = rng.normal(rng.normal(0, 5), rng.uniform(0.1, 3), m)
        target = float(rng.integers(0, m))
        assert _solve_intercept(score, target) == _all_steps(score, target)
