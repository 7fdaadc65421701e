"""The audit log: hash chain, tamper diagnosis, privacy guard, concurrency and kill safety."""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import os
import random
import re
import secrets
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pyarrow as pa
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from safepool.governance.audit import (
    GENESIS_HASH,
    AuditLog,
    AuditRecord,
    UnsafeAuditField,
    audit_records,
    record_hash,
    result_digest,
    verify_rows,
)
from safepool.governance.db import connect_engine, create_schema

SRC = Path(__file__).resolve().parents[1] / "src"
T0 = dt.datetime(2024, 5, 6, 8, 0, tzinfo=dt.timezone.utc)


@pytest.fixture
def engine(tmp_path):
    engine = connect_engine(f"sqlite:///{tmp_path}/m.sqlite")
    create_schema(engine)
    yield engine
    engine.dispose()


@pytest.fixture
def log(engine):
    return AuditLog(engine)


def fill(log: AuditLog, n: int, **overrides) -> list[AuditRecord]:
    out = []
    for i in range(n):
        fields = dict(
            actor=f"user{i % 3}",
            role="analyst",
            action="query" if i % 2 else "read",
            permit=f"P{i % 2}",
            target=f"register_{i % 4}",
            rows=i * 10,
            detail={"persons": i, "query_signature": f"sig{i % 5}"},
            at=T0 + dt.timedelta(minutes=i),
        )
        fields.update(overrides)
        out.append(log.append(**fields))
    return out


# --------------------------------------------------------------------------- tampering as an
# attacker with write access to the database file would: drop the append-only triggers first.


def sql(engine, *statements: str, params: dict | None = None) -> None:
    with engine.begin() as conn:
        conn.exec_driver_sql("DROP TRIGGER IF EXISTS audit_records_no_update")
        conn.exec_driver_sql("DROP TRIGGER IF EXISTS audit_records_no_delete")
        for statement in statements:
            conn.exec_driver_sql(statement, params or {})


def stored(engine, seq: int) -> dict:
    with engine.connect() as conn:
        row = conn.execute(audit_records.select().where(audit_records.c.seq == seq)).first()
    return dict(row._mapping)


def forged(engine, seq: int, prev_seq: int) -> dict:
    """A well-formed record with a correct hash, as someone who knows the algorithm makes it."""
    fields = dict(stored(engine, prev_seq), seq=seq, actor="intruder", detail="{}")
    fields["prev_hash"] = stored(engine, prev_seq)["record_hash"]
    fields["record_hash"] = record_hash(fields)
    return fields


def insert(engine, fields: dict) -> None:
    with engine.begin() as conn:
        conn.execute(audit_records.insert().values(**fields))


# --------------------------------------------------------------------------- basics


def test_append_stores_a_linked_chain(log, engine):
    records = fill(log, 5)
    assert [r.seq for r in records] == [1, 2, 3, 4, 5]
    assert records[0].prev_hash == GENESIS_HASH == "0" * 64
    for before, after in zip(records, records[1:]):
        assert after.prev_hash == before.record_hash
    row = stored(engine, 3)
    assert row["at"] == "2024-05-06T08:02:00.000000+00:00"
    assert row["detail"] == '{"persons":2,"query_signature":"sig2"}'  # canonical: sorted, compact
    assert row["record_hash"] == record_hash(row) == records[2].record_hash
    assert log.records() == records
    assert log.head() == records[-1]
    assert records[2].detail == {"persons": 2, "query_signature": "sig2"}
    assert log.verify().ok and log.verify().checked == 5


def test_default_time_is_now_in_utc_with_microseconds(log, engine):
    before = dt.datetime.now(dt.timezone.utc)
    record = log.append(actor="ana", role="analyst", action="login")
    after = dt.datetime.now(dt.timezone.utc)
    assert before <= record.at <= after and record.at.tzinfo == dt.timezone.utc
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}\+00:00", stored(engine, 1)["at"])


def test_other_time_zones_are_stored_as_utc(log):
    helsinki = dt.timezone(dt.timedelta(hours=3))
    record = log.append(actor="ana", role="analyst", action="login", at=dt.datetime(2024, 6, 1, 12, 0, tzinfo=helsinki))
    assert record.at == dt.datetime(2024, 6, 1, 9, 0, tzinfo=dt.timezone.utc)


def test_empty_log(log):
    assert log.head() is None
    assert log.records() == []
    verdict = log.verify()
    assert verdict.ok and verdict.checked == 0 and verdict.first_broken is None and verdict.reason is None


