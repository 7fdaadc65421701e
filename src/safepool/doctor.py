"""`safepool doctor`: the workspace's file hygiene, checked and (where it is safe) repaired.

It removes the scratch killed builds and re-identifications left (`pool/.builds`,
`steward/quarantine/.builds`, `steward/tmp/.builds`, half-written key and credential files;
a live build's scratch is never touched, see `safepool.pool.publish`), and reports every folder
and file in the zones (`steward/`, `registers/`, `pool/`, `governance/`, `outputs/`) that others
could read, write or enter; with `fix` it makes them owner-only (0700 folders, 0600 files).
It reports paths inside the workspace only, never what a file holds.
"""

from __future__ import annotations

import os
import stat
from dataclasses import dataclass, field
from pathlib import Path

from safepool.governance.context import Governance
from safepool.governance.users import Actor, Role, refuse
from safepool.pool.build import sweep_workspace
from safepool.workspace import Workspace

ACTION = "doctor"


@dataclass
class DoctorReport:
    removed: list[str] = field(default_factory=list)  # stale scratch, relative to the workspace
    not_owner_only: list[tuple[str, int]] = field(default_factory=list)  # (path, mode) others may use
    fixed: list[str] = field(default_factory=list)  # made owner-only by this run

    @property
    def ok(self) -> bool:
        """Nothing left that others could read, write or enter."""
        return len(self.not_owner_only) == len(self.fixed)


def loose_modes(workspace: Workspace) -> list[tuple[Path, int]]:
    """Every folder and file in the zones with any permission for group or others (links skipped)."""
    found = []
    for zone in workspace.zones():
        if not zone.is_dir() or zone.is_symlink():
            continue
        for folder, _, files in os.walk(zone):  # each folder is looked at when the walk enters it
            for path in [Path(folder)] + [Path(folder) / name for name in files]:
                if path.is_symlink():
                    continue
                mode = stat.S_IMODE(path.lstat().st_mode)
                if mode & 0o077:
                    found.append((path, mode))
    return found


def examine(workspace: Workspace, *, fix: bool = False) -> DoctorReport:
    """Sweep stale scratch and report (with `fix`, repair) what is not owner-only."""
    report = DoctorReport()
    report.removed = [str(path.relative_to(workspace.root)) for path in sweep_workspace(workspace)]
    for path, mode in loose_modes(workspace):
        shown = str(path.relative_to(workspace.root))
        report.not_owner_only.append((shown, mode))
        if fix:
            os.chmod(path, 0o700 if path.is_dir() else mode & 0o700)
            report.fixed.append(shown)
    return report


def doctor(workspace: Workspace, governance: Governance, actor: Actor, *, fix: bool = False) -> DoctorReport:
    """`examine`, as a steward or an admin; audited with its counts."""
    if not (actor.has(Role.steward) or actor.has(Role.admin)):
        raise refuse(governance.audit, actor.name, actor.main_role, ACTION,
                     f"user {actor.name} is neither a steward nor an admin")
    report = examine(workspace, fix=fix)
    governance.audit.append(actor=actor.name, role=actor.main_role, action=ACTION,
                            outcome="ok" if report.ok else "error",
                            detail={"removed": len(report.removed), "not_owner_only": len(report.not_owner_only),
                                    "fixed": len(report.fixed)})
    return report
