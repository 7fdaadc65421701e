"""Work that runs in a process of its own beside this one, on the machine's other cores.

Python runs one thread of Python at a time, so independent work (the demo's second permit, with
its own people) goes to a fresh interpreter (`python -m safepool.beside`). It is given the
function and its arguments, pickled, on a pipe, and gives back its result or its error the same
way. Importing safepool's analyses costs a fresh interpreter several seconds of CPU, so the
interpreter can be made `ready` early, importing the function's module while this process does
other work, and be given the arguments once they exist. It never imports the caller's script:
multiprocessing's "spawn" does, and a script without an `if __name__ == "__main__"` guard would
then run again in the child (for the demo: empty the workspace the study is building in). Its result, or its error, is taken with `result()`;
leaving the block before that stops the process, so a failure here never leaves work running
behind it.
"""

from __future__ import annotations

import importlib
import os
import pickle
import subprocess
import sys
from collections.abc import Callable
from typing import Any, Generic, TypeVar

T = TypeVar("T")


class Started(Generic[T]):
    """A function running beside this process."""

    def __init__(self, process: subprocess.Popen, answer: int) -> None:
        self._process, self._answer = process, answer
        self._taken = False

    def result(self) -> T:
        """Wait for it; its own exception is raised here."""
        self._taken = True
        with os.fdopen(self._answer, "rb") as answer:
            payload = answer.read()
        self._process.wait()
        if not payload:
            raise RuntimeError(f"the work beside this process ended without an answer (exit code "
                               f"{self._process.returncode})")
        done, value = pickle.loads(payload)
        if not done:
            raise value
        return value

    def stop(self) -> None:
        if self._process.poll() is None:
            self._process.kill()
        self._process.wait()
        if not self._taken:  # the answer's end of the pipe, never read
            self._taken = True
            os.close(self._answer)


class Ready(Generic[T]):
    """A fresh interpreter that has imported (or is importing) a function's module and waits for
    its arguments."""

    def __init__(self, function: Callable[..., T], started: list[Started], preload: tuple[str, ...] = ()) -> None:
        self._function = function
        self._answer, child_end = os.pipe()
        environment = {**os.environ, "PYTHONPATH": os.pathsep.join(p for p in sys.path if p)}
        command = [sys.executable, "-m", "safepool.beside", str(child_end), function.__module__, *preload]
        self._process = subprocess.Popen(command, stdin=subprocess.PIPE, pass_fds=(child_end,), env=environment)
        os.close(child_end)
        self._started: Started[T] = Started(self._process, self._answer)
        started.append(self._started)  # stopped on leaving the block, whether given its arguments or not

    def start(self, *args: Any) -> Started[T]:
        """Run the function on `args` (picklable); once only."""
        assert self._process.stdin is not None
        with self._process.stdin:
            self._process.stdin.write(pickle.dumps((self._function, args)))
        return self._started


class Beside:
    """Processes started for independent work; `with Beside() as beside: beside.start(f, ...)`."""

    def __init__(self) -> None:
        self._started: list[Started] = []

    def ready(self, function: Callable[..., T], preload: tuple[str, ...] = ()) -> Ready[T]:
        """A new interpreter that imports `function`'s module (and the modules named in `preload`,
        which it imports only when running) now, and runs it when `start`ed."""
        return Ready(function, self._started, preload)

    def start(self, function: Callable[..., T], *args: Any) -> Started[T]:
        """Run `function(*args)` (both picklable, the function importable) in a new interpreter."""
        return self.ready(function).start(*args)

    def __enter__(self) -> Beside:
        return self

    def __exit__(self, *_: object) -> None:
        for started in self._started:
            started.stop()  # done by now unless this process failed first: then it stops too


def _serve(answer_fd: int, modules: list[str]) -> None:
    """The child's side: import the function's module and the preloaded ones, then run the function
    read from stdin and write (done, result or error) back. A caller that ends before sending
    leaves stdin empty: the child then ends too."""
    for module in modules:
        importlib.import_module(module)
    try:
        function, args = pickle.load(sys.stdin.buffer)
    except EOFError:
        return
    try:
        outcome: tuple[bool, Any] = (True, function(*args))
    except Exception as error:  # noqa: BLE001 (handed to the caller, raised there)
        outcome = (False, error)
    try:
        payload = pickle.dumps(outcome)
    except Exception:  # noqa: BLE001 (an error that does not pickle is named by its type)
        payload = pickle.dumps((False, RuntimeError(f"the work beside failed: {type(outcome[1]).__name__}")))
    with os.fdopen(answer_fd, "wb") as answer:
        answer.write(payload)


if __name__ == "__main__":
    _serve(int(sys.argv[1]), sys.argv[2:])
