"""Stewards checking at the same time share one limit: at most CHECKS_AT_ONCE registers are read at
once in the process, and each caller gets what it gets checking alone. In the demo, where every
holder's steward checks at once, a source that fails still stops it before anything is released."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import asdict
from pathlib import Path
from typing import Any

import pytest

import safepool.demo as demo
import safepool.registers.check as check
from safepool.faults import Unavailable
from safepool.governance.context import Governance
from safepool.governance.holders import DECIDE
from safepool.synth.load import synthesise
from safepool.workspace import Workspace


@pytest.fixture(scope="module")
def synthetic(tmp_path_factory: pytest.TempPathFactory) -> Workspace:
    root = tmp_path_factory.mktemp("synthetic")
    synthesise(root, persons=300, seed=5)
    return Workspace.open(root)


def test_callers_at_once_read_at_most_checks_at_once_registers_in_all(synthetic, monkeypatch):
    names = [register.name for register in synthetic.catalogue().registers]
    alone = {name: asdict(check.check_registers(synthetic, [name])[0]) for name in names}
    reading, most, lock = 0, 0, threading.Lock()
    opened = check.open_register

    @contextmanager
    def counted(*args: Any, **kwargs: Any) -> Iterator[Any]:
        nonlocal reading, most
        with lock:
            reading += 1
            most = max(most, reading)
        try:
            time.sleep(0.05)  # long enough for every other caller to be reading too, were it let
            with opened(*args, **kwargs) as reader:
                yield reader
        finally:
            with lock:
                reading -= 1

    monkeypatch.setattr(check, "open_register", counted)
    groups = [names[i::4] for i in range(4)]  # four callers, each of which reads two at a time
    with ThreadPoolExecutor(len(groups)) as callers:
        results = [callers.submit(check.check_registers, synthetic, group) for group in groups]
    assert most == check.CHECKS_AT_ONCE
    for group, result in zip(groups, results):
        assert [asdict(found) for found in result.result()] == [alone[name] for name in group]


def synthesise_and_lose_benefits(path: Path, **kwargs: Any) -> Any:
    """Synthesis whose benefits source is gone by the time the holders check (module level: the
    demo may run it in a fresh interpreter, which imports it by name)."""
    registers = synthesise(path, **kwargs)
    [benefits] = [register for register in registers if register.name == "benefits"]
    Workspace.open(path).source_path(benefits.source).unlink()
    return registers


def test_a_source_failing_while_every_holder_checks_stops_the_demo_before_any_release(tmp_path, monkeypatch):
    monkeypatch.setattr(demo, "synthesise", synthesise_and_lose_benefits)
    root = tmp_path / "demo"
    with pytest.raises(Unavailable, match="register check failed: register benefits: csv source .* does not exist"):
        demo.run_demo(root, persons=1000, seed=1, city=False)
    audit = Governance.open(root).audit
    checks = audit.records(action="registers_check")
    assert sorted(record.actor for record in checks) == sorted(demo.HOLDER_STEWARDS)  # every holder checked
    assert [record.actor for record in checks if record.outcome != "ok"] == ["kela.steward"]
    assert not audit.records(action=DECIDE)  # no holder decided on a release
    assert not (root / "pool" / demo.DEMO_PERMIT).exists()