def test_records_filters(log):
    fill(log, 12)
    log.append(actor="user1", role="analyst", action="query", outcome="refused", at=T0 + dt.timedelta(hours=2))
    assert {r.actor for r in log.records(user="user1")} == {"user1"}
    assert len(log.records(user="user1")) == 5
    assert all(r.permit == "P0" for r in log.records(permit="P0")) and len(log.records(permit="P0")) == 6
    assert len(log.records(action="query")) == 7
    assert [r.seq for r in log.records(outcome="refused")] == [13]
    window = log.records(since=T0 + dt.timedelta(minutes=3), until=T0 + dt.timedelta(minutes=6))
    assert [r.seq for r in window] == [4, 5, 6]  # since inclusive, until exclusive
    assert [r.seq for r in log.records(user="user1", action="query", since=T0 + dt.timedelta(minutes=5))] == [8, 13]
    with pytest.raises(ValueError):
        log.records(since=dt.datetime(2024, 1, 1))


@pytest.mark.parametrize(
    "bad",
    [
        dict(outcome="maybe"),
        dict(rows=-1),
        dict(rows=True),
        dict(actor=""),
        dict(at=dt.datetime(2024, 1, 1, 12, 0)),  # naive: ambiguous
        dict(result_hash="abc"),
        dict(detail={"x": float("nan")}),
        dict(detail={"x": object()}),
        dict(detail={1: "x"}),
    ],
)
def test_malformed_appends_are_refused_and_write_nothing(log, bad):
    fields = dict(actor="ana", role="analyst", action="query") | bad
    with pytest.raises((ValueError, TypeError)):
        log.append(**fields)
    assert log.head() is None


def test_update_and_delete_are_refused_by_the_database(log, engine):
    fill(log, 3)
    for statement in ("UPDATE audit_records SET actor = 'x' WHERE seq = 2", "DELETE FROM audit_records WHERE seq = 3"):
        with pytest.raises(Exception, match="append-only"):
            with engine.begin() as conn:
                conn.exec_driver_sql(statement)
    assert log.verify().ok and len(log.records()) == 3


def test_stored_rows_are_read_in_batches(log):
    fill(log, 23)
    assert list(log._stored_rows(batch=5)) == list(log._stored_rows())
    assert verify_rows(log._stored_rows(batch=5)).checked == 23


# --------------------------------------------------------------------------- tampering


def test_edit_is_detected(log, engine):
    fill(log, 40)
    sql(engine, "UPDATE audit_records SET rows = 1 WHERE seq = 17")
    verdict = log.verify()
    assert (verdict.ok, verdict.first_broken, verdict.checked) == (False, 17, 16)
    assert verdict.reason == "record 17 was edited"


@pytest.mark.parametrize("column", ["actor", "at", "detail", "outcome", "permit", "prev_hash", "record_hash"])
def test_edit_of_any_column_is_detected(log, engine, column):
    fill(log, 10)
    value = {"at": "2024-05-06T08:04:00.000001+00:00", "detail": '{"persons":5}', "outcome": "refused"}.get(column, "1" * 64)
    sql(engine, f"UPDATE audit_records SET {column} = :v WHERE seq = 5", params={"v": value})
    verdict = log.verify()
    assert (verdict.first_broken, verdict.reason) == (5, "record 5 was edited")


def test_edit_with_recomputed_hash_is_detected_at_the_next_link(log, engine):
    fill(log, 40)
    row = stored(engine, 17) | {"actor": "someone_else"}
    sql(engine, "UPDATE audit_records SET actor = :a, record_hash = :h WHERE seq = 17", params={"a": row["actor"], "h": record_hash(row)})
    verdict = log.verify()
    assert verdict.first_broken == 17
    assert verdict.reason.startswith("record 17 was edited")


def test_deletion_is_detected(log, engine):
    fill(log, 40)
    sql(engine, "DELETE FROM audit_records WHERE seq = 12")
    verdict = log.verify()
    assert (verdict.ok, verdict.first_broken, verdict.reason) == (False, 12, "record 12 is missing (deleted)")


def test_deletion_of_several_and_of_the_first_is_detected(log, engine):
    fill(log, 20)
    sql(engine, "DELETE FROM audit_records WHERE seq BETWEEN 5 AND 7")
    assert log.verify().reason == "records 5 to 7 are missing (deleted)"
    sql(engine, "DELETE FROM audit_records WHERE seq = 1")
    verdict = log.verify()
    assert (verdict.first_broken, verdict.reason, verdict.checked) == (1, "record 1 is missing (deleted)", 0)


