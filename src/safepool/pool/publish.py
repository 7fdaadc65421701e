"""Atomic publication of a built folder behind a stable name.

A build writes into a scratch folder; publishing points the stable name (a symbolic link) at it
with one rename, so readers see the old pool or the new one, never a half-built one, and a
crash at any moment leaves the previous pool in place.
"""

from __future__ import annotations

import os
import secrets
import shutil
from datetime import datetime, timezone
from pathlib import Path

BUILDS = ".builds"


def scratch_folder(parent: Path, name: str) -> Path:
    """A fresh private folder under `parent/.builds/` for one build of `name`."""
    stamp = datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%S")
    folder = parent / BUILDS / f"{name}-{stamp}-{secrets.token_hex(4)}"
    folder.mkdir(mode=0o700, parents=True)
    return folder


def publish_folder(folder: Path, link: Path) -> Path:
    """Point `link` at `folder` atomically and remove the folder it pointed at before."""
    previous = link.resolve() if link.is_symlink() else None
    if link.exists() and not link.is_symlink():
        raise FileExistsError(f"{link} exists and is not a published build; move it away first")
    temporary = link.with_name(f".{link.name}.{secrets.token_hex(4)}.link")
    os.symlink(os.path.relpath(folder, link.parent), temporary)
    os.replace(temporary, link)
    if previous is not None and previous != folder.resolve():
        shutil.rmtree(previous, ignore_errors=True)
    return link
