"""Source credentials, kept in the steward zone and never in the catalogue.

`steward/credentials.yaml` maps a register name to its password; an environment variable
SAFEPOOL_PASSWORD_<REGISTER> overrides it, for deployments that inject secrets.

A register holder's steward keeps its own registers' credentials (`set_credential_as`) and sees
which of them hold one (`credentials_as`), never a password and never another holder's register.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import yaml

from safepool.faults import Invalid
from safepool.workspace import Workspace

if TYPE_CHECKING:
    from safepool.governance.context import Governance
    from safepool.governance.users import Actor

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


@dataclass(frozen=True)
class HeldCredential:
    """Whether a register's source has a password kept for it (never the password)."""

    register: str
    holder: str
    kind: str
    held: bool  # a password in the credential file or its environment variable
    from_environment: bool


def credentials_as(workspace: Workspace, governance: Governance, actor: Actor) -> list[HeldCredential]:
    """A holder's steward: which of its own registers have a source password kept (audited as a view)."""
    from safepool.registers.check import own_registers

    own = set(own_registers(workspace, governance, actor))
    credentials = Credentials.load(workspace)
    found = [HeldCredential(register.name, register.holder, register.source.kind.value,
                            credentials.password_for(register.name) is not None,
                            bool(os.environ.get(f"SAFEPOOL_PASSWORD_{register.name.upper()}")))
             for register in workspace.catalogue().registers if register.name in own]
    governance.audit.append(actor=actor.name, role=actor.main_role, action="credentials_list",
                            target=",".join(c.register for c in found) or None, rows=len(found),
                            detail={"view": True})
    return found


def set_credential_as(workspace: Workspace, governance: Governance, actor: Actor, register: str,
                      password: str) -> None:
    """A holder's steward keeps the source password of one of its own registers (audited: the
    register, never the password)."""
    from safepool.faults import Invalid

    governance.holders.require_holders(actor, "credentials_set", [register])
    if not password:
        raise Invalid("the password is empty")
    Credentials.load(workspace).save(workspace, {register: password})
    governance.audit.append(actor=actor.name, role=actor.main_role, action="credentials_set", target=register)
