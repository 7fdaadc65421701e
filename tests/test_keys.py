"""Keys (issue 11, point 5): encrypted at rest by default, destroyed only by a signed-in steward
with a justification, audited, overwritten before they are deleted."""

import base64
import json
import stat

import pytest

from governed import governance_with_users, sign_in
from safepool.governance.users import Refused
from safepool.identity.keystore import LEDGER_SECRET, PASSPHRASE_ENV, KeyStore, KeyStoreError, destroy_key
from safepool.pool.build import build_pool
from safepool.pool import access
from safepool.pool.access import POOL_FILE, PoolNotBuilt
from safepool.pool.ledger_keys import LEDGER_KEYS_FILE, LedgerKeysMissing, ledger_keys
from safepool.pool.scope import Scope
from safepool.workspace import Workspace
from tiny_registers import ANNA, make_workspace

WHY = "retention of permit P-1 ended on 2025-12-31 (decision 12/2025)"


@pytest.fixture(autouse=True)
def no_passphrase_variable(monkeypatch):
    monkeypatch.delenv(PASSPHRASE_ENV, raising=False)


@pytest.fixture
def setup(tmp_path):
    workspace = make_workspace(tmp_path / "ws")
    return workspace, governance_with_users(workspace.root)


def test_init_writes_a_private_random_passphrase(tmp_path):
    one, other = Workspace.init(tmp_path / "one"), Workspace.init(tmp_path / "two")
    for workspace in (one, other):
        assert stat.S_IMODE(workspace.key_passphrase_path.stat().st_mode) == 0o600
        assert len(workspace.key_passphrase_path.read_text().strip()) >= 40
    assert one.key_passphrase_path.read_text() != other.key_passphrase_path.read_text()


def test_a_key_file_on_disk_is_not_the_raw_key(setup):
    workspace, _ = setup
    key = KeyStore.of(workspace).create("P-1")
    raw = (workspace.steward_dir / "keys" / "P-1.key").read_bytes()
    payload = json.loads(raw)
    assert payload["encrypted"] == 1 and "key" not in payload
    for spelling in (key, base64.b64encode(key), key.hex().encode(), base64.urlsafe_b64encode(key)):
        assert spelling not in raw
    assert KeyStore.of(workspace).get("P-1") == key
    assert KeyStore(workspace.steward_dir / "keys").get("P-1") == key  # finds the passphrase beside it


def test_the_variable_takes_precedence_and_the_file_still_opens_older_keys(setup, monkeypatch):
    workspace, _ = setup
    store = KeyStore.of(workspace)
    by_file = store.create("P-1")
    monkeypatch.setenv(PASSPHRASE_ENV, "injected by the deployment")
    by_variable = store.create("P-2")
    assert store.get("P-1") == by_file and store.get("P-2") == by_variable
    monkeypatch.delenv(PASSPHRASE_ENV)
    with pytest.raises(KeyStoreError, match="wrong"):
        store.get("P-2")


def test_a_passphrase_file_others_can_read_is_refused(setup):
    workspace, _ = setup
    KeyStore.of(workspace).create("P-1")
    workspace.key_passphrase_path.chmod(0o644)
    with pytest.raises(KeyStoreError, match="readable by others"):
        KeyStore.of(workspace).get("P-1")


def test_a_steward_destroys_with_a_justification_overwritten_then_deleted_and_audited(setup):
    workspace, governance = setup
    store = KeyStore.of(workspace)
    store.create("P-1")
    path = workspace.steward_dir / "keys" / "P-1.key"
    before = path.read_bytes()
    witness = workspace.steward_dir / "witness"
    witness.hardlink_to(path)  # the same bytes on disk under another name: shows the overwrite
    assert destroy_key(workspace, governance, sign_in(governance, "stella"), "P-1", WHY) is True
    assert not path.exists()
    after = witness.read_bytes()
    assert len(after) == len(before) and after != before and before[:20] not in after
    with pytest.raises(KeyStoreError, match="no key"):
        store.get("P-1")
    record = governance.audit.records(action="keys_destroy")[-1]
    assert (record.actor, record.permit, record.outcome) == ("stella", "P-1", "ok")
    assert record.detail == {"justification": WHY, "justification_length": len(WHY), "found": True}
    assert destroy_key(workspace, governance, sign_in(governance, "stella"), "P-1", WHY) is False


@pytest.mark.parametrize("user", ["anna", "admin", "cecilia", "apu"])
def test_only_a_steward_destroys_a_key(setup, user):
    workspace, governance = setup
    KeyStore.of(workspace).create("P-1")
    with pytest.raises(Refused, match=f"user {user} is not a steward"):
        destroy_key(workspace, governance, sign_in(governance, user), "P-1", WHY)
    assert KeyStore.of(workspace).exists("P-1")
    assert governance.audit.records(action="keys_destroy")[-1].outcome == "refused"


