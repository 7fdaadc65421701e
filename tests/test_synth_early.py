"""The parts generate() makes on another thread: made there, failures surface, the thread ends."""

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


def test_codes_and_families_are_made_on_another_thread_registers_here(monkeypatch):
    made_on: dict[str, int] = {}
    for module, names in ((_registers, ("employment_services", "benefits")), (_generate, ("identities", "make_families"))):
        for name in names:
            real = getattr(module, name)

            def spy(*args, _real=real, _name=name):
                made_on[_name] = threading.get_ident()
                return _real(*args)

            monkeypatch.setattr(module, name, spy)
    synthetic = generate(persons=600, seed=3)
    main = threading.get_ident()
    assert made_on["benefits"] == main and made_on["employment_services"] == main
    for name in ("identities", "make_families"):
        assert made_on[name] != main, name
    assert list(synthetic.tables) == list(_generate.REGISTER_NAMES)


def test_a_failure_on_the_other_thread_ends_generate_and_its_thread(monkeypatch):
    def broken(*_args):
        raise RuntimeError("families failed")

    monkeypatch.setattr(_generate, "make_families", broken)
    before = threading.active_count()
    with pytest.raises(RuntimeError, match="families failed"):
        generate(persons=600, seed=3)
    assert threading.active_count() == before
