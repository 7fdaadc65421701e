"""Starting the chart renderer, and loading the PDF renderer, ahead of the report that needs them.

vl-convert's JavaScript engine takes about a second of CPU to start, on the first chart drawn.
It releases the GIL while it works, so starting it in a thread while the analysis computes takes
that second off the report's path (the report's first chart then finds it ready). The same thread
then imports WeasyPrint (about half a second of CPU, imported only when a PDF is written), while
the analysis spends its time in DuckDB and numpy with the GIL released."""

from __future__ import annotations

import importlib
import threading
from collections.abc import Iterator
from contextlib import contextmanager

import vl_convert

from safepool.beside import fork_unsafe

_EMPTY_CHART = {"mark": "point", "data": {"values": []}}
PDF_RENDERER = "weasyprint"


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
    """Start the engine, then load the PDF renderer, in a thread of its own; join it before the
    process may end."""
    thread = threading.Thread(target=_start, name="chart engine start", daemon=True)
    thread.start()
    return thread


def vegalite_to_svg(spec: dict) -> str:
    """A Vega-Lite chart as SVG. The engine runs threads of its own from its first chart on, which
    a forked process would not have: work beside this process is no longer forked after it."""
    fork_unsafe("the chart renderer's JavaScript engine")
    return vl_convert.vegalite_to_svg(spec)


def _start() -> None:
    try:
        vegalite_to_svg(_EMPTY_CHART)
    except Exception:  # noqa: BLE001 - the report's own first chart raises it where it can be told
        pass
    try:
        importlib.import_module(PDF_RENDERER)
    except Exception:  # noqa: BLE001 - the report's own PDF raises it where it can be told
        return
