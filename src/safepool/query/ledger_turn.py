"""A process's turn on a query ledger: who may read and write it now.

Two locks make a turn. Other processes are kept out by an exclusive `fcntl.flock` on the lock
file beside the ledger; the process's other threads by a lock of the process, because they
share the memory of the ledger it keeps (`safepool.query.ledger_memory`), which a check reads
and a commit changes.

A check whose all-answers audit fails searches for the cells to hide, one audit after another:
for a study of a few thousand persons that hides its small groups, minutes. Holding the ledger
that long made other analysts' queries wait their minute and then fail. The search reads only
the memory of the state the check began at, so the check lets other processes take their turn
meanwhile (`let_others_in`) and takes the file lock back before it touches the file again.
What it found is what to hide; the cells it then shows are audited again, against whatever the
ledger holds by then, under the lock, before anything is remembered (see
`safepool.query.ledger.Ledger.check`). The process's lock is kept throughout: its other threads
still wait, as they share the memory being searched.
"""

from __future__ import annotations

import errno
import fcntl
import os
import threading
import time
from pathlib import Path

from safepool.faults import Unavailable
from safepool.query.deadline import not_counted

_IN_PROCESS: dict[str, threading.Lock] = {}  # per lock file: the turn of this process's threads
_MADE = threading.Lock()  # guards `_IN_PROCESS`


class LedgerBusy(Unavailable):
    """The ledger stayed in use by others for longer than the caller waits."""


class LedgerTurn:
    """The turn on one ledger, taken and given back whole, or the file lock alone given back
    for a while (`let_others_in`, then `take` again)."""

    def __init__(self, path: Path, called: str, timeout: float) -> None:
        self._path, self._called, self._timeout = path, called, timeout
        with _MADE:
            self._in_process = _IN_PROCESS.setdefault(str(path), threading.Lock())
        self._holds_process = False
        self._fd: int | None = None

    def take(self) -> None:
        """Wait for the turn, up to the timeout in all (time a query's deadline does not count):
        the process's other threads first, then other processes."""
        waited_until = time.monotonic() + self._timeout
        with not_counted():  # another query's turn is not this query's time
            if not self._holds_process:
                if not self._in_process.acquire(timeout=self._timeout):
                    raise self._busy()
                self._holds_process = True
            try:
                self._fd = self._flocked(waited_until)
            except BaseException:
                self.give_back()
                raise

    def let_others_in(self) -> None:
        """Give back the file lock, keeping the process's: other processes may use the ledger."""
        fd, self._fd = self._fd, None
        if fd is not None:
            os.close(fd)  # releases the flock

    def give_back(self) -> None:
        """Give back the whole turn."""
        self.let_others_in()
        if self._holds_process:
            self._holds_process = False
            self._in_process.release()

    def _busy(self) -> LedgerBusy:
        return LedgerBusy(f"{self._called} stayed in use by other queries for {self._timeout:g} s; try again later")

    def _flocked(self, waited_until: float) -> int:
        """A descriptor of the lock file holding its exclusive flock (a lock file unlinked and made
        again while this one waited locks nothing: the new one is taken)."""
        delay = 0.002
        while True:
            fd = os.open(self._path, os.O_RDWR | os.O_CREAT, 0o600)
            try:
                while True:
                    try:
                        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                        break
                    except OSError as exc:
                        if exc.errno not in (errno.EWOULDBLOCK, errno.EAGAIN, errno.EACCES):
                            raise
                        if time.monotonic() >= waited_until:
                            raise self._busy() from None
                        time.sleep(delay)
                        delay = min(delay * 2, 0.01)
                try:
                    current = os.stat(self._path).st_ino == os.fstat(fd).st_ino
                except FileNotFoundError:
                    current = False
            except BaseException:
                os.close(fd)
                raise
            if current:
                return fd
            os.close(fd)
