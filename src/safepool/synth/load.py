"""Putting synthetic Espoo into a workspace, with PostgreSQL credentials kept in the steward zone."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from urllib.parse import unquote, urlsplit, urlunsplit

from safepool.registers.catalogue import Register, SourceKind
from safepool.registers.credentials import Credentials
from safepool.workspace import CONFIG_NAME, Workspace


def synthesise(
    out: Path,
    *,
    persons: int,
    seed: int,
    postgres_url: str | None = None,
    progress: Callable[[str], None] | None = None,
) -> list[Register]:
    """Generate the registers into `out` (made a workspace if it is not one) and catalogue them."""
    from safepool.synth import generate, write_workspace

    workspace = Workspace.open(out) if (out / CONFIG_NAME).exists() else Workspace.init(out)
    url, password = split_password(postgres_url) if postgres_url else (None, None)
    synthetic = generate(persons=persons, seed=seed, progress=progress)
    registers = write_workspace(workspace, synthetic, postgres_url=url, postgres_password=password, progress=progress)
    if password is not None:
        held = {r.name: password for r in registers if r.source.kind == SourceKind.postgresql}
        Credentials.load(workspace).save(workspace, held)
    return registers


def split_password(url: str) -> tuple[str, str | None]:
    """The URL without its password, and the password."""
    parts = urlsplit(url)
    if parts.password is None:
        return url, None
    port = f":{parts.port}" if parts.port else ""
    netloc = f"{parts.username}@{parts.hostname}{port}" if parts.username else f"{parts.hostname}{port}"
    return urlunsplit((parts.scheme, netloc, parts.path, parts.query, parts.fragment)), unquote(parts.password)
