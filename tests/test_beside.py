"""Work started beside this process (safepool.beside): its result and its error come back, and a
failure here stops it instead of leaving it running."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from safepool.beside import Beside
from safepool.faults import Invalid


def own_pid(offset: int) -> int:
    return os.getpid() + offset


def refuse(message: str) -> None:
    raise Invalid(message)


def wait_long(pid_file: Path) -> None:
    """Tell this process's id (whole: written aside and renamed, so the caller, which waits for the
    file to appear, never reads it half-written) and wait."""
    written = pid_file.with_suffix(".writing")
    written.write_text(str(os.getpid()))
    written.rename(pid_file)
    time.sleep(120)


def test_the_result_comes_from_another_process():
    with Beside() as beside:
        started = beside.start(own_pid, 0)
        assert started.result() != os.getpid()


def test_its_error_is_raised_where_the_result_is_taken():
    with Beside() as beside:
        started = beside.start(refuse, "the city's permit was refused")
        with pytest.raises(Invalid, match="the city's permit was refused"):
            started.result()


def test_a_failure_here_stops_the_work_beside(tmp_path):
    pid_file = tmp_path / "pid"
    with pytest.raises(RuntimeError, match="the study failed"):
        with Beside() as beside:
            beside.start(wait_long, pid_file)
            deadline = time.monotonic() + 60
            while not pid_file.exists() and time.monotonic() < deadline:
                time.sleep(0.05)
            raise RuntimeError("the study failed")
    pid = int(pid_file.read_text())
    with pytest.raises(ProcessLookupError):
        os.kill(pid, 0)


@pytest.mark.parametrize("started_by_safepool", [True, False])
def test_the_callers_script_is_not_run_again_in_the_child(tmp_path, started_by_safepool):
    """A script without a `__main__` guard: spawn would run it again in the child (and, for the
    demo, empty the workspace being built); the work beside runs in a forked copy, or in a fresh
    interpreter that imports only the function's module."""
    runs = tmp_path / "runs"
    script = tmp_path / "unguarded.py"
    script.write_text(
        "import os, sys\n"
        f"sys.path.insert(0, {str(Path(__file__).parent)!r})\n"
        f"open({str(runs)!r}, 'a').write('ran\\n')\n"
        "from safepool import beside\n"
        "from test_beside import own_pid\n"
        + ("beside.started_by_safepool()\n" if started_by_safepool else "")
        + f"assert beside.forks() is {started_by_safepool}\n"
        "with beside.Beside() as work:\n"
        "    assert work.start(own_pid, 0).result() != os.getpid()\n")
    subprocess.run([sys.executable, str(script)], check=True, timeout=120)
    assert runs.read_text() == "ran\n"


def test_a_process_safepool_did_not_start_makes_fresh_interpreters():
    """This test worker has run other tests (engines, threads safepool cannot see): a child forked
    from such a process once crashed in Arrow's memory, so its children are fresh interpreters,
    which have not imported what this process has."""
    import wave  # noqa: F401  (imported here, not in a fresh interpreter)

    with Beside() as beside:
        assert beside.start(imported_here, "wave").result() is False


def test_a_child_made_ready_early_runs_the_function_when_given_its_arguments():
    with Beside() as beside:
        ready = beside.ready(own_pid)
        time.sleep(0.2)  # this process works meanwhile
        assert ready.start(0).result() != os.getpid()


def test_a_child_made_ready_and_never_started_is_stopped():
    """The demo makes the city's process ready before synthesis; a synthesis that fails leaves
    no process waiting."""
    with Beside() as beside:
        beside.ready(own_pid)
        child = beside._started[0]._process
        assert child.poll() is None
    assert child.returncode is not None


def test_the_child_starts_with_what_this_process_imported_and_leaves_its_exit_handlers_alone(tmp_path):
    """Forked, the child has every module imported here without importing it again, and it ends
    without running this process's exit handlers (which would, say, remove a temporary folder of
    this process's twice)."""
    marker = tmp_path / "exit-handler-ran"
    script = tmp_path / "parent.py"
    script.write_text(
        "import atexit, sys, wave\n"
        f"sys.path.insert(0, {str(Path(__file__).parent)!r})\n"
        f"atexit.register(lambda: open({str(marker)!r}, 'a').write('ran\\n'))\n"
        "from safepool.beside import Beside, started_by_safepool\n"
        "from test_beside import imported_here\n"
        "started_by_safepool()\n"
        "with Beside() as beside:\n"
        "    assert beside.start(imported_here, 'wave').result() is True\n")
    subprocess.run([sys.executable, str(script)], check=True, timeout=120)
    assert marker.read_text() == "ran\n"  # once: in the parent only


def imported_here(module: str) -> bool:
    return module in sys.modules


def count_to(n: int, *, progress) -> int:
    for step in range(n):
        progress(f"step {step}")
    return n


