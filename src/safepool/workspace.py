"""A workspace: one folder per deployment, with its zones kept apart on disk.

`steward/` holds everything identifying (keys, quarantine, planted truth, credentials) and is
private to its owner; `registers/` holds the synthetic sources; `pool/` and everything else hold
pseudonymised or aggregate data only.
"""

from __future__ import annotations

import os
from pathlib import Path

from pydantic import Field

from safepool.errors import SafepoolError
from safepool.registers.catalogue import Catalogue, Register, Source, SourceKind, Strict
from safepool.yaml_files import dump_model, load_model

CONFIG_NAME = "safepool.yaml"
STEWARD_DIRS = ("keys", "quarantine", "truth", "tmp")


class WorkspaceConfig(Strict):
    version: int = 1
    registers: list[Register] = Field(default_factory=list)


class Workspace:
    def __init__(self, root: Path) -> None:
        self.root = root.resolve()

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

    @classmethod
    def init(cls, root: Path) -> Workspace:
        """Create the folders and an empty catalogue; an existing workspace is left as it is."""
        workspace = cls(root)
        if workspace.config_path.exists():
            raise SafepoolError(f"{workspace.root} is already a safepool workspace")
        workspace.root.mkdir(parents=True, exist_ok=True)
        workspace.steward_dir.mkdir(mode=0o700, exist_ok=True)
        os.chmod(workspace.steward_dir, 0o700)
        for name in STEWARD_DIRS:
            (workspace.steward_dir / name).mkdir(mode=0o700, exist_ok=True)
        workspace.registers_dir.mkdir(exist_ok=True)
        workspace.pool_dir.mkdir(exist_ok=True)
        dump_model(WorkspaceConfig(), workspace.config_path)
        return workspace

    @classmethod
    def open(cls, root: Path) -> Workspace:
        workspace = cls(root)
        if not workspace.config_path.is_file():
            raise SafepoolError(
                f"{workspace.root} is not a safepool workspace (no {CONFIG_NAME}); run `safepool init`"
            )
        return workspace

    def config(self) -> WorkspaceConfig:
        return load_model(self.config_path, WorkspaceConfig)

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
