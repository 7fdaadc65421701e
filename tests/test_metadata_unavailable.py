"""A locked or unreachable metadata database is `Unavailable` with a message safe to show, never a
driver's traceback (issue 11, points 2 and 3)."""

from __future__ import annotations

import sqlite3

import pytest

from governed import PASSWORD, governance_with_users, sign_in
from safepool.faults import Unavailable
from safepool.governance.context import Governance

LOCKED = "the metadata database is not available (it is locked by another process); try again later"


def test_a_locked_database_is_unavailable(tmp_path, monkeypatch):
    governance_with_users(tmp_path)
    monkeypatch.setenv("SAFEPOOL_METADATA_TIMEOUT", "0.2")
    governance = Governance.open(tmp_path)
    holder = sqlite3.connect(tmp_path / "governance" / "metadata.sqlite", isolation_level=None)
    holder.execute("BEGIN IMMEDIATE")  # another process holds the write lock
    try:
        with pytest.raises(Unavailable) as caught:
            governance.users.authenticate("anna", PASSWORD)
        assert str(caught.value) == LOCKED
        with pytest.raises(Unavailable, match="locked by another process"):
            governance.audit.append(actor="anna", role="analyst", action="query")
    finally:
        holder.execute("ROLLBACK")
        holder.close()
    assert sign_in(governance, "anna").name == "anna"  # and it works again once the lock is gone
    assert governance.audit.verify().ok


def test_an_unreachable_server_is_unavailable_and_its_password_is_not_shown(tmp_path):
    with pytest.raises(Unavailable) as caught:
        Governance.open(tmp_path, url="postgresql+psycopg://safepool:s3cret-pw@127.0.0.1:1/metadata")
    assert str(caught.value) == "the metadata database is not available (it cannot be reached); try again later"
    assert "s3cret" not in str(caught.value) and "127.0.0.1" not in str(caught.value)


def test_a_database_file_that_cannot_be_opened_is_unavailable(tmp_path):
    with pytest.raises(Unavailable, match="its file cannot be opened or written"):
        Governance.open(tmp_path, url=f"sqlite:///{tmp_path}/no/such/folder/metadata.sqlite")


@pytest.mark.parametrize("damage", ["random bytes", "cut in half"])
def test_a_damaged_database_file_is_unavailable_not_a_traceback(tmp_path, damage):
    """A metadata file overwritten or cut short: one message, through the Session and the command
    line alike (exit code 7), never the driver's words."""
    from typer.testing import CliRunner

    from safepool.cli import app
    from safepool.session import connect
    from tiny_registers import make_workspace

    workspace = make_workspace(tmp_path / "ws")
    # its connections closed now: one closed later (by the collector) would write its write-ahead
    # log back into the damaged file and mend it
    governance_with_users(workspace.root).users.engine.dispose()
    path = workspace.root / "governance" / "metadata.sqlite"
    for side in ("-wal", "-shm"):
        (path.parent / (path.name + side)).unlink(missing_ok=True)
    data = path.read_bytes()
    path.write_bytes(bytes(range(256)) * 4 if damage == "random bytes" else data[: len(data) // 2])
    with pytest.raises(Unavailable, match="the metadata database is not available") as caught:
        connect(workspace.root, user="anna", password=PASSWORD)
    assert "sqlite" not in str(caught.value).lower()
    result = CliRunner().invoke(app, ["permit", "list", "--user", "anna", "-w", str(workspace.root)],
                                env={"SAFEPOOL_PASSWORD": PASSWORD})
    assert result.exit_code == 7, result.output
    assert result.output.startswith("error: the metadata database is not available") and "Traceback" not in result.output
