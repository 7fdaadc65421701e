"""A workspace: one folder per deployment, with its zones kept apart on disk.

`steward/` holds everything identifying (keys, quarantine, planted truth, credentials) and is
private to its owner; `registers/` holds the synthetic sources; `pool/` and everything else hold
pseudonymised or aggregate data only.

Every zone (`steward/`, `registers/`, `pool/`, `governance/`, `outputs/`) is owner-only: made
with mode 0700, and opening a workspace sets the process's umask to 077 so that every file any
part writes in it (DuckDB, SQLite, Arrow, reports) is 0600 and every folder 0700, whatever the
umask was. In a shared deployment one service account owns the workspace and people reach it
only through safepool.

A file a person hands safepool by path (a query's request file, a study or insight file, a permit
request form) is read by that process, so `handed_file` refuses one that lies, symbolic links
followed, inside a zone: else safepool would read the zones for whoever names a file in them.
"""

from __future__ import annotations

import os
import secrets
from pathlib import Path

from pydantic import Field

from safepool.faults import Conflict, Invalid, NotFound
from safepool.registers.catalogue import Catalogue, Register, Source, SourceKind, Strict
from safepool.yaml_files import dump_model, load_frozen_model

CONFIG_NAME = "safepool.yaml"
STEWARD_DIRS = ("keys", "quarantine", "truth", "tmp")
ZONES = ("steward", "registers", "pool", "governance", "outputs")
KEY_PASSPHRASE_FILE = "key-passphrase"
OWNER_ONLY_UMASK = 0o077


class HandedFileRefused(Invalid):
    """A file handed over lies inside one of the workspace's zones (`zone`)."""

    def __init__(self, zone: str, message: str) -> None:
        super().__init__(message)
        self.zone = zone


def handed_file(root: Path, path: Path | str, what: str) -> Path:
    """`path`, a file a person hands over (`what` names the option or argument, e.g. "--request"),
    resolved with every symbolic link followed; Invalid if it lies inside one of the zones of the
    workspace at `root`, which safepool reads only for its own steps. The message names `what`
    and the zone, never the file's contents. Read the file by the returned path, not `path`, so
    that a link changed after the check is not followed."""
    try:
        resolved = Path(path).expanduser().resolve()
        workspace = Path(root).resolve()
    except (OSError, RuntimeError):  # a loop of symbolic links
        raise Invalid(f"{what}: the file's path cannot be resolved (a loop of symbolic links?)") from None
    for zone in ZONES:
        if resolved.is_relative_to(workspace / zone):
            raise HandedFileRefused(zone,
                f"{what}: refused: the file lies inside the workspace's protected {zone}/ folder "
                f"(directly or through a symbolic link). A file handed to safepool must lie outside "
                f"{', '.join(name + '/' for name in ZONES)}; hand over a copy kept elsewhere")
    return resolved


def owner_only_umask() -> None:
    """Make every file and folder this process creates from now on owner-only (keeps stricter bits)."""
    os.umask(os.umask(OWNER_ONLY_UMASK) | OWNER_ONLY_UMASK)


def private_folder(path: Path) -> Path:
    """Make `path` (and missing parents) a folder of mode 0700, whatever the umask."""
    path.mkdir(mode=0o700, parents=True, exist_ok=True)
    os.chmod(path, 0o700)
    return path


class WorkspaceConfig(Strict):
    version: int = 1
    registers: list[Register] = Field(default_factory=list)


class Workspace:
    def __init__(self, root: Path) -> None:
        self.root = root.resolve()
        owner_only_umask()

    @property
    def config_path(self) -> Path:
        return self.root / CONFIG_NAME

    @property
    def steward_dir(self) -> Path:
        return self.root / "steward"

    @property
    def registers_dir(self) -> Path:
        return self.root / "registers"

    @property
    def pool_dir(self) -> Path:
        return self.root / "pool"

    @property
    def key_passphrase_path(self) -> Path:
        """The key store's passphrase (mode 0600), used when SAFEPOOL_KEY_PASSPHRASE is not set."""
        return self.steward_dir / KEY_PASSPHRASE_FILE

    def zones(self) -> list[Path]:
        return [self.root / name for name in ZONES]

    def handed_file(self, path: Path | str, what: str) -> Path:
        """`handed_file` for this workspace: `path` resolved, refused inside a zone."""
        return handed_file(self.root, path, what)

    def ensure_key_passphrase(self) -> Path:
        """Write a random key-store passphrase into the steward zone, once; never replaced."""
        path = self.key_passphrase_path
        private_folder(path.parent)
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError:
            return path
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(secrets.token_urlsafe(32) + "\n")
            handle.flush()
            os.fsync(handle.fileno())
        return path

    @classmethod
    def init(cls, root: Path) -> Workspace:
        """Create the folders and an empty catalogue; an existing workspace is left as it is."""
        workspace = cls(root)
        if workspace.config_path.exists():
            raise Conflict(f"{workspace.root} is already a safepool workspace")
        workspace.root.mkdir(parents=True, exist_ok=True)
        for zone in workspace.zones():
            private_folder(zone)
        for name in STEWARD_DIRS:
            private_folder(workspace.steward_dir / name)
        workspace.ensure_key_passphrase()
        dump_model(WorkspaceConfig(), workspace.config_path)
        return workspace

    @classmethod
    def open(cls, root: Path) -> Workspace:
        workspace = cls(root)
        if not workspace.config_path.is_file():
            raise NotFound(
                f"{workspace.root} is not a safepool workspace (no {CONFIG_NAME}); run `safepool init`"
            )
        return workspace

    def config(self) -> WorkspaceConfig:
        return load_frozen_model(self.config_path, WorkspaceConfig)

    def catalogue(self) -> Catalogue:
        return Catalogue(registers=self.config().registers)

    def save_registers(self, registers: list[Register]) -> None:
        """Add or replace registers by name, keeping the others."""
        config = self.config()
        by_name = {r.name: r for r in config.registers}
        by_name.update({r.name: r for r in registers})
        Catalogue(registers=list(by_name.values()))  # validates uniqueness and shape
        dump_model(config.model_copy(update={"registers": list(by_name.values())}), self.config_path)

    def source_path(self, source: Source) -> Path:
        """The file behind a file or SQLite source, relative locations taken from the workspace."""
        if source.kind == SourceKind.postgresql:
            raise ValueError("a postgresql source has no file")
        path = Path(source.location)
        return path if path.is_absolute() else self.root / path
