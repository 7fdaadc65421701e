"""Settings of the whole process held while a query is answered or a report rendered.

Both kinds of work make many objects and large arrays at once, and settings of the process
slow them down. Each is changed only while some thread does such work: the first thread in
changes it, the last one out restores what was there before.

- **Python's cycle collector paused** (`collector_paused`). Rendering a report and answering a
  query each make hundreds of thousands of objects (boxes and styles, or frames, arrays and rows)
  that set off collection after collection, each full one walking every object of the process,
  while reference counting already frees nearly all of them. On the way out one young
  collection frees what the work left in cycles (all of it is still young).
- **NumPy's advice of huge pages declined** (`small_pages`). NumPy advises the kernel to back
  every array of 4 MB or more with transparent huge pages. Where the kernel then compacts
  memory on the spot for advised regions (its THP `defrag` setting "madvise", common on servers
  and this project's machines), first touches of fresh arrays wait for it: a query over 300,000
  persons makes dozens of such arrays. On 4 December, ten questions at 300,000 persons, three
  rounds alternating: kernel time per question 60-70 ms against 169-191 ms, CPU 381-439 ms
  against 485-548 ms, the median question 15 ms quicker in each pair. Someone who sets
  NUMPY_MADVISE_HUGEPAGE has chosen for the process: then it is left as they set it.
- **pandas' text kept as Python strings** (`python_strings`, queries). pandas 3 stores text
  columns in Arrow arrays by default; an answer's tables are a few dozen rows, read and
  rebuilt hundreds of times (labels, statuses), and each step through Arrow cost more than
  the data: the same steps on Python strings took about a quarter less. The columns are the same
  kind (`str`) either way. On 4 December, two runs alternating: the median question 182 and 197
  ms against 208 and 204 ms, CPU 248-256 ms against 272 ms.
"""

from __future__ import annotations

import gc
import os
import threading
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager

import pandas as pd

try:  # NumPy 2
    from numpy._core.multiarray import _set_madvise_hugepage
except ImportError:  # NumPy 1.26
    from numpy.core.multiarray import _set_madvise_hugepage


class _Held:
    """A setting changed by the first thread that needs it and restored by the last one done."""

    def __init__(self, change: Callable[[], object], restore: Callable[[object], bool]) -> None:
        self._change, self._restore = change, restore  # restore: whether to collect the young objects
        self._lock = threading.Lock()
        self._working = 0
        self._before: object = None

    @contextmanager
    def held(self) -> Iterator[None]:
        with self._lock:
            if not self._working:
                self._before = self._change()
            self._working += 1
        try:
            yield
        finally:
            with self._lock:
                self._working -= 1
                collect = not self._working and self._restore(self._before)
            if collect:
                gc.collect(0)


def _pause_collector() -> bool:
    enabled = gc.isenabled()
    gc.disable()
    return enabled


def _resume_collector(was_enabled: object) -> bool:
    if was_enabled:
        gc.enable()
    return bool(was_enabled)


def _decline_huge_pages() -> bool | None:
    """NumPy's advice turned off, and what it was (None: the person's own choice, left alone)."""
    return None if "NUMPY_MADVISE_HUGEPAGE" in os.environ else bool(_set_madvise_hugepage(False))


def _advise_as_before(before: object) -> bool:
    if before is not None:
        _set_madvise_hugepage(bool(before))
    return False


def _python_strings() -> object:
    before = pd.get_option("mode.string_storage")
    pd.set_option("mode.string_storage", "python")
    return before


def _strings_as_before(before: object) -> bool:
    pd.set_option("mode.string_storage", before)
    return False


_COLLECTOR = _Held(_pause_collector, _resume_collector)
_PAGES = _Held(_decline_huge_pages, _advise_as_before)
_STRINGS = _Held(_python_strings, _strings_as_before)


def collector_paused() -> AbstractContextManager[None]:
    """The cycle collector paused for the duration (shared by every thread in it)."""
    return _COLLECTOR.held()


def small_pages() -> AbstractContextManager[None]:
    """NumPy's advice of huge pages off for the duration (shared by every thread in it), unless
    NUMPY_MADVISE_HUGEPAGE chose it for the process."""
    return _PAGES.held()


def python_strings() -> AbstractContextManager[None]:
    """pandas' text columns kept as Python strings for the duration (shared by every thread in it)."""
    return _STRINGS.held()
