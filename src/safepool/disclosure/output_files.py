"""An output's files inside the environment: <workspace>/outputs/<permit>/<output id>/.

Files are stored once, with their SHA-256, when the output is recorded; whatever is released
later is read back and compared with those digests, so a file changed after its checks never
leaves. Names are plain file names: no folders, no hidden files, nothing that could step out of
the output's folder.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from pathlib import Path

from safepool.faults import Invalid

OUTPUTS_DIR = "outputs"
_FILE_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,119}$")


class OutputFileError(Invalid):
    """An output file is badly named, missing, or not what was recorded."""


@dataclass(frozen=True)
class StoredFile:
    name: str
    sha256: str
    bytes: int

    def to_record(self) -> dict[str, str | int]:
        return {"name": self.name, "sha256": self.sha256, "bytes": self.bytes}


def output_folder(workspace_root: Path, permit: str, output_id: str) -> Path:
    return workspace_root / OUTPUTS_DIR / permit / output_id


def check_output_name(name: object) -> None:
    """An output's name becomes its files' names: a plain name, nothing that steps out of its folder."""
    if not isinstance(name, str) or not _FILE_NAME.match(name) or ".." in name or len(name) > 100:
        raise OutputFileError(f"output name {name!r} must be a plain name of letters, digits, '.', '_' or '-' "
                              "(no folders), at most 100 characters")


def check_names(output_id: str, files: dict[str, bytes], *, allow_none: bool = False) -> None:
    """Refuse an output without files (unless `allow_none`: a failed output keeps none), or with a
    name that is not a plain file name."""
    if not files and not allow_none:
        raise OutputFileError(f"output {output_id}: an output needs at least one file")
    for name, content in files.items():
        if not isinstance(name, str) or not _FILE_NAME.match(name) or ".." in name:
            raise OutputFileError(f"output {output_id}: file name {name!r} must be a plain name of letters, "
                                  "digits, '.', '_' or '-' (no folders)")
        if not isinstance(content, (bytes, bytearray)):
            raise OutputFileError(f"output {output_id}: file {name} must be given as bytes")


def store(folder: Path, files: dict[str, bytes]) -> list[StoredFile]:
    """Write the files into a new output folder (readable by the environment's owner only)."""
    folder.mkdir(mode=0o700, parents=True, exist_ok=False)
    stored = []
    for name, content in sorted(files.items()):
        (folder / name).write_bytes(bytes(content))
        stored.append(StoredFile(name=name, sha256=hashlib.sha256(content).hexdigest(), bytes=len(content)))
    return stored


def replace(folder: Path, files: dict[str, bytes]) -> list[StoredFile]:
    """A revision's files take the place of the earlier ones."""
    for old in folder.iterdir():
        old.unlink()
    folder.rmdir()
    return store(folder, files)


def read_verified(folder: Path, output_id: str, recorded: list[StoredFile]) -> dict[str, bytes]:
    """The recorded files, each checked against its recorded digest."""
    contents = {}
    for entry in recorded:
        path = folder / entry.name
        if not path.is_file():
            raise OutputFileError(f"output {output_id}: file {entry.name} is missing from {folder}")
        content = path.read_bytes()
        if hashlib.sha256(content).hexdigest() != entry.sha256:
            raise OutputFileError(f"output {output_id}: file {entry.name} changed after it was checked")
        contents[entry.name] = content
    return contents
