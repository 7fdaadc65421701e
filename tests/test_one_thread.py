"""The study computes with its numerical libraries held to one thread, and lets them go after."""

from __future__ import annotations

from pathlib import Path

from threadpoolctl import threadpool_info

from safepool.study import run as study_run


def _threads() -> set[int]:
    return {pool["num_threads"] for pool in threadpool_info()}


def test_the_study_computes_on_one_blas_thread(monkeypatch) -> None:
    seen: list[set[int]] = []

    def analysed(*_args: object) -> str:
        seen.append(_threads())
        return "result"

    monkeypatch.setattr(study_run, "_run_study", analysed)
    before = _threads()
    assert study_run.run_study(Path("."), None, None, None) == "result"  # type: ignore[arg-type]
    assert seen == [{1}]
    assert _threads() == before  # given back as they were
