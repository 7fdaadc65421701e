"""Scratch folders for builds, their atomic publication, the sweep of what killed builds left, and
the shredding of a published pool whose key is destroyed.

A build writes into a scratch folder under `PARENT/.builds/`; publishing points the stable name
(a symbolic link) at it with one rename, so readers see the old pool or the new one, never a
half-built one, and a crash at any moment leaves the previous pool in place.

A scratch folder is held by its build: before the folder is made, the build takes an exclusive
lock (flock) on `NAME.lock` beside it, and keeps it until the folder is published or removed. The
kernel drops the lock when the process dies, however it dies, so a folder under `.builds/` that no
link points at and whose lock nobody holds was left by a killed build: `sweep` removes it. Every
build sweeps first (scratch of any permit), and so does `safepool doctor`. The pool's scratch
holds pseudonyms only, but the quarantine's and the spill folder's hold identity codes: they must
not outlive the build that made them.
"""

from __future__ import annotations

import fcntl
import os
import secrets
import shutil
import time
from datetime import datetime, timezone
from pathlib import Path

BUILDS = ".builds"
LOCK = ".lock"
LINK_SUFFIX = ".link"
STALE_SECONDS = 60  # a temporary file this old was left by a process that died
_SHRED_CHUNK = 1 << 20  # bytes of random data written at a time over a file shredded


class Scratch:
    """A private scratch folder under `parent/.builds/`, held (locked) until closed.

    Use as a context manager; on leaving, the folder is removed unless it was published."""

    def __init__(self, parent: Path, name: str) -> None:
        builds = parent / BUILDS
        builds.mkdir(mode=0o700, parents=True, exist_ok=True)
        stamp = datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%S")
        while True:
            self.path = builds / f"{name}-{stamp}-{secrets.token_hex(4)}"
            self._lock_path = _lock_of(self.path)
            self._fd = os.open(self._lock_path, os.O_RDWR | os.O_CREAT | os.O_EXCL, 0o600)
            fcntl.flock(self._fd, fcntl.LOCK_EX)
            try:
                if os.stat(self._lock_path).st_ino == os.fstat(self._fd).st_ino:
                    break
            except FileNotFoundError:  # a sweep took the lock file before we locked it
                pass
            os.close(self._fd)
        self.path.mkdir(mode=0o700)
        self.published = False

    def publish(self, link: Path) -> Path:
        """Point `link` at this folder atomically (see `publish_folder`); it is kept from now on."""
        publish_folder(self.path, link)
        self.published = True
        return link

    def close(self) -> None:
        if self._fd < 0:
            return
        try:
            if not self.published:
                shutil.rmtree(self.path, ignore_errors=True)
            self._lock_path.unlink(missing_ok=True)
        finally:
            os.close(self._fd)
            self._fd = -1

    def __enter__(self) -> Scratch:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _lock_of(folder: Path) -> Path:
    return folder.with_name(folder.name + LOCK)


def shred(path: Path) -> bool:
    """Overwrite a file with random bytes (a megabyte at a time), then delete it, durably; returns
    whether there was one."""
    if not path.exists():
        return False
    size = path.stat().st_size
    with open(path, "r+b") as handle:
        for start in range(0, size, _SHRED_CHUNK):
            handle.write(secrets.token_bytes(min(_SHRED_CHUNK, size - start)))
        handle.flush()
        os.fsync(handle.fileno())
    path.unlink()
    directory = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(directory)  # the deletion itself is durable
    finally:
        os.close(directory)
    return True


def withdraw(link: Path) -> bool:
    """Shred every file of the folder published at `link` (overwritten, then deleted), then the
    folder and the link; whether there was one. For a permit whose key is destroyed."""
    if not link.is_symlink():
        return False
    folder = link.resolve()
    link.unlink()
    if folder.is_dir():
        for path in sorted(folder.rglob("*"), reverse=True):  # what a folder holds before the folder
            if path.is_symlink() or not (path.is_file() or path.is_dir()):
                path.unlink()
            elif path.is_file():
                shred(path)
            else:
                path.rmdir()
        folder.rmdir()
    return True


def publish_folder(folder: Path, link: Path) -> Path:
    """Point `link` at `folder` atomically and remove the folder it pointed at before."""
    previous = link.resolve() if link.is_symlink() else None
    if link.exists() and not link.is_symlink():
        raise FileExistsError(f"{link} exists and is not a published build; move it away first")
    temporary = link.with_name(f".{link.name}.{secrets.token_hex(4)}{LINK_SUFFIX}")
    os.symlink(os.path.relpath(folder, link.parent), temporary)
    os.replace(temporary, link)
    if previous is not None and previous != folder.resolve():
        shutil.rmtree(previous, ignore_errors=True)
    return link


def _published(parent: Path) -> set[Path]:
    """The folders the stable names in `parent` point at now."""
    return {entry.resolve() for entry in parent.iterdir()
            if entry.is_symlink() and not entry.name.startswith(".")}


def _try_lock(path: Path) -> int | None:
    """An fd holding the lock at `path`, or None when a live build holds it."""
    try:
        fd = os.open(path, os.O_RDWR)
    except FileNotFoundError:
        return None
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(fd)
        return None
    return fd


def sweep(parent: Path) -> list[Path]:
    """Remove what killed builds left under `parent/.builds/`; the paths removed.

    A folder is left alone while a link in `parent` points at it (a published build) or its
    build still holds its lock; a lock file without a folder is removed once nobody holds it."""
    builds = parent / BUILDS
    if not builds.is_dir():
        return []
    removed: list[Path] = []
    for entry in sorted(builds.iterdir()):
        if entry.name.endswith(LOCK):
            folder = entry.with_name(entry.name[: -len(LOCK)])
            if folder.exists():
                continue  # handled with its folder
            fd = _try_lock(entry)
            if fd is not None:
                try:
                    if not folder.exists():
                        entry.unlink(missing_ok=True)
                        removed.append(entry)
                finally:
                    os.close(fd)
            continue
        lock = _lock_of(entry)
        fd = None
        if lock.exists():
            fd = _try_lock(lock)
            if fd is None and lock.exists():
                continue  # a live build holds it
        try:
            if entry.resolve() in _published(parent):  # looked at again now, under the lock
                continue
            if entry.is_dir() and not entry.is_symlink():
                shutil.rmtree(entry, ignore_errors=True)
            else:
                entry.unlink(missing_ok=True)
            removed.append(entry)
            if fd is not None:
                lock.unlink(missing_ok=True)
                removed.append(lock)
        finally:
            if fd is not None:
                os.close(fd)
    for link in parent.iterdir():  # a publication killed between its two steps
        if link.name.startswith(".") and link.name.endswith(LINK_SUFFIX) and link.is_symlink() \
                and not link.exists():
            link.unlink(missing_ok=True)
            removed.append(link)
    return removed


def sweep_stale_files(folder: Path, pattern: str, older_than: float = STALE_SECONDS) -> list[Path]:
    """Remove temporary files matching `pattern` in `folder` that are older than `older_than` seconds."""
    if not folder.is_dir():
        return []
    now = time.time()
    removed = []
    for path in folder.glob(pattern):
        try:
            if path.is_file() and not path.is_symlink() and now - path.stat().st_mtime > older_than:
                path.unlink()
                removed.append(path)
        except FileNotFoundError:
            continue
    return removed
