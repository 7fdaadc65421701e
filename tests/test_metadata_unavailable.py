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
