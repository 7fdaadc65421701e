"""One workspace's governance: its metadata database, audit log, users, permit office and outputs."""

from __future__ import annotations

import os
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path

from safepool.disclosure.register import OutputRegister
from safepool.governance.anchors import AnchorStore
from safepool.governance.audit import AuditLog
from safepool.governance.catalogue_view import read_catalogue
from safepool.governance.db import connect_engine, create_schema, sqlite_url
from safepool.governance.holders import HolderOffice
from safepool.governance.permits import PermitOffice
from safepool.governance.settings import GovernanceSettings, load_settings
from safepool.governance.users import UserDirectory

METADATA_DIR = "governance"
METADATA_URL_ENV = "SAFEPOOL_METADATA_URL"
STEWARD_DIR = "steward"  # where the audit log's anchors are kept (safepool.workspace.Workspace.steward_dir)


@dataclass
class Governance:
    audit: AuditLog
    users: UserDirectory
    permits: PermitOffice
    outputs: OutputRegister
    root: Path
    settings: GovernanceSettings = GovernanceSettings()

    @cached_property
    def holders(self) -> HolderOffice:
        """Which steward acts for which register holder, the linkage authority, and each holder's
        release of its data into a permit (safepool.governance.holders)."""
        return HolderOffice(self.users.engine, self.audit, self.permits, self.permits.catalogue)

    @classmethod
    def open(cls, workspace_root: Path, url: str | None = None,
             settings: GovernanceSettings | None = None) -> Governance:
        """Open (and bring up to date) the metadata database of a workspace.

        SQLite in `governance/` by default; SAFEPOOL_METADATA_URL (e.g. postgresql+psycopg://...)
        puts it on a server instead, its password kept out of the workspace's files. The
        governance settings are `settings`, else `governance/settings.yaml`, else the defaults;
        the audit log's anchors go to `steward/audit-anchors` (see safepool.governance.anchors).
        A locked or unreachable database raises safepool.faults.Unavailable."""
        url = url or os.environ.get(METADATA_URL_ENV)
        folder = workspace_root / METADATA_DIR
        if url is None:
            folder.mkdir(mode=0o700, exist_ok=True)
            url = sqlite_url(folder)
        settings = settings or load_settings(folder)
        engine = connect_engine(url)
        create_schema(engine)
        audit = AuditLog(engine, AnchorStore(workspace_root / STEWARD_DIR, every=settings.audit_anchor_every))
        permits = PermitOffice(engine, audit, catalogue=lambda: read_catalogue(workspace_root))
        return cls(audit=audit, users=UserDirectory(engine, audit, settings), permits=permits,
                   outputs=OutputRegister(engine, audit, permits, workspace_root), root=workspace_root,
                   settings=settings)
