"""Work that runs in a process of its own beside this one, on the machine's other cores.

Python runs one thread of Python at a time, so independent work (the demo's synthesis, and its
second permit with its own people) goes to a child process, made `ready` early and given its
arguments later; it gives back its progress messages (when asked for) and then its result or
its error, pickled, on a pipe.

The child is forked from this process when that is safe: it then starts with every module this
process has imported, where a fresh interpreter spends several seconds of CPU importing
safepool's analyses again (at the demo's size, a tenth of all the CPU it uses). That is safe only
in a process safepool started itself (`started_by_safepool`, said by the `safepool` command
before it runs anything), whose children are made ready before it opens databases or starts
threads of its own, so that they inherit no connection, lock or worker they could trip over. A
process started elsewhere (a test runner, a notebook kernel, a web server) may hold engines and
threads safepool cannot see: a child forked from a test worker that had run other tests crashed
in Arrow's memory. A native runtime with threads of its own (the chart renderer's JavaScript
engine) cannot be forked either: its threads are not in the child, which would wait for them
forever; once one has started (`fork_unsafe`), safepool's own process stops forking too. In both
cases the child is a fresh interpreter (`python -m safepool.beside`), which imports the
function's module while this process goes on; the function must then be importable and its
arguments picklable. A forked child ends with `os._exit`, so that none of this process's exit
handlers (temporary folders, open files) runs twice.

Neither way runs the caller's script again (as multiprocessing's "spawn" does to a script
without an `if __name__ == "__main__"` guard, which for the demo would empty the workspace being
built). The result, or the error, is taken with `result()`; leaving the block before that stops
the child, so a failure here never leaves work running behind it.
"""

from __future__ import annotations

import importlib
import os
import pickle
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from typing import Any, BinaryIO, Generic, Protocol, TypeVar

T = TypeVar("T")
_PROGRESS, _DONE, _FAILED = "progress", "done", "failed"
BACKGROUND_NICE = 19  # the lowest scheduling priority, for a child made `background`
YIELDING_STEP = 10    # how much lower than this process a `yielding` thread runs
_FORK_UNSAFE: list[str] = []  # what has started in this process that a forked child would inherit broken
_STARTED_BY_SAFEPOOL = False  # said by the `safepool` command, before it runs anything


def yielding(function: Callable[..., T], *args: Any) -> T:
    """`function(*args)` on a thread of its own that runs YIELDING_STEP below this process's
    scheduling priority, its result or its error given back: for work of this process that should
    take a core only while the work beside it (a child on the critical path, such as the demo's
    synthesis) leaves one idle. Linux schedules threads, so the priority is the thread's alone
    (the engine threads it starts inherit it) and ends with it; where a thread's priority cannot
    be set, the function runs at this process's. A wait interrupted (Ctrl-C) goes on at once, and
    the process does not wait for the work at its exit."""
    outcome: dict[str, Any] = {}
    done = threading.Event()

    def run() -> None:
        thread = threading.get_native_id()
        try:
            os.setpriority(os.PRIO_PROCESS, thread, min(BACKGROUND_NICE, os.getpriority(os.PRIO_PROCESS, thread)
                                                        + YIELDING_STEP))
        except OSError:
            pass
        try:
            outcome["value"] = function(*args)
        except BaseException as exc:  # given back to the caller, raised there
            outcome["error"] = exc
        finally:
            done.set()

    threading.Thread(target=run, name="yielding", daemon=True).start()
    done.wait()
    if "error" in outcome:
        raise outcome["error"]
    return outcome["value"]


def started_by_safepool() -> None:
    """Say that safepool's own command started this process and has opened nothing yet: work beside
    it may be forked (see the module docstring)."""
    global _STARTED_BY_SAFEPOOL
    _STARTED_BY_SAFEPOOL = True


def forks() -> bool:
    """Whether work beside this process starts as a forked copy of it (else a fresh interpreter)."""
    return _STARTED_BY_SAFEPOOL and not _FORK_UNSAFE


