"""Putting synthetic Espoo into a workspace, with PostgreSQL credentials kept in the steward zone."""

from __future__ import annotations

import ctypes
from collections.abc import Callable
from pathlib import Path
from urllib.parse import unquote, urlsplit, urlunsplit

import pyarrow as pa

from safepool.registers.catalogue import Register, SourceKind
from safepool.registers.credentials import Credentials
from safepool.workspace import CONFIG_NAME, Workspace

CATALOGUED = "catalogued"  # said once the catalogue is saved, before any register's data
WRITTEN = "written "  # then this and a register's name, as soon as its source is in place


def synthesise(
    out: Path,
    *,
    persons: int,
    seed: int,
    postgres_url: str | None = None,
    progress: Callable[[str], None] | None = None,
) -> list[Register]:
    """Generate the registers into `out` (made a workspace if it is not one) and catalogue them."""
    from safepool.synth import generate
    from safepool.synth._write import RegisterWriter

    workspace = Workspace.open(out) if (out / CONFIG_NAME).exists() else Workspace.init(out)
    url, password = split_password(postgres_url) if postgres_url else (None, None)
    writer = RegisterWriter(workspace, url, password, progress)  # saves the catalogue
    if progress is not None:
        progress(CATALOGUED)

    def write(name: str, table: pa.Table) -> None:
        writer.write(name, table)
        return_freed_memory()  # what made the register, before the next one is made

    try:
        synthetic = generate(persons=persons, seed=seed, progress=progress, sink=write)
        registers = writer.finish(synthetic)
    except BaseException:
        writer.abandon()
        raise
    del synthetic
    return_freed_memory()
    if password is not None:
        held = {r.name: password for r in registers if r.source.kind == SourceKind.postgresql}
        Credentials.load(workspace).save(workspace, held)
    return registers


def return_freed_memory() -> None:
    """Give the generator's freed memory back to the system. pyarrow's pool and glibc's heap keep
    it otherwise (at 100,000 persons 0.8 GB of the 1 GB resident after synthesising), and the demo
    goes on in the same process."""
    pa.default_memory_pool().release_unused()
    try:
        ctypes.CDLL("libc.so.6").malloc_trim(0)
    except (OSError, AttributeError):  # not glibc: its heap is left as it is
        pass


def split_password(url: str) -> tuple[str, str | None]:
    """The URL without its password, and the password."""
    parts = urlsplit(url)
    if parts.password is None:
        return url, None
    port = f":{parts.port}" if parts.port else ""
    netloc = f"{parts.username}@{parts.hostname}{port}" if parts.username else f"{parts.hostname}{port}"
    return urlunsplit((parts.scheme, netloc, parts.path, parts.query, parts.fragment)), unquote(parts.password)
