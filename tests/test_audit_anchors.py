"""The audit anchor (issue 11, point 4): the chain's head kept outside the metadata database (the
steward zone's append-only anchors every N records and at every release, a witness line per
record) and in every release manifest; `verify` checks the chain against them and names the first
wrong record for each kind of tampering, truncation and rehashing included."""

from __future__ import annotations

import json
import stat

import pytest

from governed import governance_with_users, sign_in
from recorded_outputs import CONTEXT, by_area, governed_outputs, record
from safepool.governance.alerts import BROKEN_CHAIN, run_alerts
from safepool.governance.anchors import ANCHORS_FILE, WITNESS_FILE
from safepool.governance.audit import audit_records, record_hash
from safepool.governance.context import Governance
from safepool.governance.settings import GovernanceSettings
from test_audit import _shift_up_from, forged, insert, sql, stored

EVERY = 10
N = 60


@pytest.fixture
def governance(tmp_path):
    governance = Governance.open(tmp_path, settings=GovernanceSettings(audit_anchor_every=EVERY))
    for i in range(N):
        governance.audit.append(actor=f"user{i % 3}", role="analyst", action="query", permit="P1", rows=i)
    return governance


def engine_of(governance):
    return governance.audit.engine


def verdict_of(governance):
    verdict = governance.audit.verify()
    assert not verdict.ok
    return verdict.first_broken, verdict.reason


def rehash_from(engine, first: int, last: int, change: dict | None = None) -> None:
    """Rewrite records first..last as someone who knows the algorithm would: change the first, then
    recompute every hash after it so that the chain is whole again."""
    prev = stored(engine, first - 1)["record_hash"] if first > 1 else "0" * 64
    statements = []
    for seq in range(first, last + 1):
        row = stored(engine, seq) | ({**(change or {})} if seq == first else {}) | {"prev_hash": prev}
        row["record_hash"] = prev = record_hash(row)
        statements.append(row)
    sql(engine)  # triggers off
    with engine.begin() as conn:
        for row in statements:
            conn.execute(audit_records.update().where(audit_records.c.seq == row["seq"]).values(**row))


# --------------------------------------------------------------------------- what is written


def test_anchors_every_n_records_and_a_witness_line_per_record(governance, tmp_path):
    steward = tmp_path / "steward"
    anchors = [json.loads(line) for line in (steward / ANCHORS_FILE).read_text().splitlines()]
    assert [a["seq"] for a in anchors] == [10, 20, 30, 40, 50, 60]
    assert all(a["hash"] == stored(engine_of(governance), a["seq"])["record_hash"] for a in anchors)
    assert {a["why"] for a in anchors} == {"every 10 records"}
    witness = (steward / WITNESS_FILE).read_text().splitlines()
    assert witness == [f"{seq} {stored(engine_of(governance), seq)['record_hash'][:16]}" for seq in range(1, N + 1)]
    for path in (steward / ANCHORS_FILE, steward / WITNESS_FILE):
        assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE(steward.stat().st_mode) == 0o700
    assert governance.audit.verify().ok and governance.audit.verify().checked == N


def test_the_default_is_every_100_records_and_files_stay_owner_only_under_umask_000(tmp_path):
    import os

    old = os.umask(0)
    try:
        governance = Governance.open(tmp_path)
        for _ in range(100):
            governance.audit.append(actor="ana", role="analyst", action="query")
    finally:
        os.umask(old)
    anchors = (tmp_path / "steward" / ANCHORS_FILE).read_text().splitlines()
    assert [json.loads(line)["seq"] for line in anchors] == [100]
    assert stat.S_IMODE((tmp_path / "steward" / ANCHORS_FILE).stat().st_mode) == 0o600
    assert stat.S_IMODE((tmp_path / "steward" / WITNESS_FILE).stat().st_mode) == 0o600


