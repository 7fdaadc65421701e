"""The parts generate() makes ahead on another thread: made there, failures surface."""

from __future__ import annotations

import sys
import threading
from pathlib import Path

import pytest

try:
    import safepool  # noqa: F401
except ImportError:  # running from a checkout without an installed package
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

from safepool.synth import _generate, _registers, generate


def test_codes_families_and_te_events_are_made_on_another_thread(monkeypatch):
    made_on: dict[str, int] = {}
    for name in ("employment_services", "benefits"):
        real = getattr(_registers, name)

        def spy(*args, _real=real, _name=name):
            made_on[_name] = threading.get_ident()
            return _real(*args)

        monkeypatch.setattr(_registers, name, spy)
    for name in ("identities", "make_families"):
        real = getattr(_generate, name)

        def spy(*args, _real=real, _name=name):
            made_on[_name] = threading.get_ident()
            return _real(*args)

        monkeypatch.setattr(_generate, name, spy)
    synthetic = generate(persons=600, seed=3)
    main = threading.get_ident()
    assert made_on["benefits"] == main
    for name in ("identities", "make_families", "employment_services"):
        assert made_on[name] != main, name
    assert list(synthetic.tables) == list(_generate.REGISTER_NAMES)


def test_a_failure_on_the_other_thread_ends_generate_and_its_thread(monkeypatch):
    def broken(*_args):
        raise RuntimeError("TE events failed")

    monkeypatch.setattr(_registers, "employment_services", broken)
    before = threading.active_count()
    with pytest.raises(RuntimeError, match="TE events failed"):
        generate(persons=600, seed=3)
    assert threading.active_count() == before