def test_deletion_with_renumbering_is_detected(log, engine):
    fill(log, 40)
    sql(
        engine,
        "DELETE FROM audit_records WHERE seq = 12",
        "UPDATE audit_records SET seq = seq + 1000000 WHERE seq > 12",
        "UPDATE audit_records SET seq = seq - 1000001 WHERE seq > 1000000",
    )
    verdict = log.verify()
    assert verdict.first_broken == 12
    assert verdict.reason.startswith("record 12 is missing (deleted")


def test_reordering_is_detected(log, engine):
    fill(log, 40)
    sql(
        engine,
        "UPDATE audit_records SET seq = 1000000 WHERE seq = 30",
        "UPDATE audit_records SET seq = 30 WHERE seq = 31",
        "UPDATE audit_records SET seq = 31 WHERE seq = 1000000",
    )
    verdict = log.verify()
    assert (verdict.first_broken, verdict.reason, verdict.checked) == (30, "records 30 and 31 are out of order", 29)


def _shift_up_from(engine, seq: int) -> None:
    sql(
        engine,
        f"UPDATE audit_records SET seq = seq + 1000000 WHERE seq >= {seq}",
        "UPDATE audit_records SET seq = seq - 999999 WHERE seq >= 1000000",
    )


def test_insertion_with_a_correct_hash_is_detected(log, engine):
    fill(log, 20)
    record = forged(engine, 9, prev_seq=8)
    _shift_up_from(engine, 9)
    insert(engine, record)
    verdict = log.verify()
    assert (verdict.first_broken, verdict.reason) == (9, "a record was inserted before 9")


def test_insertion_with_a_wrong_hash_is_detected(log, engine):
    fill(log, 20)
    record = forged(engine, 9, prev_seq=8) | {"record_hash": "f" * 64}
    _shift_up_from(engine, 9)
    insert(engine, record)
    verdict = log.verify()
    assert (verdict.first_broken, verdict.reason) == (9, "a record was inserted before 9")


def test_truncation_and_rewriting_are_caught_against_an_anchor(log, engine):
    fill(log, 10)
    anchor = log.head()
    fill(log, 2)
    assert log.verify(anchor=anchor).ok
    sql(engine, "DELETE FROM audit_records WHERE seq >= 9")
    assert log.verify().ok  # a cut-off tail leaves no trace in the chain itself ...
    verdict = log.verify(anchor=anchor)  # ... but does against a saved head
    assert (verdict.ok, verdict.first_broken) == (False, 9)
    assert verdict.reason.startswith("records 9 to 10 are missing")
    # Rewrite record 8 and re-hash everything after it: only the anchor can tell.
    row = stored(engine, 8) | {"actor": "someone_else"}
    row["record_hash"] = record_hash(row)
    sql(engine, "DELETE FROM audit_records WHERE seq = 8")
    insert(engine, row)
    assert log.verify().ok
    assert log.verify(anchor=(8, anchor.prev_hash)).reason == "record 8 does not match the saved anchor (the log was rewritten)"


# A pure, fast property check of the diagnosis on in-memory chains.


def _chain(n: int) -> list[dict]:
    rows, prev = [], GENESIS_HASH
    for seq in range(1, n + 1):
        row = dict(
            seq=seq, at=f"2024-01-01T00:00:{seq % 60:02d}.000000+00:00", actor=f"u{seq % 3}", role="analyst",
            action="query", permit="P1", target=None, rows=seq, result_hash=None, outcome="ok",
            detail="{}", prev_hash=prev,
        )
        row["record_hash"] = prev = record_hash(row)
        rows.append(row)
    return rows


