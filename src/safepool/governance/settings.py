"""The governance's own settings: the audit anchors, the sign-in limits and the password hashing.

The defaults below hold unless the workspace has `governance/settings.yaml` (it lives beside the
metadata database, in the folder only the platform's owner may write), for example:

    audit_anchor_every: 100        # write the audit log's head to steward/audit-anchors every N records
    sign_in_failures: 5            # failed sign-ins of one account ...
    sign_in_window_minutes: 15     # ... within this many minutes lock it
    sign_in_lockout_minutes: 15    # for this long (or until an admin unlocks it)
    password_hashing: rfc9106_low_memory   # argon2id cost of passwords set from now on

`password_hashing` is one of two argon2id profiles: `rfc9106_low_memory` (the default: 3 passes
over 64 MiB in 4 lanes, RFC 9106's second recommendation, about 0.35 s of CPU per sign-in here) or
`owasp_minimum` (2 passes over 19 MiB in 1 lane, OWASP's floor, about 0.05 s). The cost protects
people's chosen passwords if the metadata database is stolen; a workspace whose passwords are
long random tokens, like the demo's, loses nothing with the floor. A hash keeps the profile it was
made with, so a change applies to passwords set from then on, and every stored hash still verifies.

A mistake in the file is reported with its field and line; an unknown field is refused. In
Python, `Governance.open(root, settings=GovernanceSettings(...))` overrides the file. The alert
rules keep their own thresholds (`safepool.governance.alerts.AlertSettings`).
"""

from __future__ import annotations

import datetime as dt
from enum import StrEnum
from pathlib import Path

import yaml
from argon2 import PasswordHasher

from pydantic import BaseModel, ConfigDict, Field

from safepool.yaml_files import load_model

SETTINGS_FILE = "settings.yaml"


class PasswordHashing(StrEnum):
    rfc9106_low_memory = "rfc9106_low_memory"
    owasp_minimum = "owasp_minimum"


HASHERS = {PasswordHashing.rfc9106_low_memory: PasswordHasher(time_cost=3, memory_cost=64 * 1024, parallelism=4),
           PasswordHashing.owasp_minimum: PasswordHasher(time_cost=2, memory_cost=19 * 1024, parallelism=1)}


class GovernanceSettings(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    audit_anchor_every: int = Field(default=100, ge=1, le=1_000_000)
    sign_in_failures: int = Field(default=5, ge=1, le=1000)
    sign_in_window_minutes: float = Field(default=15, gt=0, le=7 * 24 * 60)
    sign_in_lockout_minutes: float = Field(default=15, gt=0, le=30 * 24 * 60)
    password_hashing: PasswordHashing = PasswordHashing.rfc9106_low_memory

    @property
    def password_hasher(self) -> PasswordHasher:
        return HASHERS[self.password_hashing]

    @property
    def sign_in_window(self) -> dt.timedelta:
        return dt.timedelta(minutes=self.sign_in_window_minutes)

    @property
    def sign_in_lockout(self) -> dt.timedelta:
        return dt.timedelta(minutes=self.sign_in_lockout_minutes)


def load_settings(folder: Path) -> GovernanceSettings:
    """The settings in `folder/settings.yaml`, or the defaults when there is no such file."""
    path = folder / SETTINGS_FILE
    if not path.is_file():
        return GovernanceSettings()
    return load_model(path, GovernanceSettings)


def save_settings(folder: Path, settings: GovernanceSettings) -> None:
    """Write the settings that differ from the defaults to `folder/settings.yaml` (the folder is
    made private if it is new)."""
    folder.mkdir(mode=0o700, exist_ok=True)
    changed = settings.model_dump(mode="json", exclude_defaults=True)
    (folder / SETTINGS_FILE).write_text(yaml.safe_dump(changed, sort_keys=False), encoding="utf-8")