def fork_unsafe(reason: str) -> None:
    """Say that this process now runs something a forked child would inherit broken (`reason`
    names it): work beside it starts in a fresh interpreter from now on."""
    if reason not in _FORK_UNSAFE:
        _FORK_UNSAFE.append(reason)


class _Process(Protocol):
    returncode: int | None

    def poll(self) -> int | None: ...
    def wait(self) -> int: ...
    def kill(self) -> None: ...


class Forked:
    """A forked process, waited for once (its exit code kept), with subprocess.Popen's calls, from
    any thread: the thread that takes its answer and the one that stops it may both wait for it
    (on an error or Ctrl-C), and only one of them may collect it from the kernel, so it is
    collected under a lock, never blocking there (a blocked collector would keep the other
    thread from stopping the process it waits for)."""

    def __init__(self, pid: int) -> None:
        self.pid = pid
        self.returncode: int | None = None
        self._collecting = threading.Lock()

    def poll(self) -> int | None:
        with self._collecting:
            if self.returncode is None:
                pid, status = os.waitpid(self.pid, os.WNOHANG)
                if pid:
                    self.returncode = os.waitstatus_to_exitcode(status)
            return self.returncode

    def wait(self) -> int:
        pause = 0.001
        while (code := self.poll()) is None:
            time.sleep(pause)
            pause = min(2 * pause, 0.05)
        return code

    def kill(self) -> None:
        if self.poll() is None:
            os.kill(self.pid, signal.SIGKILL)


class Started(Generic[T]):
    """A function running beside this process."""

    def __init__(self, process: _Process, answer: int, on_progress: Callable[[Any], None] | None = None) -> None:
        self._process, self._answer, self._on_progress = process, answer, on_progress
        self._taken = False

    def result(self) -> T:
        """Wait for it, handing each progress message it sends meanwhile to `on_progress`; its own
        exception is raised here."""
        self._taken = True
        with os.fdopen(self._answer, "rb") as answer:
            while True:
                try:
                    kind, value = pickle.load(answer)
                except EOFError:
                    self._process.wait()
                    raise RuntimeError(f"the work beside this process ended without an answer (exit code "
                                       f"{self._process.returncode})") from None
                if kind != _PROGRESS:
                    break
                if self._on_progress is not None:
                    self._on_progress(value)
        self._process.wait()
        if kind == _FAILED:
            raise value
        return value

    def stop(self) -> None:
        self._process.kill()  # a process that has ended is left as it is
        self._process.wait()
        if not self._taken:  # the answer's end of the pipe, never read
            self._taken = True
            os.close(self._answer)


class Ready(Generic[T]):
    """A child process, made now, that imports the modules named in `preload` and waits for its
    function's arguments. With `on_progress`, the function is also given `progress=`, a callable
    whose messages reach `on_progress` in this process while it waits for the result."""

    def __init__(self, function: Callable[..., T], started: list[Started], preload: tuple[str, ...] = (),
                 on_progress: Callable[[Any], None] | None = None, background: bool = False) -> None:
        self._function = function
        self._answer, child_answer = os.pipe()
        child_arguments, self._arguments = os.pipe()
        self._forked = forks()
        reports_progress = on_progress is not None
        if self._forked:
            pid = os.fork()
            if pid == 0:
                os.close(self._answer)
                os.close(self._arguments)
                _child(function, child_arguments, child_answer, preload, reports_progress)  # never returns
            process: _Process = Forked(pid)
        else:
            environment = {**os.environ, "PYTHONPATH": os.pathsep.join(p for p in sys.path if p)}
            command = [sys.executable, "-m", "safepool.beside", str(child_arguments), str(child_answer),
                       str(int(reports_progress)), function.__module__, *preload]
            process = subprocess.Popen(command, pass_fds=(child_arguments, child_answer), env=environment)
        if background:  # set before the child starts a thread: its threads inherit the priority
            os.setpriority(os.PRIO_PROCESS, process.pid, BACKGROUND_NICE)
        os.close(child_answer)
        os.close(child_arguments)
        self._started: Started[T] = Started(process, self._answer, on_progress)
        started.append(self._started)  # stopped on leaving the block, whether given its arguments or not

    def start(self, *args: Any, **kwargs: Any) -> Started[T]:
        """Run the function on `args` and `kwargs` (picklable); once only."""
        given = (args, kwargs) if self._forked else (self._function, args, kwargs)
        with os.fdopen(self._arguments, "wb") as arguments:
            arguments.write(pickle.dumps(given))
        return self._started


