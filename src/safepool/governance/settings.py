"""The governance's own settings: the audit anchors and the sign-in limits.

The defaults below hold unless the workspace has `governance/settings.yaml` (it lives beside the
metadata database, in the folder only the platform's owner may write), for example:

    audit_anchor_every: 100        # write the audit log's head to steward/audit-anchors every N records
    sign_in_failures: 5            # failed sign-ins of one account ...
    sign_in_window_minutes: 15     # ... within this many minutes lock it
    sign_in_lockout_minutes: 15    # for this long (or until an admin unlocks it)

A mistake in the file is reported with its field and line; an unknown field is refused. In
Python, `Governance.open(root, settings=GovernanceSettings(...))` overrides the file. The alert
rules keep their own thresholds (`safepool.governance.alerts.AlertSettings`).
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field

from safepool.yaml_files import load_model

SETTINGS_FILE = "settings.yaml"


class GovernanceSettings(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    audit_anchor_every: int = Field(default=100, ge=1, le=1_000_000)
    sign_in_failures: int = Field(default=5, ge=1, le=1000)
    sign_in_window_minutes: float = Field(default=15, gt=0, le=7 * 24 * 60)
    sign_in_lockout_minutes: float = Field(default=15, gt=0, le=30 * 24 * 60)

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