def test_every_release_is_anchored_and_its_manifest_carries_the_anchor(tmp_path):
    governance = governed_outputs(tmp_path)
    anna, cecilia = sign_in(governance, "anna"), sign_in(governance, "cecilia")
    output = record(governance, "anna", "P-1", by_area({"north": 40, "south": 33}))
    governance.outputs.request_release(anna, [output.id], CONTEXT)
    governance.outputs.review(cecilia, output.id, "approve", "")
    folder = governance.outputs.release(cecilia, [output.id])
    manifest = json.loads((folder / "MANIFEST.json").read_text())
    released = governance.audit.records(action="output_release")[-1]
    before = stored(engine_of(governance), released.seq - 1)
    assert manifest["audit_anchor"] == {"seq": released.seq - 1, "hash": before["record_hash"]}
    assert released.prev_hash == manifest["audit_anchor"]["hash"]  # the release's record links to it
    last = json.loads((tmp_path / "steward" / ANCHORS_FILE).read_text().splitlines()[-1])
    assert last == {**last, "seq": released.seq, "hash": released.record_hash, "why": "release P-1-R001"}
    anchor = manifest["audit_anchor"]
    assert governance.audit.verify(anchor=(anchor["seq"], anchor["hash"])).ok


def test_a_manifest_anchor_catches_a_rewrite_even_without_the_steward_files(tmp_path):
    """The anchor leaves with the release: whoever holds it can check the log from outside."""
    governance = governed_outputs(tmp_path)
    anna, cecilia = sign_in(governance, "anna"), sign_in(governance, "cecilia")
    output = record(governance, "anna", "P-1", by_area({"north": 40, "south": 33}))
    governance.outputs.request_release(anna, [output.id], CONTEXT)
    governance.outputs.review(cecilia, output.id, "approve", "")
    manifest = json.loads((governance.outputs.release(cecilia, [output.id]) / "MANIFEST.json").read_text())
    anchor = (manifest["audit_anchor"]["seq"], manifest["audit_anchor"]["hash"])
    for name in (ANCHORS_FILE, WITNESS_FILE):
        (tmp_path / "steward" / name).unlink()
    rehash_from(engine_of(governance), 5, governance.audit.head().seq, {"actor": "someone_else"})
    assert governance.audit.verify().ok  # the chain alone cannot tell ...
    verdict = governance.audit.verify(anchor=anchor)  # ... the manifest's anchor can
    assert (verdict.ok, verdict.first_broken) == (False, anchor[0])
    assert verdict.reason == f"record {anchor[0]} does not match the saved anchor (the log was rewritten)"


# --------------------------------------------------------------------------- every kind of tampering


@pytest.mark.parametrize("cut", [1, 5, 20])
def test_cutting_the_tail_is_detected(governance, cut):
    sql(engine_of(governance), f"DELETE FROM audit_records WHERE seq > {N - cut}")
    first, reason = verdict_of(governance)
    assert first == N - cut + 1
    span = f"record {N}" if cut == 1 else f"records {N - cut + 1} to {N}"
    assert reason.startswith(f"{span} {'is' if cut == 1 else 'are'} missing (deleted; the log was cut short")


def test_cutting_the_tail_between_two_anchors_is_detected_by_the_witness(governance):
    governance.audit.append(actor="ana", role="analyst", action="query")  # record 61: after the last anchor
    sql(engine_of(governance), "DELETE FROM audit_records WHERE seq = 61")
    assert verdict_of(governance) == (61, f"record 61 is missing (deleted; the log was cut short: the anchors "
                                          "kept outside the database reach record 61)")


def test_cutting_the_tail_and_writing_on_is_detected(governance):
    """Records cut off, then new ones appended (every sign-in writes one): the witness holds two
    different records with the first new number."""
    sql(engine_of(governance), f"DELETE FROM audit_records WHERE seq > {N - 5}")
    governance.audit.append(actor="ana", role="analyst", action="login")
    governance.audit.append(actor="ana", role="analyst", action="query")
    assert verdict_of(governance) == (N - 4, f"record {N - 4} is not the first record {N - 4} written: the records "
                                             f"from {N - 4} on were cut off the end and new records were written in "
                                             "their place")


@pytest.mark.parametrize("edited", [1, 9, 37, 60])
def test_rehashing_after_an_edit_names_the_edited_record(governance, edited):
    rehash_from(engine_of(governance), edited, N, {"rows": 999_999})
    first, reason = verdict_of(governance)
    assert first == edited
    assert reason.startswith(f"record {edited} does not match its anchor kept outside the database")


def test_rehashing_after_a_deletion_names_where_it_was(governance):
    engine = engine_of(governance)
    rows = [stored(engine, seq) for seq in range(1, N + 1)]
    del rows[36]  # record 37
    sql(engine, "DELETE FROM audit_records WHERE seq >= 37")
    prev = rows[35]["record_hash"]
    for seq, row in enumerate(rows[36:], start=37):
        row = row | {"seq": seq, "prev_hash": prev}
        row["record_hash"] = prev = record_hash(row)
        insert(engine, row)
    first, reason = verdict_of(governance)
    assert first == 37 and "does not match its anchor" in reason


