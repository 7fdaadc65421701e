"""The console script's end (safepool.cli.main): the command's exit code and all its output come
out, exit handlers run once, and a thread still working is waited for; only the interpreter's
teardown of imported modules is skipped."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path


def run_main(arguments: list[str], before: str = "") -> subprocess.CompletedProcess[str]:
    script = f"import sys\nfrom safepool.cli import main\n{before}\nsys.argv = ['safepool', *{arguments!r}]\nmain()\n"
    return subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120)


def test_the_exit_code_and_the_whole_output_come_out():
    done = run_main(["--help"])
    assert done.returncode == 0
    assert "Usage: safepool" in done.stdout and done.stdout.rstrip().endswith("╯")  # the last box is closed
    wrong = run_main(["no-such-command"])
    assert wrong.returncode == 2
    assert "No such command" in wrong.stderr


def test_exit_handlers_run_once(tmp_path: Path):
    marker = tmp_path / "handler"
    done = run_main(["--help"], f"import atexit\natexit.register(lambda: open({str(marker)!r}, 'a').write('ran\\n'))")
    assert done.returncode == 0
    assert marker.read_text() == "ran\n"


def test_a_thread_still_working_is_waited_for(tmp_path: Path):
    marker = tmp_path / "thread"
    done = run_main(["--help"], "import threading, time\n"
                    f"threading.Thread(target=lambda: (time.sleep(0.5), open({str(marker)!r}, 'w').write('done'))).start()")
    assert done.returncode == 0
    assert marker.read_text() == "done"
