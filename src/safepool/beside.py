"""Work that runs in a process of its own beside this one, on the machine's other cores.

Python runs one thread of Python at a time, so independent work (the demo's second permit, with
its own people) goes to a fresh process instead ("spawn": no copied locks or open databases).
Its result, or its error, is taken with `result()`; leaving the block before that stops the
process, so a failure here never leaves work running behind it.
"""

from __future__ import annotations

import multiprocessing
from collections.abc import Callable
from multiprocessing.pool import AsyncResult, Pool
from typing import Any, Generic, TypeVar

T = TypeVar("T")


class Started(Generic[T]):
    """A function running beside this process."""

    def __init__(self, running: AsyncResult) -> None:
        self._running = running

    def result(self) -> T:
        """Wait for it; its own exception is raised here."""
        return self._running.get()


class Beside:
    """Processes started for independent work; `with Beside() as beside: beside.start(f, ...)`."""

    def __init__(self) -> None:
        self._pools: list[Pool] = []

    def start(self, function: Callable[..., T], *args: Any) -> Started[T]:
        """Run `function(*args)` (both picklable) in a new process of its own."""
        pool = multiprocessing.get_context("spawn").Pool(1)
        self._pools.append(pool)
        return Started(pool.apply_async(function, args))

    def __enter__(self) -> Beside:
        return self

    def __exit__(self, *_: object) -> None:
        for pool in self._pools:
            pool.terminate()  # done by now unless this process failed first: then it stops too
            pool.join()