def test_an_edit_is_named(governance):
    sql(engine_of(governance), "UPDATE audit_records SET rows = 1 WHERE seq = 37")
    assert verdict_of(governance) == (37, "record 37 was edited")


def test_a_deletion_is_named(governance):
    sql(engine_of(governance), "DELETE FROM audit_records WHERE seq = 37")
    assert verdict_of(governance) == (37, "record 37 is missing (deleted)")


def test_an_insertion_is_named(governance):
    engine = engine_of(governance)
    slipped = forged(engine, 37, prev_seq=36)
    _shift_up_from(engine, 37)
    insert(engine, slipped)
    assert verdict_of(governance) == (37, "a record was inserted before 37")


def test_reordering_is_named(governance):
    sql(engine_of(governance), "UPDATE audit_records SET seq = 1000000 WHERE seq = 37",
        "UPDATE audit_records SET seq = 37 WHERE seq = 38", "UPDATE audit_records SET seq = 38 WHERE seq = 1000000")
    assert verdict_of(governance) == (37, "records 37 and 38 are out of order")


@pytest.mark.parametrize("original, at", [(20, 37), (36, 37), (59, 61)])
def test_a_replayed_insert_names_the_copy(governance, original, at):
    """A stored record copied in again, later in the log (61: at the end): the copy is wrong, not
    the records before it."""
    engine = engine_of(governance)
    copy = stored(engine, original) | {"seq": at}
    if at <= N:
        _shift_up_from(engine, at)
    insert(engine, copy)
    assert verdict_of(governance) == (at, f"record {at} is a copy of record {original} (replayed)")


@pytest.mark.parametrize("original, at", [(3, 201), (5, 150), (1, 201)])
def test_a_replay_of_a_record_from_far_back_names_the_copy(tmp_path, original, at):
    """The copy of a record written long before (further back than verify looks around a break),
    put in at the end or in the middle: the copy is named as a replay, not as an edit."""
    governance = Governance.open(tmp_path, settings=GovernanceSettings(audit_anchor_every=EVERY))
    for i in range(200):
        governance.audit.append(actor=f"user{i % 3}", role="analyst", action="query", permit="P1", rows=i)
    engine = engine_of(governance)
    copy = stored(engine, original) | {"seq": at}
    if at <= 200:
        _shift_up_from(engine, at)
    insert(engine, copy)
    assert verdict_of(governance) == (at, f"record {at} is a copy of record {original} (replayed)")


def test_a_replayed_insert_is_named_without_anchors_too(tmp_path):
    governance = governance_with_users(tmp_path)
    engine = engine_of(governance)
    copy = stored(engine, 3) | {"seq": 8}
    _shift_up_from(engine, 8)
    insert(engine, copy)
    governance.audit.anchors = None  # the chain alone
    assert verdict_of(governance) == (8, "record 8 is a copy of record 3 (replayed)")


# --------------------------------------------------------------------------- the files themselves


def test_a_record_without_its_witness_line_is_checked_by_the_chain_alone(governance, tmp_path):
    """A writer killed between its commit and its witness line leaves no false alarm."""
    witness = tmp_path / "steward" / WITNESS_FILE
    lines = witness.read_text().splitlines()
    witness.write_text("\n".join(lines[:-3] + ["58 torn"]) + "\n")  # the last lines lost, one torn
    assert governance.audit.verify().ok


def test_a_broken_chain_alert_names_the_rewritten_record(governance):
    rehash_from(engine_of(governance), 37, N, {"actor": "someone_else"})
    alerts = [a for a in run_alerts(governance.audit) if a.rule == BROKEN_CHAIN]
    assert [(a.first_seq, a.severity) for a in alerts] == [(37, "critical")]


def test_an_anchor_asked_for_is_written_now(governance, tmp_path):
    head = governance.audit.append(actor="ana", role="analyst", action="query")
    assert governance.audit.anchor("quarterly check") == head
    last = json.loads((tmp_path / "steward" / ANCHORS_FILE).read_text().splitlines()[-1])
    assert (last["seq"], last["hash"], last["why"]) == (head.seq, head.record_hash, "quarterly check")
