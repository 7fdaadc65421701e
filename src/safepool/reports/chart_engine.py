"""Starting the chart renderer ahead of the report that needs it.

vl-convert's JavaScript engine takes about a second of CPU to start, on the first chart drawn.
It releases the GIL while it works, so starting it in a thread while the analysis computes takes
that second off the report's path (the report's first chart then finds it ready)."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager

import vl_convert

_EMPTY_CHART = {"mark": "point", "data": {"values": []}}


@contextmanager
def chart_engine_started(needed: bool = True) -> Iterator[None]:
    """Inside the block, the engine starts in a thread of its own (when `needed`: a run that draws
    no chart does not pay for it); the thread is joined on every way out, so it never outlives
    the run that started it."""
    thread = start_chart_engine() if needed else None
    try:
        yield
    finally:
        if thread is not None:
            thread.join()


def start_chart_engine() -> threading.Thread:
    """Start the engine in a thread of its own; join it before the process may end."""
    thread = threading.Thread(target=_start, name="chart engine start", daemon=True)
    thread.start()
    return thread


def _start() -> None:
    try:
        vl_convert.vegalite_to_svg(_EMPTY_CHART)
    except Exception:  # noqa: BLE001 - the report's own first chart raises it where it can be told
        return
