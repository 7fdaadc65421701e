"""The demo's steps overlap where nothing depends on them, and never where something does:
the permits are asked for while synthesis makes the data, and each register is checked as soon as
it is written, but nothing is released until every check has passed."""

from __future__ import annotations

import subprocess
import sys

import pytest

from safepool.demo import DEMO_PERMIT, run_demo
from safepool.faults import Unavailable
from safepool.governance.context import Governance
from safepool.governance.holders import ASSIGN, DECIDE
from safepool.registers.check import RegisterCheck
from safepool.session import Session


def test_a_failed_register_check_stops_the_demo_before_anything_is_released(tmp_path, monkeypatch):
    checked: list[str] = []

    def failing_check(self: Session, names: list[str] | None = None) -> list[RegisterCheck]:
        checked.append(self.actor.name)
        return [RegisterCheck(register="population", kind="csv", drift=["column sex is missing"])]

    monkeypatch.setattr(Session, "check_registers", failing_check)
    root = tmp_path / "demo"
    with pytest.raises(Unavailable, match="register check failed: column sex is missing"):
        run_demo(root, persons=1000, seed=1, city=False)
    assert checked  # every holder's steward was asked
    audit = Governance.open(root).audit
    assert audit.records(action=ASSIGN)  # the stewards were in place to check
    assert not audit.records(action=DECIDE)  # no holder decided on a release
    assert not (root / "pool" / DEMO_PERMIT).exists()


HALF_WAY = """
import sys
from pathlib import Path
from safepool import beside
from safepool.demo import run_demo
from safepool.synth import _registers

def broken(*args, **kwargs):
    raise RuntimeError("the visits could not be made")

_registers.social_health = broken
beside.started_by_safepool()  # as the `safepool` command: the synthesis child is forked and has it
try:
    run_demo(Path(sys.argv[1]), persons=1000, seed=1, city=False)
except RuntimeError as error:
    print(error)
"""


def test_synthesis_failing_half_way_stops_the_demo_with_its_error_and_nothing_released(tmp_path):
    """The permits are approved, and registers checked as they are written, while synthesis still
    runs: when it fails after some registers are written, the demo ends with synthesis's own error
    (no wait for registers that never come), and no holder has released anything. (In a process of
    its own, started as the command starts it, so that synthesis is forked with the broken step.)"""
    root = tmp_path / "demo"
    done = subprocess.run([sys.executable, "-c", HALF_WAY, str(root)], capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.strip().splitlines()[-1] == "the visits could not be made"
    audit = Governance.open(root).audit
    checked = {name for record in audit.records(action="registers_check") for name in (record.target or "").split(",")}
    assert "social_health" not in checked
    assert Governance.open(root).permits.get(DEMO_PERMIT).approved  # asked for on the catalogue alone
    assert not audit.records(action=DECIDE)
    assert not (root / "pool" / DEMO_PERMIT).exists()