class Beside:
    """Processes started for independent work; `with Beside() as beside: beside.start(f, ...)`."""

    def __init__(self) -> None:
        self._started: list[Started] = []

    def ready(self, function: Callable[..., T], preload: tuple[str, ...] = (),
              on_progress: Callable[[Any], None] | None = None, background: bool = False) -> Ready[T]:
        """A child made now, which imports the modules named in `preload` while this process goes
        on, and runs `function` when `start`ed (see Ready for `on_progress`). A `background` child
        runs at the lowest priority: it takes a core only while this process leaves one idle, so
        work that can wait never slows the work that cannot."""
        return Ready(function, self._started, preload, on_progress, background)

    def start(self, function: Callable[..., T], *args: Any, **kwargs: Any) -> Started[T]:
        """Run `function(*args, **kwargs)` (the arguments picklable) in a child made now."""
        return self.ready(function).start(*args, **kwargs)

    def __enter__(self) -> Beside:
        return self

    def __exit__(self, *_: object) -> None:
        for started in self._started:
            started.stop()  # done by now unless this process failed first: then it stops too


def _child(function: Callable[..., Any] | None, arguments_fd: int, answer_fd: int, preload: tuple[str, ...],
           reports_progress: bool) -> None:
    """The child's side: fresh standard streams (a thread of the parent may have held the old ones'
    locks at a fork), import the preloaded modules, then run the function (read from the pipe
    too when it is None: a fresh interpreter) on the arguments read from the pipe and write its
    progress messages and then (done, result) or (failed, error) back. A caller that ends before
    sending closes the pipe empty: the child then ends too."""
    code = 1
    try:
        sys.stdout = open(os.dup(1), "w", buffering=1, closefd=True)  # noqa: SIM115 (ends with the child)
        sys.stderr = open(os.dup(2), "w", buffering=1, closefd=True)  # noqa: SIM115
        for module in preload:
            importlib.import_module(module)
        with os.fdopen(arguments_fd, "rb") as arguments:
            given = arguments.read()
        if given:
            function, args, kwargs = (function, *pickle.loads(given)) if function else pickle.loads(given)
            with os.fdopen(answer_fd, "wb", buffering=0) as answer:
                _answer(answer, function, args, kwargs, reports_progress)
        code = 0
    finally:
        for stream in (sys.stdout, sys.stderr):
            stream.flush()
        os._exit(code)


def _answer(answer: BinaryIO, function: Callable[..., Any], args: tuple[Any, ...], kwargs: dict[str, Any],
            reports_progress: bool) -> None:
    def send(frame: tuple[str, Any]) -> None:
        answer.write(pickle.dumps(frame))

    if reports_progress:
        kwargs = {**kwargs, "progress": lambda message: send((_PROGRESS, message))}
    try:
        outcome: tuple[str, Any] = (_DONE, function(*args, **kwargs))
    except Exception as error:  # noqa: BLE001 (handed to the caller, raised there)
        outcome = (_FAILED, error)
    try:
        send(outcome)
    except Exception:  # noqa: BLE001 (an error that does not pickle is named by its type)
        send((_FAILED, RuntimeError(f"the work beside failed: {type(outcome[1]).__name__}")))


if __name__ == "__main__":  # a fresh interpreter: arguments pipe, answer pipe, progress?, module, preloaded modules
    importlib.import_module(sys.argv[4])
    _child(None, int(sys.argv[1]), int(sys.argv[2]), tuple(sys.argv[5:]), sys.argv[3] == "1")
