"""The release folder, the only way out: <workspace>/release/<permit>/<release id>/.

Only `write_release` writes here, and only for outputs a checker approved. Each output's files
go into a folder named by its id, beside MANIFEST.json (what was released, checked how, approved
by whom, and each file's SHA-256) and SHA256SUMS (the same digests, plus the manifest's, in the
format `sha256sum -c` reads). The folder is assembled under a hidden name and renamed into place,
so a release is either complete or absent.

MANIFEST.json also holds `audit_anchor`: the sequence number and hash of the audit log's head
when the release was made (its own `output_release` record links to it). It leaves the
environment with the release, so the log can later be checked against it from outside:
`AuditLog.verify(anchor=(seq, hash))`. The release is written inside the transaction that
records it; a folder whose transaction did not commit is removed (`discard_unrecorded`).
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
from pathlib import Path
from typing import Any

from safepool.faults import Conflict

RELEASE_DIR = "release"
MANIFEST = "MANIFEST.json"
SUMS = "SHA256SUMS"


class ReleaseError(Conflict):
    """A release folder cannot be written."""


def release_folder(workspace_root: Path, permit: str, release_id: str) -> Path:
    return workspace_root / RELEASE_DIR / permit / release_id


def write_release(folder: Path, manifest: dict[str, Any], files: dict[str, dict[str, bytes]]) -> str:
    """Write `files` (output id -> file name -> content) and the manifest; return the manifest's digest.

    Each entry of `manifest["outputs"]` gets its files' paths and digests added."""
    if folder.exists():
        raise ReleaseError(f"release folder {folder} exists already; a release is never overwritten")
    partial = folder.with_name(f".{folder.name}.partial")
    partial.mkdir(mode=0o755, parents=True, exist_ok=False)
    sums: list[tuple[str, str]] = []
    for entry in manifest["outputs"]:
        output_id = entry["id"]
        (partial / output_id).mkdir()
        entry["files"] = []
        for name, content in sorted(files[output_id].items()):
            path = f"{output_id}/{name}"
            (partial / path).write_bytes(content)
            digest = hashlib.sha256(content).hexdigest()
            entry["files"].append({"path": path, "sha256": digest, "bytes": len(content)})
            sums.append((digest, path))
    manifest_bytes = (json.dumps(manifest, indent=2, ensure_ascii=False, sort_keys=False) + "\n").encode("utf-8")
    (partial / MANIFEST).write_bytes(manifest_bytes)
    manifest_digest = hashlib.sha256(manifest_bytes).hexdigest()
    sums.append((manifest_digest, MANIFEST))
    (partial / SUMS).write_text("".join(f"{digest}  {path}\n" for digest, path in sums), encoding="utf-8")
    os.replace(partial, folder)
    return manifest_digest


def discard_unrecorded(folder: Path) -> None:
    """Remove a release folder (and its partial copy) that no committed release records."""
    for path in (folder, folder.with_name(f".{folder.name}.partial")):
        shutil.rmtree(path, ignore_errors=True)
