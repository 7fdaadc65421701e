"""Pausing Python's cycle collector over work that makes many objects at once.

Rendering a report and answering a query each make hundreds of thousands of objects (boxes and
styles, or frames, arrays and rows) that set off collection after collection, each full one
walking every object of the process, while reference counting already frees nearly all of them.
The collector is paused while any thread does such work; the last one done restores it and runs
one young collection, which frees what the work left in cycles (all of it is still young).
"""

from __future__ import annotations

import gc
import threading
from collections.abc import Iterator
from contextlib import contextmanager

_LOCK = threading.Lock()
_state = {"working": 0, "was_enabled": False}


@contextmanager
def collector_paused() -> Iterator[None]:
    """The cycle collector paused for the duration (shared by every thread in it)."""
    with _LOCK:
        if not _state["working"]:
            _state["was_enabled"] = gc.isenabled()
            gc.disable()
        _state["working"] += 1
    try:
        yield
    finally:
        with _LOCK:
            _state["working"] -= 1
            restore = not _state["working"] and _state["was_enabled"]
            if restore:
                gc.enable()
        if restore:
            gc.collect(0)
