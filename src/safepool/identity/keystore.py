"""The per-permit pseudonymisation keys; only the steward zone opens this store.

A key exists per permit so that pseudonyms of two permits cannot be linked, and deleting a
permit's key at the end of its retention makes re-identification impossible. Keys are files of
mode 0600 under `steward/keys/`, encrypted at rest (scrypt-derived key, AES-256-GCM) so that a
copied key file alone is useless. The passphrase is SAFEPOOL_KEY_PASSPHRASE when it is set, else
the random one `safepool init` writes to `steward/key-passphrase` (mode 0600); deployments that
inject secrets set the variable and keep the file elsewhere. A store with neither (a bare folder
outside a workspace) keeps its keys unencrypted.

Only a signed-in steward who is the linkage authority (safepool.governance.holders) destroys a key
(`destroy_key`), with a justification, and audited. With it goes the permit's pool (its file
and its ledger keys, `safepool.pool.ledger_keys`): the workspace's query ledger keeps answered
cells' persons by ledger keys the steward zone can recompute, and their values would tie a pool
left behind back to identity codes.

Beside the permits' keys the store keeps one secret of the workspace, `ledger_secret()`: the key of
the persons' ledger keys, the one name the query ledger knows a person by in every permit (so that
answers of two permits cannot be set against each other). Its file name begins with a character no
permit id begins with, so no permit's key is ever it, and `destroy_key` cannot reach it.
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

from safepool.faults import Conflict, Invalid, NotFound, SafepoolError, Unavailable
from safepool.governance.audit import UnsafeAuditField
from safepool.governance.context import Governance
from safepool.governance.users import Actor, Role, refuse, require_role
from safepool.identity_pattern import looks_like_identity_code
from safepool.pool.publish import shred, withdraw
from safepool.workspace import KEY_PASSPHRASE_FILE, Workspace

PASSPHRASE_ENV = "SAFEPOOL_KEY_PASSPHRASE"
KEY_BYTES = 32
_PERMIT_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")
LEDGER_SECRET = "_workspace-ledger"  # never a permit id: those begin with a letter or digit


class KeyStoreError(SafepoolError):
    """Any error of the key store. Never raised as itself: each is one of the typed faults below."""


class KeyStoreUnavailable(KeyStoreError, Unavailable):
    """The store cannot be opened: a passphrase or key file unreadable, open to others, or not
    opened by the passphrase (mend the steward zone: `safepool doctor --fix`)."""


class NoKey(KeyStoreError, NotFound):
    """The permit has no key: it was destroyed, or its pool was never built."""


class KeyExists(KeyStoreError, Conflict):
    """Another process made the permit's key first."""


class BadPermitId(KeyStoreError, Invalid):
    """A permit id that could name a file outside the store."""