@settings(max_examples=150, deadline=None)
@given(
    n=st.integers(min_value=3, max_value=60),
    where=st.floats(min_value=0, max_value=1, exclude_max=True),
    kind=st.sampled_from(["edit", "edit_rehash", "delete", "delete_renumber", "swap", "insert", "insert_bad_hash"]),
)
def test_diagnosis_names_the_first_broken_record(n, where, kind):
    rows = _chain(n)
    k = 1 + int(where * (n - 1))  # 1 .. n-1: a change to the very last record needs an anchor
    idx = k - 1
    expect: tuple[int, str]
    if kind == "edit":
        rows[idx] = rows[idx] | {"rows": -5}
        expect = (k, f"record {k} was edited")
    elif kind == "edit_rehash":
        rows[idx] = rows[idx] | {"actor": "x"}
        rows[idx]["record_hash"] = record_hash(rows[idx])
        expect = (k, f"record {k} was edited")
    elif kind == "delete":
        del rows[idx]
        expect = (k, f"record {k} is missing")
    elif kind == "delete_renumber":
        del rows[idx]
        rows = rows[:idx] + [r | {"seq": r["seq"] - 1} for r in rows[idx:]]
        expect = (k, f"record {k} is missing")
    elif kind == "swap":
        a, b = rows[idx], rows[idx + 1]
        rows[idx], rows[idx + 1] = b | {"seq": k}, a | {"seq": k + 1}
        expect = (k, f"records {k} and {k + 1} are out of order")
    else:
        new = dict(rows[idx], actor="intruder", prev_hash=rows[idx - 1]["record_hash"] if idx else GENESIS_HASH)
        new["record_hash"] = record_hash(new) if kind == "insert" else "e" * 64
        rows = rows[:idx] + [new] + [r | {"seq": r["seq"] + 1} for r in rows[idx:]]
        expect = (k, f"a record was inserted before {k}")
    verdict = verify_rows(rows)
    assert not verdict.ok
    assert verdict.first_broken == expect[0]
    assert verdict.reason.startswith(expect[1])
    assert verdict.checked == expect[0] - 1


# --------------------------------------------------------------------------- privacy guard

HETUS = [
    "131052-308T",  # 1900s
    "131052+308T",  # 1800s
    "010594Y9032",  # 1900s, new sign
    "010594U903V",
    "020516C903K",  # 2000s
    "020516a903k",  # lowercase
    "311299F999J",
]


@pytest.mark.parametrize("code", HETUS)
@pytest.mark.parametrize(
    "where",
    ["actor", "role", "action", "permit", "target", "detail_value", "detail_nested", "detail_list", "detail_key", "in_text"],
)
def test_identity_codes_are_refused_everywhere(log, code, where):
    fields = dict(actor="ana", role="analyst", action="query")
    expected_field = where
    if where == "detail_value":
        fields["detail"], expected_field = {"who": code}, "detail.who"
    elif where == "detail_nested":
        fields["detail"], expected_field = {"a": {"b": [1, {"c": code}]}}, "detail.a.b[1].c"
    elif where == "detail_list":
        fields["detail"], expected_field = {"ids": ["x", code]}, "detail.ids[1]"
    elif where == "detail_key":
        fields["detail"], expected_field = {"a": {code: 1}}, "detail.a (one of its keys)"
    elif where == "in_text":
        fields["target"], expected_field = f"person {code} asked", "target"
    else:
        fields[where] = code
    with pytest.raises(UnsafeAuditField) as caught:
        log.append(**fields)
    error = caught.value
    assert isinstance(error, ValueError)
    assert error.field == expected_field
    assert code.lower() not in str(error).lower() and code.lower() not in repr(error).lower()
    assert "identity code" in str(error)
    assert log.head() is None


@pytest.mark.parametrize("name", ["password", "db_password", "secret", "clientSecret", "key", "api_key", "hmacKey", "token", "access_token", "passphrase"])
def test_secret_key_names_in_detail_are_refused(log, name):
    with pytest.raises(UnsafeAuditField) as caught:
        log.append(actor="ana", role="analyst", action="query", detail={"conn": {name: "hunter2"}})
    assert caught.value.field == f"detail.conn.{name}"
    assert "hunter2" not in str(caught.value)


@pytest.mark.parametrize(
    "value",
    [
        secrets.token_hex(16),
        secrets.token_hex(32),
        secrets.token_hex(32).upper(),
        base64.b64encode(secrets.token_bytes(32)).decode(),
        "d9ZmT3pQx0vL7cRbN2kYwE5hJ8sUaG4fX1oKqV6iPtM=",
        "postgresql://u@h/db?pass=" + base64.urlsafe_b64encode(secrets.token_bytes(32)).decode(),
        "Bearer 3f9a1c0e7b2d4f6a8c0e2b4d6f8a0c2e",
    ],
    ids=["hex16", "hex32", "HEX32", "base64", "base64-fixed", "url-password", "bearer"],  # names fixed for xdist
)
@pytest.mark.parametrize("where", ["target", "detail", "result_hash_elsewhere"])
def test_secret_looking_strings_are_refused(log, value, where):
    if where == "target":
        fields, field = {"target": value}, "target"
    elif where == "detail":
        fields, field = {"detail": {"note": value}}, "detail.note"
    else:  # a digest-shaped value is only allowed in a digest field
        fields, field = {"detail": {"output": value}}, "detail.output"
    with pytest.raises(UnsafeAuditField) as caught:
        log.append(actor="ana", role="analyst", action="query", **fields)
    assert caught.value.field == field
    assert value not in str(caught.value)


