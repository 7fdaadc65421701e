import hashlib
import hmac
import os
import stat

import duckdb
import pyarrow as pa
import pytest

from safepool.identity.keystore import PASSPHRASE_ENV, KeyStore, KeyStoreError
from safepool.identity.pseudonym import Pseudonymiser
from safepool.pool.pseudonyms import MalformedPseudonym, parse, parse_lines, shown
from tiny_registers import ANNA, BO, CHEN


def sql_pseudonyms(pseudonymiser, codes):
    con = duckdb.connect()
    con.execute("CREATE TABLE codes (code VARCHAR)")
    con.executemany("INSERT INTO codes VALUES (?)", [[c] for c in codes])
    pseudonymiser.create_map(con, "m", "SELECT code FROM codes")
    return dict(con.execute("SELECT code, pid FROM m").fetchall())


def test_sql_hmac_equals_python_hmac():
    pseudonymiser = Pseudonymiser(os.urandom(32))
    mapped = sql_pseudonyms(pseudonymiser, [ANNA, BO, CHEN, ANNA])
    assert len(mapped) == 3  # once per distinct code
    assert all(mapped[c] == pseudonymiser.pseudonym(c) for c in mapped)
    assert all(isinstance(pid, int) and 0 <= pid < 2**60 for pid in mapped.values())


def test_the_stored_number_is_the_number_string_shown_before():
    """The pool stores the number; people see the same zero-padded 19 digits as always."""
    key = os.urandom(32)
    for code in (ANNA, BO, CHEN):
        digits = str(int(hmac.new(key, code.encode(), hashlib.sha256).hexdigest()[:15], 16)).zfill(19)
        assert shown(Pseudonymiser(key).pseudonym(code)) == digits
        assert parse(digits) == Pseudonymiser(key).pseudonym(code)
    assert shown(42) == "0000000000000000042" and parse(" 0000000000000000042\n") == 42


@pytest.mark.parametrize("text", ["42", "12345678901234567890", "9" * 19, "-000000000000000042", "",
                                  "\uff11" * 19, "00000000000000004a2", ANNA])
def test_text_that_is_no_pseudonym_is_refused_without_echo(text):
    with pytest.raises(MalformedPseudonym) as refused:
        parse(text)
    assert "19 digits" in str(refused.value)
    with pytest.raises(MalformedPseudonym) as refused:
        parse_lines(f"{shown(7)}\n\n{shown(8)}\n{text}x\n", "the file at-risk.txt")
    message = str(refused.value)
    assert message.startswith("the file at-risk.txt, line 4: not a pseudonym")
    assert not text or text not in message
    assert parse_lines(f"{shown(7)}\n\n {shown(8)}\n", "f") == [shown(7), shown(8)]


def test_long_keys_are_hashed_as_rfc2104_says():
    pseudonymiser = Pseudonymiser(os.urandom(100))
    assert sql_pseudonyms(pseudonymiser, [ANNA])[ANNA] == pseudonymiser.pseudonym(ANNA)


def test_other_permit_key_gives_unlinkable_pseudonyms():
    one, other = Pseudonymiser(os.urandom(32)), Pseudonymiser(os.urandom(32))
    assert one.pseudonym(ANNA) != other.pseudonym(ANNA)
    assert "key" in repr(one) and "hidden" in repr(one)


def test_short_keys_are_refused():
    with pytest.raises(ValueError):
        Pseudonymiser(b"short")


def test_key_file_is_private_and_stable(tmp_path, monkeypatch):
    monkeypatch.delenv(PASSPHRASE_ENV, raising=False)
    store = KeyStore(tmp_path / "keys")
    key = store.create("P-1")
    assert stat.S_IMODE((tmp_path / "keys" / "P-1.key").stat().st_mode) == 0o600
    assert store.get("P-1") == key == store.get_or_create("P-1")
    with pytest.raises(KeyStoreError, match="exists already"):
        store.create("P-1")


def test_encrypted_key_needs_the_passphrase(tmp_path, monkeypatch):
    monkeypatch.setenv(PASSPHRASE_ENV, "correct horse")
    store = KeyStore(tmp_path / "keys")
    key = store.create("P-2")
    assert key.hex() not in (tmp_path / "keys" / "P-2.key").read_text()
    assert store.get("P-2") == key
    monkeypatch.setenv(PASSPHRASE_ENV, "wrong")
    with pytest.raises(KeyStoreError, match="wrong"):
        store.get("P-2")
    monkeypatch.delenv(PASSPHRASE_ENV)
    with pytest.raises(KeyStoreError, match="encrypted"):
        store.get("P-2")


def test_readable_key_file_is_refused(tmp_path, monkeypatch):
    monkeypatch.delenv(PASSPHRASE_ENV, raising=False)
    store = KeyStore(tmp_path)
    store.create("P-3")
    os.chmod(tmp_path / "P-3.key", 0o644)
    with pytest.raises(KeyStoreError, match="readable by others"):
        store.get("P-3")


def test_destroyed_key_is_gone(tmp_path):
    store = KeyStore(tmp_path)
    store.create("P-4")
    assert store.destroy("P-4") is True
    assert not (tmp_path / "P-4.key").exists()
    with pytest.raises(KeyStoreError, match="no key"):
        store.get("P-4")
    assert store.destroy("P-4") is False


def test_permit_ids_cannot_escape_the_store(tmp_path):
    with pytest.raises(KeyStoreError):
        KeyStore(tmp_path).create("../outside")


def test_bulk_pseudonyms_agree_with_python_across_many_batches():
    """Tens of thousands of codes are hashed in parallel batches; each keeps its own pseudonym."""
    pseudonymiser = Pseudonymiser(os.urandom(32))
    codes = [f"{i:06d}-{i % 898 + 2:03d}{'ABCDEFHJKLMNPRSTUVWXY'[i % 21]}" for i in range(40_000)]
    mapped = sql_pseudonyms(pseudonymiser, codes)
    assert len(mapped) == len(codes)
    assert all(mapped[c] == pseudonymiser.pseudonym(c) for c in codes)
    assert pseudonymiser.pseudonym_table(pa.array([], pa.string())).num_rows == 0


def test_hashing_failure_withholds_the_engine_message(monkeypatch):
    """An engine error could print the expression with the key pads; only a plain message goes out."""
    import safepool.identity.pseudonym as module

    pseudonymiser = Pseudonymiser(os.urandom(32))

    class FailingContext:
        def from_arrow(self, table):
            raise RuntimeError(f"plan: concat({pseudonymiser._ipad.hex()}, code)")

    monkeypatch.setattr(module, "SessionContext", FailingContext)
    with pytest.raises(module.PseudonymisationError) as failure:
        sql_pseudonyms(pseudonymiser, [ANNA])
    assert pseudonymiser._ipad.hex() not in str(failure.value)
    assert failure.value.__cause__ is None and failure.value.__suppress_context__


def test_leading_bits_read_any_binary_layout():
    """The number is the MAC's first 60 bits, whatever binary layout the engine returns."""
    from safepool.identity.pseudonym import leading_bits

    macs = [os.urandom(32) for _ in range(50)] + [b"\xff" * 32]
    expected = [int(mac.hex()[:15], 16) for mac in macs]
    for kind in (pa.binary(), pa.large_binary()):
        chunked = pa.chunked_array([pa.array(macs[:20], kind), pa.array(macs[20:], kind)]).slice(0)
        assert leading_bits(chunked).type == pa.int64()
        assert leading_bits(chunked).to_pylist() == expected
    assert leading_bits(pa.chunked_array([pa.array(macs, pa.binary())]).slice(7, 5)).to_pylist() == expected[7:12]