@pytest.mark.parametrize("justification,reason", [
    ("", "a justification is required"),
    ("   ", "a justification is required"),
    (f"retention ended for {ANNA}", "identity code"),
    (f"retention ended for {ANNA.replace('-', chr(0x2013))}", "identity code"),
    ("retention ended for \uff10\uff11\uff10\uff11\uff18\uff15-202W", "identity code"),
])
def test_a_justification_is_required_and_holds_no_identity_code(setup, justification, reason):
    workspace, governance = setup
    KeyStore.of(workspace).create("P-1")
    with pytest.raises(Refused, match=reason):
        destroy_key(workspace, governance, sign_in(governance, "stella"), "P-1", justification)
    assert KeyStore.of(workspace).exists("P-1")
    record = governance.audit.records(action="keys_destroy")[-1]
    assert record.outcome == "refused" and ANNA not in json.dumps(record.detail)


def test_a_secret_looking_justification_is_recorded_by_its_length_only(setup):
    workspace, governance = setup
    KeyStore.of(workspace).create("P-1")
    secretish = "retention ended; ticket " + "Zx9q" * 10
    assert destroy_key(workspace, governance, sign_in(governance, "stella"), "P-1", secretish) is True
    record = governance.audit.records(action="keys_destroy")[-1]
    assert record.detail == {"justification_length": len(secretish), "found": True}


def test_a_permit_id_cannot_reach_outside_the_store(setup):
    workspace, governance = setup
    with pytest.raises(KeyStoreError):
        destroy_key(workspace, governance, sign_in(governance, "stella"), "../credentials", WHY)


def test_destroying_a_permits_key_shreds_its_pool_and_never_the_workspace_secret(setup):
    """The query ledger keeps answered cells' persons by ledger keys (which the steward zone can
    recompute from identity codes) and values, which a pool left behind could be matched on: the
    pool goes with the permit's key, shredded. The workspace's secret is no permit's key and
    cannot be destroyed so."""
    workspace, governance = setup
    build_pool(workspace, Scope(permit="P-1", window={"start": "2009Q1", "end": "2024Q4"},
                                registers={"population": "*"}))
    store = KeyStore.of(workspace)
    secret = store.ledger_secret()
    link = workspace.pool_dir / "P-1"
    files = [link / POOL_FILE, link / LEDGER_KEYS_FILE]
    witnesses = []
    for number, path in enumerate(files):
        witness = workspace.steward_dir / f"witness-{number}"
        witness.hardlink_to(path)  # the same bytes on disk under another name: shows the overwrite
        witnesses.append((witness, witness.read_bytes()))
    stella = sign_in(governance, "stella")
    assert destroy_key(workspace, governance, stella, "P-1", WHY) is True
    assert not link.exists() and not link.is_symlink()
    assert all(witness.read_bytes() != before for witness, before in witnesses)
    assert [p for p in workspace.pool_dir.rglob("*") if p.is_file()] == []
    with pytest.raises(PoolNotBuilt, match="no pool has been built for permit P-1"):
        access.pool_path(workspace.pool_dir, "P-1")
    with pytest.raises(LedgerKeysMissing, match="built before ledger keys existed"):
        ledger_keys(workspace.pool_dir, "P-1")
    with pytest.raises(KeyStoreError, match="begins with a letter or digit"):
        destroy_key(workspace, governance, stella, LEDGER_SECRET, WHY)
    assert store.ledger_secret() == secret and len(secret) == 32


def test_a_lost_ledger_secret_is_never_made_again_once_ledger_keys_are_in_use(setup):
    """A new secret would give every person a new ledger key, matching nothing the query ledger
    remembers: a quiet reset of it. A build refuses instead, and writes nothing."""
    workspace, governance = setup
    scope = {"window": {"start": "2009Q1", "end": "2024Q4"}, "registers": {"population": "*"}}
    build_pool(workspace, Scope(permit="P-1", **scope))
    (workspace.steward_dir / "keys" / f"{LEDGER_SECRET}.key").unlink()
    with pytest.raises(KeyStoreError, match="ledger secret .* is missing while pools and the query ledger use"):
        build_pool(workspace, Scope(permit="P-2", **scope))
    assert not (workspace.pool_dir / "P-2").exists()
    assert not (workspace.steward_dir / "keys" / f"{LEDGER_SECRET}.key").exists()


def test_a_workspace_of_an_earlier_version_makes_its_ledger_secret_at_its_next_build(setup):
    """Its permits' own query ledgers exist, but no pool has ledger keys and the workspace's ledger
    was never used: the secret has never existed, and is made, not asked to be restored."""
    workspace, governance = setup
    folder = workspace.pool_dir / ".query-ledger"
    folder.mkdir(parents=True)
    (folder / "P-0.duckdb").write_bytes(b"an earlier version's ledger of permit P-0")
    build_pool(workspace, Scope(permit="P-1", window={"start": "2009Q1", "end": "2024Q4"},
                                registers={"population": "*"}))
    assert (workspace.steward_dir / "keys" / f"{LEDGER_SECRET}.key").is_file()
    assert (workspace.pool_dir / "P-1" / LEDGER_KEYS_FILE).is_file()