def test_ordinary_values_and_digests_pass(log):
    digest = hashlib.sha256(b"result").hexdigest()
    record = log.append(
        actor="analyst.vtt-01",
        role="analyst",
        action="query",
        permit="P-2024-017",
        target="employment_register_quarterly_2019_2024",
        rows=1234,
        result_hash=digest,
        detail={
            "query_signature": hashlib.sha256(b"select count(*) from pool where age > ?").hexdigest(),
            "output_hash": digest,
            "output": "3f2504e0-4f89-41d3-9a0c-0305e82c3301",
            "columns": ["AgeGroupByMunicipalityAndQuarterCounts", "municipality_code", "quarter"],
            "when": dt.date(2024, 5, 6),
            "at": "2024-05-06T08:00:00.123456+00:00",
            "persons": 812,
            "ratio": 0.25,
            "fine": None,
            "ok": True,
            "path": "/work/pool/P-2024-017/employment.parquet",
            "phone_like": "040-1234567",
            "number_run": "12345678901234567890",
        },
    )
    assert record.detail["when"] == "2024-05-06"
    assert log.verify().ok


@pytest.mark.parametrize("run", [99, 151, 173, 1234])
def test_long_paths_of_plain_names_pass(log, run):
    """A path is not a secret, however long (the entropy of a long path reaches random text's)."""
    path = f"/tmp/pytest-of-root/pytest-{run}/test_a_policy_file_changed_out0/disclosure.yaml"
    log.append(actor="safepool", role="system", action="policy_check", detail={"reason": f"file {path} changed"})
    with pytest.raises(UnsafeAuditField):
        log.append(actor="ana", role="analyst", action="query", detail={"note": "/srv/keys/x9Kq2Lm7Zp4Rt8Wvb3Yc6Df1/data"})


def test_digest_fields_hold_only_digests(log):
    with pytest.raises(UnsafeAuditField, match="result_hash"):
        log.append(actor="ana", role="analyst", action="query", result_hash="131052-308T")
    with pytest.raises(UnsafeAuditField) as caught:
        log.append(actor="ana", role="analyst", action="query", detail={"query_signature": "x " + secrets.token_hex(32)})
    assert caught.value.field == "detail.query_signature"


# --------------------------------------------------------------------------- result digests


def test_result_digest():
    assert result_digest(b"abc") == hashlib.sha256(b"abc").hexdigest()
    assert result_digest("äbc") == hashlib.sha256("äbc".encode()).hexdigest()
    table = pa.table({"group": ["a", "b", None], "n": pa.array([5, 7, 9], pa.int32()), "day": [dt.date(2024, 1, 1)] * 3})
    as_rows = table.to_pylist()
    digest = result_digest(table)
    assert len(digest) == 64
    assert result_digest(as_rows) == digest
    assert result_digest(pa.Table.from_batches(table.to_batches(max_chunksize=1))) == digest
    assert result_digest(table.to_batches()[0]) == digest
    assert result_digest(table.cast(pa.schema([("group", pa.large_string()), ("n", pa.int64()), ("day", pa.date32())]))) == digest
    assert result_digest(list(reversed(as_rows))) != digest  # row order matters
    assert result_digest(table.select(["n", "group", "day"])) != digest  # column order matters
    assert result_digest([{**r, "n": r["n"] + 1} if i == 1 else r for i, r in enumerate(as_rows)]) != digest
    assert result_digest([("a", 5), ("b", 7)]) == result_digest([["a", 5], ["b", 7]])
    assert result_digest([("a", 5)]) != result_digest([("a", 6)])
    with pytest.raises(ValueError):
        result_digest([{"a": 1}, {"b": 1}])
    with pytest.raises(TypeError):
        result_digest(42)


# --------------------------------------------------------------------------- concurrency and kills

