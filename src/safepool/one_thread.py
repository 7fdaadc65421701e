"""Numerical libraries held to one thread while an analysis computes.

On the 2-core machines safepool runs on, BLAS and OpenMP threads (numpy, scikit-learn) spin
against DuckDB's and against the process beside (CPU burnt waiting), and a result's last digits
would otherwise depend on the machine's core count."""

from __future__ import annotations

from contextlib import AbstractContextManager
from typing import Any

from threadpoolctl import threadpool_limits


def one_thread() -> AbstractContextManager[Any]:
    """BLAS and OpenMP held to one thread inside the `with` block."""
    return threadpool_limits(limits=1)
