"""Source credentials, kept in the steward zone and never in the catalogue.

`steward/credentials.yaml` maps a register name to its password; an environment variable
SAFEPOOL_PASSWORD_<REGISTER> overrides it, for deployments that inject secrets.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from safepool.faults import Invalid
from safepool.workspace import Workspace

FILE_NAME = "credentials.yaml"


@dataclass
class Credentials:
    passwords: dict[str, str] = field(default_factory=dict)

    def __repr__(self) -> str:  # never show a password
        return f"Credentials(<{len(self.passwords)} hidden>)"

    @classmethod
    def load(cls, workspace: Workspace) -> Credentials:
        path = workspace.steward_dir / FILE_NAME
        if not path.exists():
            return cls()
        try:
            data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
        except yaml.YAMLError:
            raise Invalid(f"{path} is not valid YAML") from None
        if not isinstance(data, dict) or not all(isinstance(v, str) for v in data.values()):
            raise Invalid(f"{path} must map register names to password strings")
        return cls({str(k): v for k, v in data.items()})

    def password_for(self, register: str) -> str | None:
        return os.environ.get(f"SAFEPOOL_PASSWORD_{register.upper()}") or self.passwords.get(register)

    def save(self, workspace: Workspace, updates: dict[str, str]) -> None:
        self.passwords.update(updates)
        path: Path = workspace.steward_dir / FILE_NAME
        tmp = path.with_name(f".{FILE_NAME}.tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            yaml.safe_dump(self.passwords, handle)
        tmp.replace(path)