CHILD = r"""
import sys
from safepool.governance.audit import AuditLog
from safepool.governance.db import connect_engine
url, mode, name = sys.argv[1], sys.argv[2], sys.argv[3]
log = AuditLog(connect_engine(url))
padding = {"note": "lorem ipsum dolor sit amet " * 80}
i = 0
while mode == "forever" or i < int(mode):
    record = log.append(actor=name, role="analyst", action="query", permit="P1", rows=i, detail=padding)
    print(record.seq, flush=True)
    i += 1
"""


def _child(url: str, mode: str, name: str) -> subprocess.Popen:
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(SRC), os.environ.get("PYTHONPATH", "")]))
    return subprocess.Popen([sys.executable, "-c", CHILD, url, mode, name], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)


def test_concurrent_processes_never_fork_the_chain(tmp_path, log):
    url = f"sqlite:///{tmp_path}/m.sqlite"
    workers = [_child(url, "40", f"worker{w}") for w in range(4)]
    outputs = [w.communicate(timeout=60) for w in workers]
    assert [w.returncode for w in workers] == [0] * 4, [err for _, err in outputs]
    printed = sorted(int(s) for out, _ in outputs for s in out.split())
    assert printed == list(range(1, 161))  # every append got its own seq, no gaps
    records = log.records()
    assert [r.seq for r in records] == list(range(1, 161))
    assert {r.actor for r in records} == {f"worker{w}" for w in range(4)}
    assert log.verify().ok


def test_concurrent_threads_in_one_process(log):
    errors: list[BaseException] = []

    def work(name: str) -> None:
        try:
            for _ in range(25):
                log.append(actor=name, role="analyst", action="query")
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(f"t{i}",)) for i in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not errors
    assert [r.seq for r in log.records()] == list(range(1, 101))
    assert log.verify().ok


def test_sigkill_while_appending_never_loses_a_committed_record(tmp_path, log):
    url = f"sqlite:///{tmp_path}/m.sqlite"
    seed = random.randrange(2**32)
    rng = random.Random(seed)
    committed: set[int] = set()
    for round_ in range(4):
        child = _child(url, "forever", f"writer{round_}")
        first = child.stdout.readline()  # it is writing now
        assert first.strip(), child.stderr.read()
        time.sleep(rng.uniform(0.0, 0.25))
        child.send_signal(signal.SIGKILL)
        child.wait(timeout=30)
        assert child.returncode == -signal.SIGKILL
        reported = {int(s) for s in (first + child.stdout.read()).split()}
        child.stdout.close()
        child.stderr.close()
        assert reported and min(reported) > max(committed, default=0), seed
        committed |= reported
        # Every record the writer saw committed is there, and the chain is whole.
        verdict = log.verify()
        assert verdict.ok, (seed, verdict)
        present = {r.seq for r in log.records()}
        assert committed <= present, (seed, sorted(committed - present))
        assert present == set(range(1, len(present) + 1)), seed
    after = log.append(actor="after", role="analyst", action="query")
    assert after.seq == log.head().seq and log.verify().ok


# --------------------------------------------------------------------------- PostgreSQL


@pytest.mark.postgres
def test_postgresql_append_verify_and_tamper(postgres_database):
    url = postgres_database.url_with_password.replace("postgresql://", "postgresql+psycopg://", 1)
    engine = connect_engine(url)
    try:
        create_schema(engine)
        log = AuditLog(engine)
        fill(log, 10)
        threads = [threading.Thread(target=lambda n=i: fill(log, 10, actor=f"pg{n}")) for i in range(3)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        records = log.records()
        assert [r.seq for r in records] == list(range(1, 41))
        assert records[4].detail == {"persons": 4, "query_signature": "sig4"}
        assert records[4].at == T0 + dt.timedelta(minutes=4)
        assert log.verify().ok and log.verify().checked == 40
        assert [r.seq for r in log.records(user="user1", until=T0 + dt.timedelta(minutes=5))] == [2, 5]
        with pytest.raises(Exception, match="append-only"):
            with engine.begin() as conn:
                conn.exec_driver_sql("UPDATE audit_records SET actor = 'x' WHERE seq = 7")
        with engine.begin() as conn:
            conn.exec_driver_sql("DROP TRIGGER audit_records_append_only ON audit_records")
            conn.exec_driver_sql("UPDATE audit_records SET rows = 0 WHERE seq = 7")
        verdict = log.verify()
        assert (verdict.ok, verdict.first_broken, verdict.reason) == (False, 7, "record 7 was edited")
    finally:
        engine.dispose()
