"""One workspace's governance: its metadata database, audit log, users, permit office and outputs."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from safepool.disclosure.register import OutputRegister
from safepool.governance.audit import AuditLog
from safepool.governance.db import connect_engine, create_schema, sqlite_url
from safepool.governance.permits import PermitOffice
from safepool.governance.users import UserDirectory

METADATA_DIR = "governance"
METADATA_URL_ENV = "SAFEPOOL_METADATA_URL"


@dataclass
class Governance:
    audit: AuditLog
    users: UserDirectory
    permits: PermitOffice
    outputs: OutputRegister
    root: Path

    @classmethod
    def open(cls, workspace_root: Path, url: str | None = None) -> Governance:
        """Open (and bring up to date) the metadata database of a workspace.

        SQLite in `governance/` by default; SAFEPOOL_METADATA_URL (e.g. postgresql+psycopg://...)
        puts it on a server instead, its password kept out of the workspace's files."""
        url = url or os.environ.get(METADATA_URL_ENV)
        if url is None:
            folder = workspace_root / METADATA_DIR
            folder.mkdir(mode=0o700, exist_ok=True)
            url = sqlite_url(folder)
        engine = connect_engine(url)
        create_schema(engine)
        audit = AuditLog(engine)
        permits = PermitOffice(engine, audit)
        return cls(audit=audit, users=UserDirectory(engine, audit), permits=permits,
                   outputs=OutputRegister(engine, audit, permits, workspace_root), root=workspace_root)