class KeyStore:
    def __init__(self, directory: Path, passphrase_file: Path | None = None) -> None:
        self.directory = directory
        self.passphrase_file = passphrase_file or directory.parent / KEY_PASSPHRASE_FILE

    @classmethod
    def of(cls, workspace: Workspace) -> KeyStore:
        """The workspace's key store (its passphrase file made if an older workspace lacks one)."""
        workspace.ensure_key_passphrase()
        return cls(workspace.steward_dir / "keys", workspace.key_passphrase_path)

    def _passphrases(self) -> list[str]:
        """The passphrases to try, the one new keys are sealed with first."""
        found = [os.environ.get(PASSPHRASE_ENV) or ""]
        try:
            mode = self.passphrase_file.stat().st_mode & 0o777
            text = self.passphrase_file.read_text(encoding="utf-8").strip()
        except FileNotFoundError:
            text = ""
        except (OSError, UnicodeDecodeError) as exc:
            raise KeyStoreUnavailable(f"the key passphrase file is unreadable ({type(exc).__name__})") from None
        else:
            if mode & 0o077:
                raise KeyStoreUnavailable(f"the key passphrase file is readable by others (mode {mode:o}); expected 600")
        return [p for p in (*found, text) if p]

    def _path(self, permit: str, *, secret: bool = False) -> Path:
        if not (secret and permit == LEDGER_SECRET) and not _PERMIT_ID.match(permit):
            raise BadPermitId(f"permit id {permit!r}: a permit id begins with a letter or digit and holds only "
                              "letters, digits, '.', '_' and '-'")
        return self.directory / f"{permit}.key"

    def exists(self, permit: str) -> bool:
        return self._path(permit).exists()

    def get_or_create(self, permit: str) -> bytes:
        return self.get(permit) if self.exists(permit) else self.create(permit)

    def ledger_secret(self, *, in_use: bool = False) -> bytes:
        """The workspace's secret of ledger keys, made the first time a pool is built (another
        process making it at the same moment is waited for, not overwritten). `in_use`: pools or
        the query ledger hold keys made with it already; then a missing secret is never made
        again, which would give every person a new ledger key and quietly reset the ledger."""
        path = self._path(LEDGER_SECRET, secret=True)
        if not path.exists():
            if in_use:
                raise NoKey("the workspace's ledger secret (steward/keys/_workspace-ledger.key) is missing while "
                            "pools and the query ledger use the keys made with it: restore it from a backup")
            try:
                return self._create(path, "the workspace's ledger secret")
            except KeyExists:
                pass
        return self._get(path, "the workspace's ledger secret")

    def create(self, permit: str) -> bytes:
        return self._create(self._path(permit), f"permit {permit}")

    def _create(self, path: Path, what: str) -> bytes:
        self.directory.mkdir(mode=0o700, parents=True, exist_ok=True)
        key = secrets.token_bytes(KEY_BYTES)
        payload = _seal(key, next(iter(self._passphrases()), None))
        tmp = path.with_name(f".{path.name}.{secrets.token_hex(4)}.tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            json.dump(payload, handle)
            handle.flush()
            os.fsync(handle.fileno())
        try:
            os.link(tmp, path)  # fails if another process created the key first
        except FileExistsError:
            raise KeyExists(f"a key for {what} exists already") from None
        finally:
            tmp.unlink()
        return key

    def get(self, permit: str) -> bytes:
        return self._get(self._path(permit), f"permit {permit}")

    def _get(self, path: Path, what: str) -> bytes:
        try:
            mode = path.stat().st_mode & 0o777
            payload = json.loads(path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise NoKey(f"no key for {what} (destroyed, or the pool was never built)") from None
        except (ValueError, OSError) as exc:
            raise KeyStoreUnavailable(f"key file for {what} is unreadable ({type(exc).__name__})") from None
        if mode & 0o077:
            raise KeyStoreUnavailable(f"key file for {what} is readable by others (mode {mode:o}); expected 600")
        return _open(payload, self._passphrases(), what)

    def destroy(self, permit: str) -> bool:
        """Overwrite, then delete; returns whether there was a key. See `destroy_key` for who may."""
        return shred(self._path(permit))


DESTROY = "keys_destroy"  # the access policy's action, so its refusals and records are one


def destroy_key(workspace: Workspace, governance: Governance, actor: Actor, permit: str, justification: str) -> bool:
    """As a signed-in steward, with a justification: overwrite and delete a permit's key, audited.

    Its pseudonyms can never be traced back again: its pool is shredded with it (the pool file and
    the ledger keys). The workspace's query ledger remembers each answered cell's persons by their
    ledger keys and values, which the steward zone can recompute from identity codes; a pool left
    behind could be tied to them by its values. The audit record (written before the key is
    destroyed, so no destruction goes unrecorded) holds the justification when it passes the
    audit's safety check, else only its length. Returns whether there was a key."""
    audit = governance.audit
    require_role(audit, actor, Role.steward, DESTROY, permit=permit)
    governance.holders.require_linkage_authority(actor, "keys_destroy", permit=permit, audited_as=DESTROY)
    store = KeyStore.of(workspace)
    found = store.exists(permit)  # refuses a permit id that could leave the store
    justification = (justification or "").strip()
    if not justification:
        raise refuse(audit, actor.name, actor.main_role, DESTROY, "a justification is required", permit=permit)
    if looks_like_identity_code(justification):
        raise refuse(audit, actor.name, actor.main_role, DESTROY,
                     "the justification looks like it holds a personal identity code; it must not", permit=permit)
    detail: dict[str, object] = {"justification_length": len(justification), "found": found}
    try:
        audit.append(actor=actor.name, role=actor.main_role, action=DESTROY, permit=permit,
                     detail=detail | {"justification": justification})
    except UnsafeAuditField:  # it looks like a secret: recorded by its length only
        audit.append(actor=actor.name, role=actor.main_role, action=DESTROY, permit=permit, detail=detail)
    found_key = store.destroy(permit)
    withdraw(workspace.pool_dir / permit)
    return found_key


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


def _open(payload: dict[str, str | int], passphrases: list[str], what: str) -> bytes:
    if not payload.get("encrypted"):
        return base64.b64decode(str(payload["key"]))
    if not passphrases:
        raise KeyStoreUnavailable(f"the key for {what} is encrypted; set {PASSPHRASE_ENV}")
    salt = base64.b64decode(str(payload["salt"]))
    for passphrase in passphrases:
        try:
            return AESGCM(_derive(passphrase, salt)).decrypt(
                base64.b64decode(str(payload["nonce"])), base64.b64decode(str(payload["sealed"])),
                b"safepool-permit-key",
            )
        except InvalidTag:
            continue
    raise KeyStoreUnavailable(f"wrong {PASSPHRASE_ENV} (or key passphrase file) for the key of {what}")