def test_progress_messages_reach_this_process_in_order_before_the_result():
    heard: list[str] = []
    with Beside() as beside:
        ready = beside.ready(count_to, on_progress=heard.append)
        assert ready.start(3).result() == 3
    assert heard == ["step 0", "step 1", "step 2"]


def test_after_a_native_runtime_started_the_child_is_a_fresh_interpreter(tmp_path):
    """The chart renderer's engine runs threads a forked child would not have (a child drawing a
    chart then waited for them forever): once it has drawn here, the work beside starts in a
    fresh interpreter, which draws its own charts, and progress messages still arrive."""
    script = tmp_path / "parent.py"
    script.write_text(
        "import sys, wave\n"
        f"sys.path.insert(0, {str(Path(__file__).parent)!r})\n"
        "from safepool.beside import Beside, started_by_safepool\n"
        "from safepool.reports.chart_engine import vegalite_to_svg\n"
        "from test_beside import count_to, draw_a_chart, imported_here\n"
        "started_by_safepool()\n"
        "assert vegalite_to_svg({'mark': 'point', 'data': {'values': []}}).startswith('<svg')\n"
        "heard = []\n"
        "with Beside() as beside:\n"
        "    assert beside.start(imported_here, 'wave').result() is False\n"
        "    assert beside.start(draw_a_chart).result() is True\n"
        "    assert beside.ready(count_to, on_progress=heard.append).start(2).result() == 2\n"
        "assert heard == ['step 0', 'step 1']\n")
    subprocess.run([sys.executable, str(script)], check=True, timeout=120)


def draw_a_chart() -> bool:
    from safepool.reports.chart_engine import vegalite_to_svg

    return vegalite_to_svg({"mark": "point", "data": {"values": [{"x": 1}]}}).startswith("<svg")


def niceness_here_and_in_a_thread() -> tuple[int, int]:
    """This process's scheduling priority, and that of a thread it starts (Linux keeps one per thread)."""
    import threading

    seen: list[int] = []
    thread = threading.Thread(target=lambda: seen.append(os.getpriority(os.PRIO_PROCESS, 0)))
    thread.start()
    thread.join()
    return os.getpriority(os.PRIO_PROCESS, 0), seen[0]


@pytest.mark.parametrize("fresh_interpreter", [False, True])
def test_a_background_child_and_its_threads_run_at_the_lowest_priority(monkeypatch, fresh_interpreter):
    """The demo's city runs beside the study in the background: it must yield the cores to this
    process (whether forked or a fresh interpreter), and its engines' threads with it."""
    import safepool.beside

    monkeypatch.setattr(safepool.beside, "_STARTED_BY_SAFEPOOL", not fresh_interpreter)
    here = os.getpriority(os.PRIO_PROCESS, 0)
    with Beside() as beside:
        assert beside.ready(niceness_here_and_in_a_thread, background=True).start().result() == (19, 19)
        assert beside.start(niceness_here_and_in_a_thread).result() == (here, here)
    assert os.getpriority(os.PRIO_PROCESS, 0) == here


def test_a_yielding_thread_runs_below_this_process_and_gives_back_its_result_or_error():
    """The work runs on a thread of its own, YIELDING_STEP below the caller's priority (capped at
    the lowest); the caller's own priority stays; an error comes back as it was raised."""
    import threading

    from safepool.beside import BACKGROUND_NICE, YIELDING_STEP, yielding

    def where() -> tuple[int, int]:
        thread = threading.get_native_id()
        return thread, os.getpriority(os.PRIO_PROCESS, thread)

    caller = where()
    thread, niceness = yielding(where)
    assert thread != caller[0]
    assert niceness == min(BACKGROUND_NICE, caller[1] + YIELDING_STEP)
    assert where() == caller

    def failing() -> None:
        raise Invalid("no such register")

    with pytest.raises(Invalid, match="no such register"):
        yielding(failing)


def test_an_interrupted_wait_for_a_yielding_thread_goes_on_at_once():
    """Ctrl-C while the work still runs (here a signal whose handler raises) is not held up until
    the work ends: the demo's checks wait for synthesis, which stops only once the error is out."""
    import signal
    import threading

    from safepool.beside import yielding

    class Interrupted(Exception):
        pass

    def interrupt(*_: object) -> None:
        raise Interrupted

    release = threading.Event()
    previous = signal.signal(signal.SIGUSR1, interrupt)
    main = threading.get_ident()
    timer = threading.Timer(0.2, lambda: signal.pthread_kill(main, signal.SIGUSR1))
    try:
        timer.start()
        started = time.monotonic()
        with pytest.raises(Interrupted):
            yielding(release.wait, 30)
        assert time.monotonic() - started < 5
    finally:
        release.set()
        timer.cancel()
        signal.signal(signal.SIGUSR1, previous)
