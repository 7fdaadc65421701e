"""The demo's work beside it (synthesis, the city's use) runs in forked children while that is
safe (a process the `safepool` command started, before the chart renderer's engine has) and in
fresh interpreters otherwise (safepool.beside): the demo gives the same summary both ways."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

SCRIPT = """
import json, os, re, sys
from pathlib import Path
from safepool import beside
from safepool.demo import run_demo

beside.started_by_safepool()  # as the `safepool` command says it
forks = []
fork = os.fork
os.fork = lambda: forks.append(1) or fork()

def comparable(summary):
    # paths name the workspace, the build's seconds vary, and the unusual_hours alerts depend on the
    # hour each run was made (one run before 19:00 in Helsinki, the other after it, differ there)
    return [re.sub(r",? ?[0-9]+ unusual_hours alerts?", "", re.sub(r"built in [0-9.]+ s", "built in ? s", line))
            for line in summary if isinstance(line, str)]

root = Path(sys.argv[1])
forked = comparable(run_demo(root / "forked", persons=1000, seed=1))
assert len(forks) == 2  # synthesis and the city's use, forked: nothing had drawn a chart yet
assert beside._FORK_UNSAFE  # the study's report has
fresh = comparable(run_demo(root / "fresh", persons=1000, seed=1))
assert len(forks) == 2  # both in fresh interpreters this time
print(json.dumps([forked, fresh]))
"""


def test_the_demo_gives_the_same_summary_with_forked_children_and_with_fresh_interpreters(tmp_path: Path):
    done = subprocess.run([sys.executable, "-c", SCRIPT, str(tmp_path)], capture_output=True, text=True,
                          timeout=600)
    assert done.returncode == 0, done.stderr[-2000:]
    forked, fresh = json.loads(done.stdout.strip().splitlines()[-1])
    assert any(line.startswith("Customer information under the city's permit") for line in forked)
    assert forked == fresh


STOPPED = """
import sys, time
from pathlib import Path
import safepool.beside, safepool.demo, safepool.demo_people

safepool.beside.started_by_safepool()  # as the command: the child is forked, with the slow synthesis

def slow_synthesis(*args, **kwargs):
    time.sleep(120)

def failing(*args, **kwargs):
    raise RuntimeError("stopped while synthesis ran")

safepool.demo.synthesise = slow_synthesis
safepool.demo_people.add_users = failing
started = time.monotonic()
try:
    safepool.demo.run_demo(Path(sys.argv[1]) / "demo", persons=1000, seed=1)
except RuntimeError:
    print(f"{time.monotonic() - started:.1f}")
"""


def test_an_error_while_synthesis_runs_stops_it_instead_of_waiting_for_it(tmp_path: Path):
    """An error (or Ctrl-C) in the demo's own process while synthesis still runs stops synthesis
    and comes out at once, instead of waiting for synthesis to end (here two minutes)."""
    done = subprocess.run([sys.executable, "-c", STOPPED, str(tmp_path)], capture_output=True, text=True,
                          timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    assert float(done.stdout.strip().splitlines()[-1]) < 30
