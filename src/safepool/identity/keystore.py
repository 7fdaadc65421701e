"""The per-permit pseudonymisation keys; only the steward zone opens this store.

A key exists per permit so that pseudonyms of two permits cannot be linked, and deleting a
permit's key at the end of its retention makes re-identification impossible. Keys are files of
mode 0600 under `steward/keys/`; when SAFEPOOL_KEY_PASSPHRASE is set they are also encrypted at
rest (scrypt-derived key, AES-256-GCM), so a copied key file alone is useless.
"""

from __future__ import annotations

import base64
import json
import os
import re
import secrets
from pathlib import Path

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.scrypt import Scrypt

from safepool.errors import SafepoolError

PASSPHRASE_ENV = "SAFEPOOL_KEY_PASSPHRASE"
KEY_BYTES = 32
_PERMIT_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")


class KeyStoreError(SafepoolError):
    pass


class KeyStore:
    def __init__(self, directory: Path) -> None:
        self.directory = directory

    def _path(self, permit: str) -> Path:
        if not _PERMIT_ID.match(permit):
            raise KeyStoreError(f"permit id {permit!r} may hold only letters, digits, '.', '_' and '-'")
        return self.directory / f"{permit}.key"

    def exists(self, permit: str) -> bool:
        return self._path(permit).exists()

    def get_or_create(self, permit: str) -> bytes:
        return self.get(permit) if self.exists(permit) else self.create(permit)

    def create(self, permit: str) -> bytes:
        path = self._path(permit)
        self.directory.mkdir(mode=0o700, parents=True, exist_ok=True)
        key = secrets.token_bytes(KEY_BYTES)
        payload = _seal(key, os.environ.get(PASSPHRASE_ENV))
        tmp = path.with_name(f".{path.name}.{secrets.token_hex(4)}.tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            json.dump(payload, handle)
            handle.flush()
            os.fsync(handle.fileno())
        try:
            os.link(tmp, path)  # fails if another process created the key first
        except FileExistsError:
            raise KeyStoreError(f"a key for permit {permit} exists already") from None
        finally:
            tmp.unlink()
        return key

    def get(self, permit: str) -> bytes:
        path = self._path(permit)
        try:
            mode = path.stat().st_mode & 0o777
            payload = json.loads(path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise KeyStoreError(f"no key for permit {permit} (destroyed, or the pool was never built)") from None
        except (ValueError, OSError) as exc:
            raise KeyStoreError(f"key file for permit {permit} is unreadable ({type(exc).__name__})") from None
        if mode & 0o077:
            raise KeyStoreError(f"key file for permit {permit} is readable by others (mode {mode:o}); expected 600")
        return _open(payload, os.environ.get(PASSPHRASE_ENV), permit)

    def destroy(self, permit: str) -> bool:
        """Overwrite, then delete; returns whether there was a key."""
        path = self._path(permit)
        if not path.exists():
            return False
        size = path.stat().st_size
        with open(path, "r+b") as handle:
            handle.write(secrets.token_bytes(size))
            handle.flush()
            os.fsync(handle.fileno())
        path.unlink()
        return True


def _derive(passphrase: str, salt: bytes) -> bytes:
    return Scrypt(salt=salt, length=32, n=2**15, r=8, p=1).derive(passphrase.encode("utf-8"))


def _seal(key: bytes, passphrase: str | None) -> dict[str, str | int]:
    if not passphrase:
        return {"version": 1, "encrypted": 0, "key": base64.b64encode(key).decode()}
    salt, nonce = secrets.token_bytes(16), secrets.token_bytes(12)
    sealed = AESGCM(_derive(passphrase, salt)).encrypt(nonce, key, b"safepool-permit-key")
    return {
        "version": 1,
        "encrypted": 1,
        "kdf": "scrypt-n32768-r8-p1",
        "salt": base64.b64encode(salt).decode(),
        "nonce": base64.b64encode(nonce).decode(),
        "sealed": base64.b64encode(sealed).decode(),
    }


def _open(payload: dict[str, str | int], passphrase: str | None, permit: str) -> bytes:
    if not payload.get("encrypted"):
        return base64.b64decode(str(payload["key"]))
    if not passphrase:
        raise KeyStoreError(f"the key for permit {permit} is encrypted; set {PASSPHRASE_ENV}")
    salt = base64.b64decode(str(payload["salt"]))
    try:
        return AESGCM(_derive(passphrase, salt)).decrypt(
            base64.b64decode(str(payload["nonce"])), base64.b64decode(str(payload["sealed"])),
            b"safepool-permit-key",
        )
    except InvalidTag:
        raise KeyStoreError(f"wrong {PASSPHRASE_ENV} for the key of permit {permit}") from None
